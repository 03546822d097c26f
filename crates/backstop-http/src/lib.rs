//! backstop for HTTP: retries that honour `Retry-After` and idempotency, for
//! reqwest (a `reqwest-middleware` middleware, or plain helpers) and for any
//! tower HTTP client (a layer).
//!
//! Retries 5xx, connection errors, timeouts and
//! 429; never other 4xx; respects `Retry-After`; 3 attempts, 0.5 s doubling to
//! 10 s, +U[0, 0.5 s] ([`presets::API_CALL`]).
//!
//! | want | use |
//! |---|---|
//! | every request of a reqwest client retried | [`RetryMiddleware`] with `reqwest_middleware::ClientBuilder` |
//! | one call retried, no middleware | [`send`] (body unread) or [`fetch`] (body read inside the attempt) |
//! | a tower/hyper client retried | [`RetryLayer`] |
//! | a classifier for your own loop | [`classify`], [`classify_reqwest`], and `backstop::http::classify_status` |
//! | your own retried function, with `Retry-After` honoured | [`check`] (instead of `error_for_status()`) and [`classify`] |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use backstop_http::{presets, CircuitBreaker, RetryBudget};
//! use backstop_http::{Options, RetryMiddleware};
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(
//!         RetryMiddleware::new(presets::API_CALL)
//!             .breaker(&CircuitBreaker::new("weather_api", Default::default()))
//!             .budget(&RetryBudget::default())
//!             .options(Options::new().idempotency_key(true)),
//!     )
//!     .build();
//! let forecast = client.get("http://api.weather.test/forecast").send().await?;
//! # let _ = forecast; Ok(()) }
//! ```
//!
//! reqwest is used without default features here: enable the TLS backend you
//! want (`rustls`, `native-tls`) on your own `reqwest` dependency.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]

/// The core crate, so that this one dependency is enough: `backstop_http::backstop::CircuitBreaker`.
pub use backstop;
/// The core names this crate's docs use, re-exported from [`backstop`].
pub use backstop::{CircuitBreaker, Guards, Pacer, RetryBudget, RetryError, RetryPolicy, Verdict, presets};

mod attempts;
#[cfg(feature = "chaos")]
mod chaos;
mod error;
mod guards;
mod layer;
mod layer_error;
mod middleware;
mod options;
mod origin;
mod replay;
mod send;
mod setup;

pub use attempts::Attempts;
#[cfg(feature = "macros")]
pub use backstop_macros::api_retry;
pub use error::{HttpError, HttpFailure, NotRetried, check, classify, classify_reqwest, retry_error};
pub use layer::{RetryLayer, RetryService};
pub use layer_error::{BoxError, LayerError};
pub use middleware::RetryMiddleware;
pub use options::{IDEMPOTENCY_KEY, Options};
pub use send::{AttemptFuture, Fetched, fetch, fetch_with, send, send_with};

/// A run named after its request, `GET https://example.test/forecast`: the
/// method and URL without query or credentials, which may hold secrets.
pub(crate) fn request_name(request: &reqwest::Request) -> backstop::retry::Name {
    backstop::retry::Name::Owned(format!("{} {}", request.method(), redacted(request.url())))
}

/// A URL for logs and errors: scheme, host, port and path, without
/// credentials or query (which may hold secrets).
pub(crate) fn redacted(url: &reqwest::Url) -> String {
    let mut shown = origin::of_url(url);
    shown.push_str(url.path());
    shown
}

/// An attempt's future, boxed: a hedged attempt and a plain one are one type.
pub(crate) type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
