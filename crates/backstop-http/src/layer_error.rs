//! The error of a [`RetryService`](crate::RetryService) call that ended with
//! no response to give back: [`LayerError`], boxed as [`BoxError`].

use std::error::Error as StdError;
use std::fmt;

use crate::error::NotRetried;

/// The error type of a [`RetryService`](crate::RetryService): boxed, as tower's own layers do.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a call through [`RetryLayer`](crate::RetryLayer) gave no response: the
/// run's own message (`GET api.test/forecast failed after 3 attempts in
/// 1.5s`), how many attempts were made, why the request was not retried (if
/// it was not), and the last attempt's error as its [`source()`](StdError::source).
///
/// The service's error type is tower's `BoxError`; downcast it to reach this:
///
/// ```no_run
/// # async fn demo(err: backstop_http::BoxError) {
/// use backstop_http::LayerError;
///
/// if let Some(run) = err.downcast_ref::<LayerError>() {
///     eprintln!("gave up after {} attempts: {run:#}", run.attempts());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct LayerError {
    pub(crate) message: String,
    pub(crate) attempts: u32,
    pub(crate) not_retried: Option<NotRetried>,
    pub(crate) last: Option<BoxError>,
}

impl LayerError {
    /// The attempts made (0: the request was refused before it was sent,
    /// by an open circuit or the throttle).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the request was sent once and not retried, if it was.
    pub fn not_retried(&self) -> Option<NotRetried> {
        self.not_retried
    }

    /// The last attempt's error, if an attempt failed with one (a run
    /// refused before any attempt, or cut by its deadline, has none).
    pub fn last(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.last.as_deref()
    }
}

impl fmt::Display for LayerError {
    /// One layer: the run's message (and why it was not retried); with
    /// `{:#}`, the last error's chain follows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(reason) = self.not_retried {
            write!(f, " (not retried: {reason})")?;
        }
        match &self.last {
            Some(last) if f.alternate() => write!(f, ": {}", backstop::error::Chain(last.as_ref())),
            _ => Ok(()),
        }
    }
}

impl StdError for LayerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.last.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}
