//! What one HTTP attempt can fail with: [`HttpError`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

use backstop::Verdict;
use backstop::http::classify_status;

/// Why an HTTP attempt failed, as the retry run sees it.
///
/// A response whose status is worth a retry (5xx, 429, 408) is a failure
/// here, so the run can retry it and honour its `Retry-After`; the response
/// itself is kept, so a caller that gives up still has it.
///
/// It prints by the workspace's rule (see [`backstop::error`]): `{}` is one
/// layer, [`source()`](Error::source) the cause, `{:#}` the whole chain. No
/// form prints a URL's query or credentials: reqwest errors made by this
/// crate are stored without their URL, and `{:?}` shows a response's URL
/// redacted.
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with a status that is a failure: a retryable one
    /// (from the middleware, the layer, `send` and `fetch`), or any error
    /// status (from [`check`]). The response is kept, so its headers
    /// (`Retry-After`) reach the classifier.
    Status(reqwest::Response),
    /// The request did not get a response: connect, reset, timeout, body.
    Transport(reqwest::Error),
    /// Another middleware further down the chain failed.
    Middleware(anyhow::Error),
    /// The attempt ran past its per-attempt timeout and was dropped.
    TimedOut(Duration),
    /// The run stopped before any attempt returned an error: its breaker was
    /// open, its throttle refused, or its deadline passed during the first
    /// attempt. The error of an [`api_retry`](crate::api_retry) function with
    /// a guard or a deadline.
    Stopped(backstop::retry::Stopped),
    /// The request failed and was deliberately not retried.
    NotRetried {
        /// Why it was not retried.
        reason: NotRetried,
        /// How it failed.
        error: Box<HttpError>,
    },
}

/// Why a failed request was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotRetried {
    /// Its method is not idempotent (POST, PATCH) and it had no `Idempotency-Key`.
    NotIdempotent,
    /// Its body is a stream that cannot be sent a second time.
    StreamBody,
}

impl fmt::Display for NotRetried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotRetried::NotIdempotent => {
                "its method is not idempotent; send an Idempotency-Key header, or opt in to retrying it"
            }
            NotRetried::StreamBody => {
                "its body is a stream, which cannot be sent twice; use a buffered body to retry it"
            }
        })
    }
}

impl HttpError {
    /// The response, for a [`Status`](Self::Status) failure.
    pub fn response(&self) -> Option<&reqwest::Response> {
        match self {
            HttpError::Status(r) => Some(r),
            HttpError::NotRetried { error, .. } => error.response(),
            _ => None,
        }
    }

    /// The response, by value, for a [`Status`](Self::Status) failure.
    pub fn into_response(self) -> Option<reqwest::Response> {
        match self {
            HttpError::Status(r) => Some(r),
            HttpError::NotRetried { error, .. } => error.into_response(),
            _ => None,
        }
    }

    /// The status, for a [`Status`](Self::Status) failure.
    pub fn status(&self) -> Option<http::StatusCode> {
        self.response().map(reqwest::Response::status)
    }
}

impl HttpError {
    /// A transport failure, stored without its URL (which may carry secrets
    /// in its query); the run's name says which request it was.
    pub fn transport(error: reqwest::Error) -> Self {
        HttpError::Transport(error.without_url())
    }

    /// This error, as the failure of a request that is not sent again.
    pub(crate) fn not_retried(self, reason: NotRetried) -> Self {
        match self {
            HttpError::NotRetried { .. } => self,
            error => HttpError::NotRetried { reason, error: Box::new(error) },
        }
    }
}

impl From<backstop::retry::Stopped> for HttpError {
    fn from(stopped: backstop::retry::Stopped) -> Self {
        HttpError::Stopped(stopped)
    }
}

impl From<reqwest::Error> for HttpError {
    /// A transport failure, without its URL (see [`HttpError::transport`]).
    fn from(e: reqwest::Error) -> Self {
        HttpError::transport(e)
    }
}

impl From<reqwest_middleware::Error> for HttpError {
    fn from(e: reqwest_middleware::Error) -> Self {
        match e {
            reqwest_middleware::Error::Reqwest(e) => HttpError::transport(e),
            // Another middleware's error may be a reqwest error, URL and all.
            reqwest_middleware::Error::Middleware(e) => match e.downcast::<reqwest::Error>() {
                Ok(e) => HttpError::transport(e),
                Err(e) => HttpError::Middleware(e),
            },
        }
    }
}

impl fmt::Display for HttpError {
    /// One layer. `Transport` and `Middleware` are transparent (their own
    /// message; their causes follow with `{:#}`); `NotRetried` adds why to
    /// its error's message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status(r) => write!(f, "HTTP {}", r.status())?,
            // Stored without URL when made here; redact one a caller left in.
            HttpError::Transport(e) => f.write_str(&redact(e.to_string(), e))?,
            HttpError::Middleware(e) => write!(f, "{e}")?,
            HttpError::TimedOut(d) => {
                write!(f, "the attempt timed out after {} seconds", backstop::duration::Seconds(*d))?
            }
            HttpError::Stopped(stopped) => write!(f, "{stopped}")?,
            HttpError::NotRetried { reason, error } => write!(f, "{error} (not retried: {reason})")?,
        }
        match self.source() {
            Some(cause) if f.alternate() => write!(f, ": {}", backstop::error::Chain(cause)),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for HttpError {
    /// Structured, with a response's URL redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status(r) => f
                .debug_struct("Status")
                .field("status", &r.status())
                .field("url", &crate::redacted(r.url()))
                .finish_non_exhaustive(),
            HttpError::Transport(e) => {
                f.debug_tuple("Transport").field(&format_args!("{}", redact(format!("{e:?}"), e))).finish()
            }
            HttpError::Middleware(e) => f.debug_tuple("Middleware").field(e).finish(),
            HttpError::TimedOut(d) => f.debug_tuple("TimedOut").field(d).finish(),
            HttpError::Stopped(stopped) => f.debug_tuple("Stopped").field(stopped).finish(),
            HttpError::NotRetried { reason, error } => {
                f.debug_struct("NotRetried").field("reason", reason).field("error", error).finish()
            }
        }
    }
}

/// `text` (a reqwest error's `Display` or `Debug`) with the error's URL, if
/// it kept one, shown without its query and credentials.
fn redact(text: String, e: &reqwest::Error) -> String {
    match e.url() {
        Some(url) => text.replace(url.as_str(), &crate::redacted(url)),
        None => text,
    }
}

impl Error for HttpError {
    /// The cause beneath this layer: a transport error's (the connection's,
    /// the I/O error's), another middleware's own cause, the cause of a
    /// request not retried.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            HttpError::Transport(e) => e.source(),
            HttpError::Middleware(e) => (**e).source(),
            HttpError::NotRetried { error, .. } => error.source(),
            HttpError::Status(_) | HttpError::TimedOut(_) | HttpError::Stopped(_) => None,
        }
    }
}

/// Turns an error status (4xx, 5xx) into an [`HttpError::Status`] that keeps
/// the response, and passes any other response through: the check to use in
/// your own retried function instead of `error_for_status()`, whose
/// `reqwest::Error` keeps neither the headers nor the response, so
/// [`classify`] could not honour a `Retry-After`.
///
/// ```no_run
/// use backstop_http::{HttpError, check, classify};
///
/// async fn fetch_forecast(client: &reqwest::Client, url: &str) -> Result<String, HttpError> {
///     let response = check(client.get(url).send().await?)?; // a 429's Retry-After is kept
///     Ok(response.text().await?)
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest::Client::new();
/// let url = "http://api.weather.test/forecast";
/// let forecast = backstop_http::presets::API_CALL
///     .retry(|| fetch_forecast(&client, url))
///     .when(classify) // 429 and 503 honour Retry-After; 404 fails at once
///     .await?;
/// # let _ = forecast; Ok(()) }
/// ```
// The error is the crate's `HttpError`, as large as the response it keeps
// on purpose (the response is the point); the success is a response too.
#[allow(clippy::result_large_err)]
pub fn check(response: reqwest::Response) -> Result<reqwest::Response, HttpError> {
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        return Err(HttpError::Status(response));
    }
    Ok(response)
}

/// The verdict for an [`HttpError`]: statuses by
/// [`classify_status`](backstop::http::classify_status) (with their
/// `Retry-After`), transport errors by [`classify_reqwest`], timeouts
/// `Timeout`, other middleware's errors and not-retried requests `Fail`.
pub fn classify(error: &HttpError) -> Verdict {
    match error {
        HttpError::Status(r) => classify_status(r.status(), r.headers()),
        HttpError::Transport(e) => classify_reqwest(e),
        HttpError::TimedOut(_) => Verdict::Timeout,
        HttpError::Middleware(_) | HttpError::Stopped(_) | HttpError::NotRetried { .. } => Verdict::Fail,
    }
}

/// The error [`api_retry`](crate::api_retry) judges without a classifier:
/// [`HttpError`], by [`classify`].
#[diagnostic::on_unimplemented(
    message = "`#[api_retry]` cannot judge `{Self}` on its own",
    label = "an `api_retry` function returns `Result<_, backstop_http::HttpError>`",
    note = "turn an error status into an `HttpError` with `backstop_http::check(response)?` (it keeps \
            `Retry-After`; `error_for_status()` does not) and `?` converts reqwest's errors; or give a \
            classifier for `{Self}`: `#[api_retry(when = my_classify)]`"
)]
pub trait HttpFailure {
    /// The verdict for this error: see [`classify`].
    fn verdict(&self) -> Verdict;

    /// How the run's log lines print this error: by default its `{:#}`
    /// form ([`HttpError`]'s: the status or the transport failure, each
    /// cause once).
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: fmt::Display,
    {
        write!(f, "{self:#}")
    }
}

impl HttpFailure for HttpError {
    fn verdict(&self) -> Verdict {
        classify(self)
    }
}

/// The kind of the I/O error behind `e`, if the connection broke.
fn broken_connection(e: &reqwest::Error) -> Option<std::io::ErrorKind> {
    use std::io::ErrorKind::*;
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | TimedOut) {
                return Some(io.kind());
            }
        }
        source = cause.source();
    }
    None
}

/// The verdict for a `reqwest::Error`: connect errors, resets and incomplete
/// bodies `Retry`, timeouts `Timeout`; building, redirect and decode errors
/// `Fail` (sending again would fail the same way); a status error by its status.
///
/// reqwest reports a body that broke off while being read as a *decode*
/// error; one caused by the connection (end of file, reset, broken pipe) is
/// told apart and retried.
pub fn classify_reqwest(e: &reqwest::Error) -> Verdict {
    if let Some(kind) = broken_connection(e) {
        return if kind == std::io::ErrorKind::TimedOut { Verdict::Timeout } else { Verdict::Retry };
    }
    if e.is_builder() || e.is_redirect() || e.is_decode() {
        return Verdict::Fail;
    }
    if let Some(status) = e.status() {
        return classify_status(status, &http::HeaderMap::new());
    }
    if e.is_timeout() {
        return Verdict::Timeout;
    }
    // Connect, request (reset, closed early) and body (cut short) errors.
    Verdict::Retry
}

/// The run's error inside an error that [`RetryMiddleware`](crate::RetryMiddleware)
/// returned: how many attempts were made, why the run stopped, and the last
/// [`HttpError`]. `None` for an error the middleware did not make (one from
/// another middleware, or a request the client could not build).
///
/// This is the one way to reach the cause: the middleware hands its errors to
/// `reqwest_middleware` as `Error::Middleware(anyhow::Error)`, so neither
/// `downcast_ref` on the outer error nor `source()` alone finds it. It is
/// also found under an outer middleware's `.context(..)`, or under its own
/// error whose `source()` chain leads to it.
///
/// ```no_run
/// # async fn demo(client: reqwest_middleware::ClientWithMiddleware) {
/// match client.get("http://api.weather.test/forecast").send().await {
///     Ok(resp) => println!("{}", resp.status()),
///     Err(err) => match backstop_http::retry_error(&err) {
///         Some(run) => eprintln!("gave up after {} attempts: {run:#}", run.attempts()),
///         None => eprintln!("{err}"),
///     },
/// }
/// # }
/// ```
pub fn retry_error(error: &reqwest_middleware::Error) -> Option<&backstop::RetryError<HttpError>> {
    match error {
        // Under another middleware's context or its own error (with ours as
        // its source), the run's error is further down the chain.
        // (A `reqwest_middleware::Error` met on the way is looked into: its
        // `source()` skips the error it holds.)
        reqwest_middleware::Error::Middleware(inner) => inner.chain().find_map(|e| {
            e.downcast_ref().or_else(|| e.downcast_ref::<reqwest_middleware::Error>().and_then(retry_error))
        }),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}
