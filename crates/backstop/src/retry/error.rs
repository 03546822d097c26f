//! Why a run gave up: [`RetryError`].
//!
//! Every way a run can end without a value is a variant, and every variant
//! keeps the last error the operation returned (its field `last`), so nothing
//! the caller needs for a decision or a log line is lost.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use super::Name;
use crate::breaker::CircuitOpen;
use crate::duration::Seconds;
use crate::limit::LimitError;

/// The error of a retried operation that did not succeed.
///
/// Its `Display` says what happened in one line, with the name given by
/// [`Retry::name`](crate::retry::Retry::name); `{:#}` adds the last error
/// (see [how backstop's errors print](crate::error#how-backstops-errors-print)):
///
/// ```
/// use std::time::Duration;
/// use backstop::{ManualClock, RetryError, RetryPolicy};
///
/// let clock = ManualClock::new();
/// let policy = RetryPolicy::builder().seed(1).build()?;
/// let err = policy
///     .retry(|| Err::<(), _>("SlowDown"))
///     .name("upload_to_s3")
///     .clock(&clock)
///     .call()
///     .unwrap_err();
/// assert!(matches!(err, RetryError::Exhausted { attempts: 5, .. }));
/// assert_eq!(err.last_error(), Some(&"SlowDown"));
/// assert!(err.to_string().starts_with("upload_to_s3 failed after 5 attempts in "));
/// assert!(format!("{err:#}").ends_with(": SlowDown"));
/// # Ok::<(), backstop::ConfigError>(())
/// ```
///
/// `elapsed` is measured on the run's [`Clock`](crate::Clock): from the first
/// call when the policy has a deadline, otherwise from the first failure (the
/// success path reads no clock at all). `Exhausted` prints it
/// (`failed after 5 attempts in 7.5 seconds`) unless it is zero, as it is
/// for a single attempt without a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// Every attempt failed with a transient error.
    Exhausted {
        /// The run's name.
        name: Name,
        /// Attempts made, the first call included.
        attempts: u32,
        /// Time the run took (see the type's docs).
        elapsed: Duration,
        /// The last attempt's error.
        last: E,
    },
    /// The classifier called the error permanent: returned at once, unretried.
    Rejected {
        /// The run's name.
        name: Name,
        /// Attempts made, the rejected one included.
        attempts: u32,
        /// The permanent error, which the last attempt returned.
        last: E,
    },
    /// The deadline ([`RetryPolicy::max_elapsed`](crate::RetryPolicy::max_elapsed))
    /// came: the next retry's delay would have crossed it, so the run stopped
    /// without sleeping, or (async runs) it passed while an attempt was running
    /// and the attempt was dropped.
    DeadlineExceeded {
        /// The run's name.
        name: Name,
        /// Attempts made (a dropped attempt included).
        attempts: u32,
        /// Time the run took when it stopped.
        elapsed: Duration,
        /// The deadline.
        deadline: Duration,
        /// The error of the last attempt that finished, if any did.
        last: Option<E>,
    },
    /// The server asked for a wait longer than the policy's
    /// [`max_retry_after`](crate::RetryPolicy::max_retry_after); the run stopped
    /// at once and keeps the hint, so the caller can reschedule the work.
    RetryAfterTooLong {
        /// The run's name.
        name: Name,
        /// Attempts made.
        attempts: u32,
        /// The server's hint.
        retry_after: Duration,
        /// The policy's cap on hints.
        max_retry_after: Duration,
        /// The last attempt's error, which carried the hint.
        last: E,
    },
    /// The run's [`CircuitBreaker`](crate::CircuitBreaker) is open: the
    /// downstream is known to be down, so the run stopped at once instead of
    /// sleeping against it.
    CircuitOpen {
        /// The run's name.
        name: Name,
        /// Attempts made, a rejected one included.
        attempts: u32,
        /// The breaker's rejection: its name, state and when a probe may pass.
        open: CircuitOpen,
        /// The error of the last attempt that ran, if any ran.
        last: Option<E>,
    },
    /// The run's [`RetryBudget`](crate::RetryBudget) had nothing left for
    /// another retry: retries across all its users are already at their limit,
    /// so this one was not made.
    BudgetExhausted {
        /// The run's name.
        name: Name,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
    /// The run's [`AdaptiveThrottle`](crate::AdaptiveThrottle) rejected an
    /// attempt locally: the downstream has been refusing most requests, so
    /// this one was not sent.
    Throttled {
        /// The run's name.
        name: Name,
        /// Attempts made, the rejected one included.
        attempts: u32,
        /// The error of the last attempt that ran, if any ran.
        last: Option<E>,
    },
    /// The run's [`ConcurrencyLimit`](crate::limit::ConcurrencyLimit) gave
    /// no place to an attempt: its queue was full, or the attempt waited its
    /// queue timeout. The attempt was not made.
    Limited {
        /// The run's name.
        name: Name,
        /// Attempts made (the refused one not counted).
        attempts: u32,
        /// Why the limit refused.
        refused: LimitError,
        /// The error of the last attempt that ran, if any ran.
        last: Option<E>,
    },
}

/// A run that ended before any attempt returned an error: its
/// [breaker](crate::CircuitBreaker) was open, its
/// [throttle](crate::AdaptiveThrottle) refused, or its deadline passed while
/// it waited for its [pacer](crate::Pacer) or (async runs) during its first
/// attempt. It is a [`RetryError`] that cannot hold a last error;
/// [`RetryError::last_or_stopped`] gives it.
///
/// A function under `#[backstop::retry]` with a breaker, a throttle, a pacer
/// or an async deadline returns its own error type, so that type must be
/// buildable from this one: implement `From<Stopped>` for it. `io::Error`,
/// `Box<dyn Error + Send + Sync>` and `anyhow::Error` already are.
///
/// ```
/// use backstop::retry::Stopped;
///
/// #[derive(Debug)]
/// enum UploadError {
///     Io(std::io::Error),
///     Stopped(Stopped),
/// }
///
/// impl From<Stopped> for UploadError {
///     fn from(stopped: Stopped) -> Self {
///         UploadError::Stopped(stopped)
///     }
/// }
/// ```
pub type Stopped = RetryError<std::convert::Infallible>;

/// The kind of [`io::Error`](std::io::Error) a [`Stopped`] run becomes:
/// `TimedOut` for a deadline, `Other` for an open circuit or a throttle.
impl From<Stopped> for std::io::Error {
    fn from(stopped: Stopped) -> Self {
        let kind = match stopped {
            RetryError::DeadlineExceeded { .. } => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, stopped)
    }
}

impl<E> RetryError<E> {
    /// The last error an attempt returned, or, if none did, the run's end as
    /// a [`Stopped`] (same variant, name and attempts, no last error).
    ///
    /// ```
    /// use backstop::{presets, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder("s3").build();
    /// breaker.isolate();
    /// let err = presets::DEFAULT.retry(|| Ok::<(), std::io::Error>(())).breaker(&breaker).call().unwrap_err();
    /// let stopped = err.last_or_stopped().unwrap_err();
    /// assert_eq!(stopped.attempts(), 0);
    /// assert!(stopped.circuit_open().is_some());
    /// ```
    pub fn last_or_stopped(self) -> Result<E, Stopped> {
        match self {
            Self::Exhausted { last, .. }
            | Self::RetryAfterTooLong { last, .. }
            | Self::BudgetExhausted { last, .. }
            | Self::Rejected { last, .. } => Ok(last),
            Self::DeadlineExceeded { last: Some(last), .. }
            | Self::CircuitOpen { last: Some(last), .. }
            | Self::Throttled { last: Some(last), .. }
            | Self::Limited { last: Some(last), .. } => Ok(last),
            Self::DeadlineExceeded { name, attempts, elapsed, deadline, last: None } => {
                Err(RetryError::DeadlineExceeded { name, attempts, elapsed, deadline, last: None })
            }
            Self::CircuitOpen { name, attempts, open, last: None } => {
                Err(RetryError::CircuitOpen { name, attempts, open, last: None })
            }
            Self::Throttled { name, attempts, last: None } => Err(RetryError::Throttled { name, attempts, last: None }),
            Self::Limited { name, attempts, refused, last: None } => {
                Err(RetryError::Limited { name, attempts, refused, last: None })
            }
        }
    }
}

impl<E> RetryError<E> {
    /// The fields every variant has: name and attempts.
    fn common(&self) -> (&Name, u32) {
        match self {
            Self::Exhausted { name, attempts, .. }
            | Self::Rejected { name, attempts, .. }
            | Self::DeadlineExceeded { name, attempts, .. }
            | Self::RetryAfterTooLong { name, attempts, .. }
            | Self::CircuitOpen { name, attempts, .. }
            | Self::BudgetExhausted { name, attempts, .. }
            | Self::Throttled { name, attempts, .. }
            | Self::Limited { name, attempts, .. } => (name, *attempts),
        }
    }

    /// The number of attempts made, the first call included.
    pub fn attempts(&self) -> u32 {
        self.common().1
    }

    /// The name of the run that failed.
    pub fn name(&self) -> &str {
        self.common().0
    }

    /// The last error the operation returned, if it ran at all.
    pub fn last_error(&self) -> Option<&E> {
        match self {
            Self::Exhausted { last, .. }
            | Self::RetryAfterTooLong { last, .. }
            | Self::BudgetExhausted { last, .. }
            | Self::Rejected { last, .. } => Some(last),
            Self::DeadlineExceeded { last, .. }
            | Self::CircuitOpen { last, .. }
            | Self::Throttled { last, .. }
            | Self::Limited { last, .. } => last.as_ref(),
        }
    }

    /// The last error the operation returned, by value.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Exhausted { last, .. }
            | Self::RetryAfterTooLong { last, .. }
            | Self::BudgetExhausted { last, .. }
            | Self::Rejected { last, .. } => Some(last),
            Self::DeadlineExceeded { last, .. }
            | Self::CircuitOpen { last, .. }
            | Self::Throttled { last, .. }
            | Self::Limited { last, .. } => last,
        }
    }

    /// The breaker's rejection, for a run stopped by [`Self::CircuitOpen`].
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        match self {
            Self::CircuitOpen { open, .. } => Some(open),
            _ => None,
        }
    }

    /// Whether the error was classified permanent (no retry could help).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// The server's hint, for a run stopped by [`Self::RetryAfterTooLong`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RetryAfterTooLong { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Applies `f` to the kept error, keeping everything else.
    pub fn map_err<F, E2>(self, f: F) -> RetryError<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            Self::Exhausted { name, attempts, elapsed, last } => {
                RetryError::Exhausted { name, attempts, elapsed, last: f(last) }
            }
            Self::Rejected { name, attempts, last } => RetryError::Rejected { name, attempts, last: f(last) },
            Self::DeadlineExceeded { name, attempts, elapsed, deadline, last } => {
                RetryError::DeadlineExceeded { name, attempts, elapsed, deadline, last: last.map(f) }
            }
            Self::RetryAfterTooLong { name, attempts, retry_after, max_retry_after, last } => {
                RetryError::RetryAfterTooLong { name, attempts, retry_after, max_retry_after, last: f(last) }
            }
            Self::CircuitOpen { name, attempts, open, last } => {
                RetryError::CircuitOpen { name, attempts, open, last: last.map(f) }
            }
            Self::BudgetExhausted { name, attempts, last } => {
                RetryError::BudgetExhausted { name, attempts, last: f(last) }
            }
            Self::Throttled { name, attempts, last } => RetryError::Throttled { name, attempts, last: last.map(f) },
            Self::Limited { name, attempts, refused, last } => {
                RetryError::Limited { name, attempts, refused, last: last.map(f) }
            }
        }
    }
}

/// `1 attempt` / `5 attempts`.
struct Attempts(u32);

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.0 == 1 { "" } else { "s" };
        write!(f, "{} attempt{s}", self.0)
    }
}

/// `after 2 attempts` / `before its first attempt` (a run refused before it
/// made any: an open circuit, the throttle, a pacer wait past the deadline).
struct After(u32);

impl fmt::Display for After {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("before its first attempt"),
            n => write!(f, "after {}", Attempts(n)),
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    /// One line: what the run did and why it stopped. With `{:#}`, the last
    /// error follows, in its own `{:#}` form (the whole chain, each cause once).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, attempts) = self.common();
        let (n, after) = (Attempts(attempts), After(attempts));
        match self {
            // A run without a deadline counts time from its first failure,
            // so a single attempt has nothing to report.
            Self::Exhausted { elapsed, .. } if elapsed.is_zero() => write!(f, "{name} failed after {n}"),
            Self::Exhausted { elapsed, .. } => write!(f, "{name} failed after {n} in {} seconds", Seconds(*elapsed)),
            Self::Rejected { attempts: 0, .. } => write!(f, "{name} failed before its first attempt"),
            Self::Rejected { .. } => write!(f, "{name} failed on attempt {attempts} with an error that is not retried"),
            Self::DeadlineExceeded { elapsed, deadline, .. } => {
                let (elapsed, deadline) = (Seconds(*elapsed), Seconds(*deadline));
                write!(f, "{name} stopped {after} in {elapsed} seconds: its deadline of {deadline} seconds came")
            }
            Self::RetryAfterTooLong { retry_after, max_retry_after, .. } => write!(
                f,
                "{name} stopped {after}: the server asked to wait {} seconds, longer than max_retry_after ({} seconds)",
                Seconds(*retry_after),
                Seconds(*max_retry_after)
            ),
            Self::CircuitOpen { open, .. } => write!(f, "{name} stopped {after}: {open}"),
            Self::BudgetExhausted { .. } => write!(f, "{name} stopped {after}: the retry budget is spent"),
            Self::Throttled { .. } => write!(f, "{name} stopped {after}: the adaptive throttle rejected it locally"),
            Self::Limited { refused, .. } => write!(f, "{name} stopped {after}: {refused}"),
        }?;
        match self.last_error() {
            Some(last) if f.alternate() => write!(f, ": {last:#}"),
            _ => Ok(()),
        }
    }
}

impl<E> Error for RetryError<E>
where
    E: Error + 'static,
{
    /// The last error the operation returned (see [`last_error`](RetryError::last_error)).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.last_error().map(|e| e as &(dyn Error + 'static))
    }
}
