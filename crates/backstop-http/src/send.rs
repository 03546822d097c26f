//! Retrying requests without middleware: [`send`] and [`fetch`].
//!
//! Both take a closure that builds the request, called once per attempt, so
//! every attempt sends a fresh request (and a fresh body). Both return the
//! core [`Retry`] builder, so the breaker, budget, clock, name and timeouts
//! are set the usual way before `.await`.
//!
//! A request that may not be repeated (a POST or PATCH without an
//! `Idempotency-Key`, unless [`Options`] say otherwise) is sent at most once,
//! whatever ends its attempt: an error, a retryable status, or the
//! per-attempt timeout set with `.attempt_timeout(..)` (the server may have
//! done the work before the timeout came). The run's classifier stops it,
//! and should another classifier be set with `.when(..)`, the attempt
//! refuses to send it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use backstop::retry::{Async, Retry};
use backstop::{RetryPolicy, Verdict};
use bytes::Bytes;
use reqwest::{RequestBuilder, Response};

use crate::error::{HttpError, classify};
use crate::options::{Options, fresh_key};
use crate::replay::Replay;

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
/// use backstop_http::presets;
///
/// let client = reqwest::Client::new();
/// let url = "http://api.weather.test/forecast?city=Utrecht";
/// let policy = presets::API_CALL;
/// let response = backstop_http::send(&policy, || client.get(url))
///     .name("fetch_weather_data")
///     .await?;
/// # let _ = response; Ok(()) }
/// ```
pub fn send<'a, F>(
    policy: &'a RetryPolicy,
    make: F,
) -> Retry<
    'a,
    impl FnMut() -> AttemptFuture<Response> + 'a,
    HttpError,
    Async,
    impl Fn(&HttpError) -> Verdict + Send + Sync + 'a,
>
where
    F: FnMut() -> RequestBuilder + Send + 'a,
{
    send_with(policy, Options::default(), make)
}

/// [`send`] with [`Options`]: retrying non-idempotent methods, adding an
/// `Idempotency-Key` (one per call, the same on every attempt).
pub fn send_with<'a, F>(
    policy: &'a RetryPolicy,
    options: Options,
    make: F,
) -> Retry<
    'a,
    impl FnMut() -> AttemptFuture<Response> + 'a,
    HttpError,
    Async,
    impl Fn(&HttpError) -> Verdict + Send + Sync + 'a,
>
where
    F: FnMut() -> RequestBuilder + Send + 'a,
{
    attempts(policy, options, make, |resp| Box::pin(std::future::ready(Ok(resp))))
}

/// Sends the request and reads its whole body inside the attempt, so a
/// connection dropped mid-body is retried rather than returned as a short
/// read. Returns the status, headers and body of the final response.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest::Client::new();
/// let policy = backstop_http::presets::API_CALL;
/// let forecast = backstop_http::fetch(&policy, || client.get("http://api.weather.test/forecast")).await?;
/// println!("{}: {}", forecast.status, String::from_utf8_lossy(&forecast.body));
/// # Ok(()) }
/// ```
pub fn fetch<'a, F>(
    policy: &'a RetryPolicy,
    make: F,
) -> Retry<
    'a,
    impl FnMut() -> AttemptFuture<Fetched> + 'a,
    HttpError,
    Async,
    impl Fn(&HttpError) -> Verdict + Send + Sync + 'a,
>
where
    F: FnMut() -> RequestBuilder + Send + 'a,
{
    fetch_with(policy, Options::default(), make)
}

/// [`fetch`] with [`Options`], as [`send_with`].
pub fn fetch_with<'a, F>(
    policy: &'a RetryPolicy,
    options: Options,
    make: F,
) -> Retry<
    'a,
    impl FnMut() -> AttemptFuture<Fetched> + 'a,
    HttpError,
    Async,
    impl Fn(&HttpError) -> Verdict + Send + Sync + 'a,
>
where
    F: FnMut() -> RequestBuilder + Send + 'a,
{
    attempts(policy, options, make, |resp| {
        Box::pin(async move {
            let (status, headers) = (resp.status(), resp.headers().clone());
            let body = resp.bytes().await.map_err(HttpError::transport)?;
            Ok(Fetched { status, headers, body })
        })
    })
}

/// One attempt of [`send`] or [`fetch`]: boxed, so the helpers can name their
/// return type (an allocation per attempt, small beside a network call).
pub type AttemptFuture<T> = Pin<Box<dyn Future<Output = Result<T, HttpError>> + Send>>;

/// The run of [`send_with`] and [`fetch_with`]: each attempt builds the
/// request, adds the call's key, sends it and `read`s an accepted response.
fn attempts<'a, F, T>(
    policy: &'a RetryPolicy,
    options: Options,
    mut make: F,
    read: fn(Response) -> AttemptFuture<T>,
) -> Retry<'a, impl FnMut() -> AttemptFuture<T> + 'a, HttpError, Async, impl Fn(&HttpError) -> Verdict + Send + Sync + 'a>
where
    F: FnMut() -> RequestBuilder + Send + 'a,
    T: Send + 'static,
{
    // One key per logical call, the same on every attempt.
    let key = fresh_key();
    // Set once a request that may not be repeated has been handed to the client.
    let sent_once = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&sent_once);
    // How the attempt that was sent ended, for a refusal to say; none if
    // it was cut off (a timeout, the deadline) before it was answered.
    let ended = Arc::new(Mutex::new(None::<String>));
    // The first request is built now, to name the run after it; the first
    // attempt sends it, later ones build their own.
    let mut first = Some(make().build_split());
    let name = first.as_ref().and_then(|(_, request)| request.as_ref().ok()).map(crate::request_name);
    let op = move || -> AttemptFuture<T> {
        let (client, request) = first.take().unwrap_or_else(|| make().build_split());
        let key = key.clone();
        let sent_once = Arc::clone(&sent_once);
        let ended = Arc::clone(&ended);
        Box::pin(async move {
            let mut request = request.map_err(HttpError::transport)?;
            let method = request.method().clone();
            let reason = match options.prepare(&method, request.headers_mut(), || key) {
                Replay::Allowed => None,
                Replay::Once(reason) => Some(reason),
            };
            if let Some(reason) = reason {
                if sent_once.swap(true, Ordering::AcqRel) {
                    let how = ended.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let how = how.unwrap_or_else(|| "cut off before it was answered".into());
                    let refused = anyhow::anyhow!(
                        "not sent again: the attempt that was sent may have reached the server (it ended: {how})"
                    );
                    return Err(HttpError::Middleware(refused).not_retried(reason));
                }
            }
            let outcome = async {
                match client.execute(request).await {
                    Ok(resp) if backstop::http::is_retryable_status(resp.status()) => Err(HttpError::Status(resp)),
                    Ok(resp) => read(resp).await,
                    Err(e) => Err(HttpError::transport(e)),
                }
            };
            outcome.await.map_err(|error| match reason {
                Some(reason) => {
                    *ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(format!("{error:#}"));
                    error.not_retried(reason)
                }
                None => error,
            })
        })
    };
    // A request sent once is not retried, however its attempt ended.
    let classifier = move |error: &HttpError| {
        if seen.load(Ordering::Acquire) { Verdict::Fail } else { classify(error) }
    };
    let run = policy.retry(op).when(classifier);
    match name {
        Some(name) => run.name(name),
        None => run, // the request could not be built: its first attempt fails with why
    }
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
