//! Make calls to flaky things survivable: retries with exponential backoff
//! and jitter, with ready policies for S3 and HTTP APIs.
//!
//! # The model
//!
//! Four ideas, each a module:
//!
//! - A **policy** ([`RetryPolicy`]) says how hard to try: how many attempts,
//!   how long to wait between them, an optional deadline for the whole run.
//!   It is plain data, checked once by `build()`, shared by every call.
//! - A **backoff** ([`Backoff`], [`Jitter`]) is the policy's schedule of
//!   waits: exponential, linear or constant, capped, randomised so that
//!   clients that failed together do not retry together.
//! - A **verdict** ([`Verdict`]) is a classifier's answer about one error:
//!   retry, retry after what the server asked, or fail now. The classifier
//!   knows your errors; the policy knows nothing about them.
//! - A **retry error** ([`RetryError`]) says why a run gave up (attempts
//!   exhausted, a permanent error, a deadline, a hint too long) and keeps the
//!   last error.
//!
//! Around a run, four shared guards keep retries from making an outage
//! worse, each `Clone` and meant to be shared by every call to one downstream
//! (alone, or together as one [`Guards`] value that runs, batches, the HTTP
//! middleware and the S3 transfers all take):
//!
//! - a [`CircuitBreaker`] stops calling a downstream that is down;
//! - a [`RetryBudget`] caps retries to a small part of the traffic;
//! - an [`AdaptiveThrottle`] rejects locally while the downstream refuses most calls;
//! - a [`Pacer`] learns the rate the downstream accepts and makes calls wait for it.
//!
//! For calls that are slow rather than failing, a [`Hedge`](hedge::Hedge)
//! sends the call again past a delay (the p95 of recent latencies by
//! default) and takes the first answer, within a budget of extra requests.
//! A [`ConcurrencyLimit`](limit::ConcurrencyLimit) caps the calls in flight
//! (fixed, or learnt from latency); [`Keyed`](keyed::Keyed) keeps guards per
//! origin, bucket or prefix; `chaos` (feature `chaos`) injects faults into
//! your own tests.
//!
//! Time comes from a [`Clock`]: the real one by default, a [`ManualClock`] in
//! tests, where a five-attempt schedule with a 30 s cap runs in microseconds.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use backstop::{presets, ManualClock, RetryError, Verdict};
//!
//! #[derive(Debug)]
//! enum S3Error { SlowDown, AccessDenied }
//! impl std::fmt::Display for S3Error {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "{self:?}")
//!     }
//! }
//!
//! fn classify(e: &S3Error) -> Verdict {
//!     match e {
//!         S3Error::SlowDown => Verdict::Retry,
//!         S3Error::AccessDenied => Verdict::Fail,
//!     }
//! }
//!
//! // An upload that is throttled twice, then succeeds.
//! let mut throttled = 2;
//! let mut put_object = || {
//!     if throttled > 0 { throttled -= 1; Err(S3Error::SlowDown) } else { Ok("etag-1") }
//! };
//!
//! let clock = ManualClock::new(); // virtual time: this example does not sleep
//! let policy = presets::S3_UPLOAD; // 5 attempts, 1 s doubling to 30 s, +U[0, 1 s]
//! let etag = policy
//!     .retry(|| put_object())
//!     .when(classify)
//!     .name("upload_to_s3")
//!     .clock(&clock)
//!     .call()?;
//! assert_eq!(etag, "etag-1");
//! assert_eq!(clock.sleeps().len(), 2);
//!
//! // A permanent error is returned at once, unretried.
//! let err = policy
//!     .retry(|| Err::<(), _>(S3Error::AccessDenied))
//!     .when(classify)
//!     .clock(&clock)
//!     .call()
//!     .unwrap_err();
//! assert!(matches!(err, RetryError::Rejected { attempts: 1, .. }));
//! # Ok::<(), RetryError<S3Error>>(())
//! ```
//!
//! Async code `.await`s the same builder instead of calling `.call()`:
//! `policy.retry(|| async { client.get(&url).await }).when(classify).await`.
//!
//! Or put the retry on the function, as a Python `@retry` decorator would
//! (the [`retry`](macro@retry) attribute; see [`docs::attribute`]):
//!
//! ```
//! # use backstop::Verdict;
//! # #[derive(Debug)] enum S3Error { SlowDown, AccessDenied }
//! # impl std::fmt::Display for S3Error {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") }
//! # }
//! # fn classify(e: &S3Error) -> Verdict { match e { S3Error::SlowDown => Verdict::Retry, _ => Verdict::Fail } }
//! # fn put_object(key: &str, data: &[u8]) -> Result<String, S3Error> { let _ = data; Ok(key.into()) }
//! #[backstop::retry(preset = s3_upload, when = classify)]
//! fn upload_to_s3(key: &str, data: &[u8]) -> Result<String, S3Error> {
//!     put_object(key, data) // runs once per attempt
//! }
//! # assert_eq!(upload_to_s3("k", b"").unwrap(), "k");
//! ```
//!
//! # Paths
//!
//! Every item has its page in the module of its concept (`backstop::breaker::BreakerConfig`,
//! `backstop::retry::RetryFuture`), which opens with that concept. The root re-exports the
//! few types nearly every program names (`RetryPolicy`, `Retry`, `RetryError`, `Verdict`,
//! `CircuitBreaker`, `RetryBudget`, `Guards`, `ManualClock`, ...), so `use backstop::{..}`
//! is enough for everyday code; the docs write those from the root and the rest by module.
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tokio` | yes | async sleeps on tokio's timer; deadlines follow tokio's paused clock in tests |
//! | `tracing` | yes | the log lines listed in [`docs::observability`] |
//! | `macros` | yes | the attribute form, `#[backstop::retry]` (see [`docs::attribute`]) |
//! | `metrics` | no | the counters listed in [`docs::observability`] |
//! | `serde` | no | `RetryPolicy` from TOML/JSON/YAML, durations like `"500ms"` (the `config` module) |
//! | `http` | no | status classification, `Retry-After` parsing, idempotent methods (`http` module) |
//!
//! Without `tokio`, async runs sleep on a timer thread, so they work on any
//! executor; implement [`Clock`] to use your runtime's timer instead.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;
pub mod aws;
pub mod backoff;
pub mod batch;
pub mod breaker;
pub mod budget;
#[cfg(feature = "chaos")]
#[cfg_attr(docsrs, doc(cfg(feature = "chaos")))]
pub mod chaos;
pub mod clock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod config;
pub mod docs;
pub mod duration;
pub mod error;
pub mod guards;
pub mod hedge;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub mod keyed;
pub mod limit;
pub mod pacer;
pub mod policy;
pub mod presets;
pub mod retry;
mod rules;
mod sliding;
mod sync;
pub mod throttle;
pub mod verdict;

// The types nearly every program names, at the root; everything has its
// page (and its concept) in its module. See "Paths" above.
#[doc(no_inline)]
pub use backoff::{Backoff, Jitter};
#[doc(no_inline)]
pub use batch::{Batch, BatchOutcome};
#[doc(no_inline)]
pub use breaker::CircuitBreaker;
#[doc(no_inline)]
pub use budget::RetryBudget;
#[doc(no_inline)]
pub use clock::{Clock, ManualClock, SystemClock};
#[doc(no_inline)]
pub use duration::{DurationError, parse_duration};
#[doc(no_inline)]
pub use error::ConfigError;
#[doc(no_inline)]
pub use guards::Guards;
#[doc(no_inline)]
pub use pacer::Pacer;
#[doc(no_inline)]
pub use policy::{RetryPolicy, RetryPolicyBuilder};
#[doc(no_inline)]
pub use retry::{Retry, RetryError, RetryEvent};
#[doc(no_inline)]
pub use throttle::AdaptiveThrottle;
#[doc(no_inline)]
pub use verdict::Verdict;

#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use backstop_macros::retry;
