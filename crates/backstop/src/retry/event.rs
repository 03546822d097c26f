//! What a run tells its caller before every retry: the [`RetryEvent`] handed
//! to [`on_retry`](super::Retry::on_retry) callbacks.

use std::time::Duration;

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
