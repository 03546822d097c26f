//! The errors of a breaker: [`CircuitOpen`] (a call was not let through) and
//! [`BreakerError`] (what [`CircuitBreaker::call`](super::CircuitBreaker::call) returns).

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::CircuitState;

/// A call the breaker did not let through.
///
/// It says which breaker, in which state, and how long until a probe may be
/// let through (`None` while [isolated](super::CircuitBreaker::isolate)):
/// enough for a caller to fail fast, reschedule, or answer `503` with a
/// `Retry-After` of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    pub(crate) name: Arc<str>,
    pub(crate) state: CircuitState,
    pub(crate) retry_after: Option<Duration>,
}

impl CircuitOpen {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's state when it rejected the call: `Open`, `HalfOpen` (its
    /// probe slots were taken) or `Isolated`.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Time until the breaker lets a probe through: the rest of the open
    /// period, zero when half-open (a probe slot frees when a probe ends), or
    /// `None` while isolated.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match (self.state, self.retry_after) {
            (CircuitState::HalfOpen, _) => {
                write!(f, "circuit {name} is half-open and all its probe slots are taken")
            }
            (_, None) => write!(f, "circuit {name} is isolated until it is reset"),
            (state, Some(d)) => {
                write!(f, "circuit {name} is {state}; next probe in {} seconds", crate::duration::Seconds(d))
            }
        }
    }
}

impl Error for CircuitOpen {}

/// The error of a call made through [`CircuitBreaker::call`](super::CircuitBreaker::call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError<E> {
    /// The breaker rejected the call; the operation did not run.
    Open(CircuitOpen),
    /// The operation ran and failed.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The operation's error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::Open(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    /// Transparent: the rejection's or the operation's error's own `Display`
    /// (flags such as `{:#}` passed through).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open(open) => fmt::Display::fmt(open, f),
            BreakerError::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: Error + 'static> Error for BreakerError<E> {
    /// Transparent: the operation's error's own cause (a rejection has none).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Open(_) => None,
            BreakerError::Inner(e) => e.source(),
        }
    }
}
