//! Injected faults (feature `chaos`; see `backstop::chaos`) in the
//! middleware and the layer: what an attempt given a fault answers instead
//! of sending its request.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use backstop::Verdict;
use backstop::chaos::{Chaos, Fault};

use crate::error::HttpError;

/// What `chaos` injects into one attempt: sleeps its delay, and returns
/// its fault, if any. An injected timeout with a per-attempt timeout set
/// hangs, as a server that does not answer, until that timeout cuts the
/// attempt (the client's own setting is what is tested); without one it
/// is returned at once.
pub(crate) async fn inject(chaos: Option<Chaos>, attempt_timeout: Option<Duration>) -> Option<Fault> {
    let chaos = chaos?;
    let injection = chaos.next();
    if !injection.delay.is_zero() {
        chaos.clock().sleep_async(injection.delay).await;
    }
    let fault = injection.fault?;
    if fault == Fault::Timeout && attempt_timeout.is_some() {
        std::future::pending::<()>().await;
    }
    Some(fault)
}

/// The middleware's answer to an injected fault for a request to `url`:
/// the response a server would give (503; 429; 429 with `Retry-After`; 400,
/// returned as it is), from `url`, or a timeout.
#[allow(clippy::result_large_err)] // the type a real attempt returns
pub(crate) fn response(fault: Fault, url: &reqwest::Url) -> Result<reqwest::Response, HttpError> {
    use reqwest::ResponseBuilderExt;
    let status = |code: u16, retry_after: Option<Duration>| {
        let mut b = http::Response::builder().status(code).url(url.clone());
        if let Some(d) = retry_after {
            b = b.header(http::header::RETRY_AFTER, d.as_secs_f64().ceil().to_string());
        }
        let body = fault.to_string();
        reqwest::Response::from(b.body(body).unwrap_or_else(|_| http::Response::new(String::new())))
    };
    match fault {
        Fault::Unavailable => Err(HttpError::Status(status(503, None))),
        Fault::Throttled => Err(HttpError::Status(status(429, None))),
        Fault::RetryAfter(d) => Err(HttpError::Status(status(429, Some(d)))),
        Fault::Timeout => Err(HttpError::TimedOut(Duration::ZERO)),
        Fault::Permanent => Ok(status(400, None)),
        _ => Err(HttpError::Status(status(503, None))),
    }
}

/// The layer's answer to an injected fault: an error its classifier reads
/// as the fault's verdict (the layer cannot make a response of the inner
/// service's body type).
#[derive(Debug)]
pub(crate) struct Injected(pub(crate) Fault);

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for Injected {}

impl Injected {
    /// What the fault says to a run: as the status it stands for would.
    pub(crate) fn verdict(&self) -> Verdict {
        match self.0 {
            Fault::Throttled => Verdict::Throttled,
            Fault::RetryAfter(d) => Verdict::RetryAfter(d),
            Fault::Timeout => Verdict::Timeout,
            Fault::Permanent => Verdict::Fail,
            _ => Verdict::Retry,
        }
    }
}
