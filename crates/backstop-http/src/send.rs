//! Retrying requests without middleware: [`send`] and [`fetch`].
//!
//! Both take a closure that builds the request, called once per attempt, so
//! every attempt sends a fresh request (and a fresh body). Both return the
//! core [`Retry`] builder, so the breaker, budget, clock, name and timeouts
//! are set the usual way before `.await`.

use std::future::Future;
use std::pin::Pin;

use backstop::retry::Retry;
use backstop::{RetryPolicy, Verdict};
use bytes::Bytes;
use http::{HeaderValue, Method};
use reqwest::{RequestBuilder, Response};

use crate::error::{HttpError, NotRetried, classify};
use crate::options::{IDEMPOTENCY_KEY, Options};

/// Sends the request `make` builds, retrying under `policy`. A response with
/// a retryable status (5xx, 429, 408) is a failure, retried and, in the end,
/// kept in [`HttpError::Status`]; other responses are returned as they are,
/// with their body unread.
///
/// Non-idempotent requests (POST, PATCH) are sent once unless they carry an
/// `Idempotency-Key`; see [`send_with`] to change that.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use backstop::presets;
///
/// let client = reqwest::Client::new();
/// let url = "http://api.weather.test/forecast?city=Utrecht";
/// let policy = presets::api_call();
/// let response = backstop_http::send(&policy, || client.get(url))
///     .name("fetch_weather_data")
///     .await?;
/// # let _ = response; Ok(()) }
/// ```
pub fn send<'a, F>(
    policy: &'a RetryPolicy,
    make: F,
) -> Retry<'a, impl FnMut() -> AttemptFuture<Response> + 'a, fn(&HttpError) -> Verdict>
where
    F: FnMut() -> RequestBuilder + 'a,
{
    send_with(policy, Options::default(), make)
}

/// [`send`] with [`Options`]: retrying non-idempotent methods, adding an
/// `Idempotency-Key`.
pub fn send_with<'a, F>(
    policy: &'a RetryPolicy,
    options: Options,
    mut make: F,
) -> Retry<'a, impl FnMut() -> AttemptFuture<Response> + 'a, fn(&HttpError) -> Verdict>
where
    F: FnMut() -> RequestBuilder + 'a,
{
    // One key per logical call, the same on every attempt.
    let key = options.idempotency_key.then(crate::options::fresh_key);
    let op = move || -> AttemptFuture<Response> {
        let builder = make();
        let key = key.clone();
        Box::pin(async move {
            let (client, request) = builder.build_split();
            let mut request = request.map_err(HttpError::Transport)?;
            if let Some(key) = key.filter(|_| needs_key(request.method())) {
                let headers = request.headers_mut();
                if !headers.contains_key(IDEMPOTENCY_KEY) {
                    if let Ok(value) = HeaderValue::from_str(&key) {
                        headers.insert(IDEMPOTENCY_KEY, value);
                    }
                }
            }
            let replayable = options.may_retry(request.method(), request.headers());
            let outcome = match client.execute(request).await {
                Ok(resp) if backstop::http::is_retryable_status(resp.status()) => Err(HttpError::Status(resp)),
                Ok(resp) => Ok(resp),
                Err(e) => Err(HttpError::Transport(e)),
            };
            outcome.map_err(|error| {
                if replayable {
                    error
                } else {
                    HttpError::NotRetried { reason: NotRetried::NotIdempotent, error: Box::new(error) }
                }
            })
        })
    };
    policy.retry(op).when(classify as fn(&HttpError) -> Verdict)
}

/// One attempt of [`send`] or [`fetch`]: boxed, so the helpers can name their
/// return type (an allocation per attempt, small beside a network call).
pub type AttemptFuture<T> = Pin<Box<dyn Future<Output = Result<T, HttpError>> + Send>>;

/// Whether the method is one a fresh `Idempotency-Key` is added to.
fn needs_key(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PATCH
}

/// Sends the request and reads its whole body inside the attempt, so a
/// connection dropped mid-body is retried rather than returned as a short
/// read. Returns the status, headers and body of the final response.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest::Client::new();
/// let policy = backstop::presets::api_call();
/// let forecast = backstop_http::fetch(&policy, || client.get("http://api.weather.test/forecast")).await?;
/// println!("{}: {}", forecast.status, String::from_utf8_lossy(&forecast.body));
/// # Ok(()) }
/// ```
pub fn fetch<'a, F>(
    policy: &'a RetryPolicy,
    mut make: F,
) -> Retry<'a, impl FnMut() -> AttemptFuture<Fetched> + 'a, fn(&HttpError) -> Verdict>
where
    F: FnMut() -> RequestBuilder + 'a,
{
    let op = move || -> AttemptFuture<Fetched> {
        let builder = make();
        Box::pin(async move {
            let (client, request) = builder.build_split();
            let request = request.map_err(HttpError::Transport)?;
            let replayable = Options::default().may_retry(request.method(), request.headers());
            let read = async {
                let resp = client.execute(request).await.map_err(HttpError::Transport)?;
                if backstop::http::is_retryable_status(resp.status()) {
                    return Err(HttpError::Status(resp));
                }
                let (status, headers) = (resp.status(), resp.headers().clone());
                let body = resp.bytes().await.map_err(HttpError::Transport)?;
                Ok(Fetched { status, headers, body })
            };
            read.await.map_err(|error| {
                if replayable {
                    error
                } else {
                    HttpError::NotRetried { reason: NotRetried::NotIdempotent, error: Box::new(error) }
                }
            })
        })
    };
    policy.retry(op).when(classify as fn(&HttpError) -> Verdict)
}

/// A whole response, from [`fetch`]: status, headers and the complete body.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status.
    pub status: http::StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The complete body.
    pub body: Bytes,
}
