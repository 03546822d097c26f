//! What a run tells the world: [`RetryEvent`] for callbacks, log lines through
//! `tracing`, counters through `metrics`.
//!
//! With the `tracing` feature (on by default) a run logs the seeds' lines,
//! with structured fields (`name`, `attempt`, `max_attempts`, `delay_ms`,
//! `elapsed_ms`, `error`):
//!
//! | when | level | message |
//! |---|---|---|
//! | before each retry | INFO | `Retrying upload_to_s3 in 1.0 seconds (attempt 1/5): <error>` |
//! | success after a retry | INFO | `upload_to_s3 succeeded on attempt 3` |
//! | permanent error | WARN | `upload_to_s3 failed with a permanent error on attempt 1: <error>` |
//! | gave up | WARN | the [`RetryError`](crate::RetryError)'s one-line `Display` |
//!
//! A first-attempt success logs nothing: the hot path stays silent.
//!
//! With the `metrics` feature, counters through the `metrics` facade, all
//! labelled `name`:
//!
//! | counter | extra label | counts |
//! |---|---|---|
//! | `backstop_attempts_total` | `outcome` = `success` / `failure` | every attempt |
//! | `backstop_retries_total` | | every retry (each sleep) |
//! | `backstop_exhausted_total` | `reason` = `attempts` / `deadline` / `retry_after` / `rejected` | every run that gave up |
//!
//! (The facade builds a label set per record, so with `metrics` on, each call
//! allocates once; without it, the success path allocates nothing.)

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

/// Why a run gave up, for the `reason` label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GiveUp {
    Attempts,
    Deadline,
    RetryAfter,
    Rejected,
}

impl GiveUp {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            GiveUp::Attempts => "attempts",
            GiveUp::Deadline => "deadline",
            GiveUp::RetryAfter => "retry_after",
            GiveUp::Rejected => "rejected",
        }
    }
}

/// Emission of log lines and counters; each function compiles to nothing
/// when its feature is off.
pub(crate) mod emit {
    use super::*;
    use crate::error::Name;

    #[inline]
    pub(crate) fn attempt_succeeded(name: &Name, attempt: u32) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_attempts_total", "name" => name.clone(), "outcome" => "success")
            .increment(1);
        #[cfg(feature = "tracing")]
        if attempt > 1 {
            tracing::info!(name = %name, attempt, "{name} succeeded on attempt {attempt}");
        }
        let _ = (name, attempt);
    }

    pub(crate) fn attempt_failed(name: &Name) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_attempts_total", "name" => name.clone(), "outcome" => "failure")
            .increment(1);
        let _ = name;
    }

    pub(crate) fn retrying<E: std::fmt::Display>(name: &Name, event: &RetryEvent<'_, E>) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_retries_total", "name" => name.clone()).increment(1);
        #[cfg(feature = "tracing")]
        tracing::info!(
            name = %name,
            attempt = event.attempt,
            max_attempts = event.max_attempts,
            delay_ms = event.delay.as_millis() as u64,
            elapsed_ms = event.elapsed.as_millis() as u64,
            server_hint = event.server_hint,
            error = %event.error,
            "Retrying {name} in {:.1} seconds (attempt {}/{}): {}",
            event.delay.as_secs_f64(),
            event.attempt,
            event.max_attempts,
            event.error,
        );
        let _ = (name, event);
    }

    pub(crate) fn gave_up<E: std::fmt::Display>(
        name: &Name,
        why: GiveUp,
        error: &crate::RetryError<E>,
    ) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_exhausted_total", "name" => name.clone(), "reason" => why.label())
            .increment(1);
        #[cfg(feature = "tracing")]
        tracing::warn!(
            name = %name,
            attempts = error.attempts(),
            reason = why.label(),
            "{error}"
        );
        let _ = (name, why, error);
    }
}
