//! Running an operation under a policy: [`RetryPolicy::retry`](crate::RetryPolicy::retry) and the
//! [`Retry`] builder it returns.
//!
//! One builder serves sync and async code. Configure it with
//! [`when`](Retry::when) (the classifier), [`name`](Retry::name),
//! [`on_retry`](Retry::on_retry) and [`clock`](Retry::clock), then either
//! [`call`](Retry::call) it (a closure returning `Result`) or `.await` it (a
//! closure returning a future of `Result`):
//!
//! ```
//! use backstop::{presets, Verdict};
//!
//! #[derive(Debug)]
//! struct Flaky(bool);
//! impl std::fmt::Display for Flaky {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "flaky") }
//! }
//! impl std::error::Error for Flaky {}
//!
//! let policy = presets::API_CALL.to_builder().seed(7).build()?;
//! let clock = backstop::ManualClock::new();
//! let mut left = 1;
//! let body = policy
//!     .retry(|| if left > 0 { left -= 1; Err(Flaky(true)) } else { Ok("body") })
//!     .when(|e| Verdict::retry_if(e.0))
//!     .name("fetch_weather_data")
//!     .clock(&clock)
//!     .call()?;
//! assert_eq!(body, "body");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Async closures may borrow from the caller; the future is polled in place,
//! nothing is boxed on the success path:
//!
//! ```
//! # async fn get(client: &str, url: &str) -> Result<usize, std::io::Error> { Ok(client.len() + url.len()) }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = String::from("client");
//! let url = String::from("https://example.test/");
//! let n = backstop::presets::API_CALL
//!     .retry(|| async { get(&client, &url).await })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## Retrying on an `Ok` value
//!
//! The classifier sees errors. When a *successful* call can still mean "try
//! again" (an HTTP 503 returned as a response), turn it into an error inside
//! the closure and back into a value afterwards:
//!
//! ```
//! # use backstop::{ManualClock, RetryError, RetryPolicy};
//! # let clock = ManualClock::new();
//! # let policy = RetryPolicy::builder().seed(1).build()?;
//! # let mut statuses = vec![200u16, 503, 503].into_iter().rev();
//! # let mut send = || statuses.next().unwrap();
//! let status = policy
//!     .retry(|| match send() {
//!         503 => Err(503),                 // retryable: becomes the error
//!         other => Ok(other),
//!     })
//!     .clock(&clock)
//!     .call()
//!     .or_else(|e| e.into_inner().ok_or("no attempt"))?; // keep the last status
//! assert_eq!(status, 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attempt;
mod blocking;
mod builder;
mod driven;
mod error;
mod event;
mod future;
pub(crate) mod log;
mod report;
mod settings;
mod state;

pub use attempt::{Async, Attempt, Blocking, MakeAttempt};
pub use builder::Retry;
pub use driven::{Driven, DrivenRun, Next};
pub use error::{RetryError, Stopped};
pub use event::{OnRetry, RetryEvent};
pub use future::RetryFuture;
pub use report::{Report, Value, WithAttempts};
pub(crate) use settings::run_setters;
pub use settings::{Bare, DEFAULT_NAME, Name, RunSettings, Settings};
