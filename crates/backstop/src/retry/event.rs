//! What a run tells its caller before every retry: the [`RetryEvent`] handed
//! to [`on_retry`](super::Retry::on_retry) callbacks.

use std::fmt::{self, Display};
use std::time::Duration;

use crate::duration::Seconds;

/// A retry about to happen, handed to [`Retry::on_retry`](crate::retry::Retry::on_retry)
/// callbacks before the run sleeps.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a, E> {
    /// The run's name.
    pub name: &'a str,
    /// The attempt that just failed, from 1.
    pub attempt: u32,
    /// The policy's attempt limit.
    pub max_attempts: u32,
    /// How long the run will sleep before the next attempt.
    pub delay: Duration,
    /// The error of the failed attempt.
    pub error: &'a E,
    /// Time since the run started (see [`RetryError`](crate::RetryError) for
    /// when that is).
    pub elapsed: Duration,
    /// Whether `delay` is a server's `Retry-After` hint rather than the backoff's.
    pub server_hint: bool,
}

impl<E: Display> Display for RetryEvent<'_, E> {
    /// The run's log line for this retry, the error in its `{:#}` form:
    /// `Retrying upload_to_s3 in 1.0 seconds (attempt 1/5): SlowDown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.line(f, |f| write!(f, "{:#}", self.error))
    }
}

impl<E> RetryEvent<'_, E> {
    /// Writes the log line, the error written by `error`.
    pub(crate) fn line(
        &self,
        f: &mut fmt::Formatter<'_>,
        error: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        write!(
            f,
            "Retrying {} in {} seconds (attempt {}/{}): ",
            self.name,
            Seconds(self.delay),
            self.attempt,
            self.max_attempts
        )?;
        error(f)
    }
}

/// A callback run before every retry. Any `FnMut(&RetryEvent<E>)` is one;
/// `()` is the empty one.
pub trait OnRetry<E> {
    /// Called with the event before the run sleeps.
    fn on_retry(&mut self, event: &RetryEvent<'_, E>);
}

impl<E> OnRetry<E> for () {
    fn on_retry(&mut self, _: &RetryEvent<'_, E>) {}
}

impl<E, F> OnRetry<E> for F
where
    F: FnMut(&RetryEvent<'_, E>),
{
    fn on_retry(&mut self, event: &RetryEvent<'_, E>) {
        self(event)
    }
}
