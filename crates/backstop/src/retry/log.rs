//! A run's log lines (through `tracing`) and counters (through `metrics`):
//! each function compiles to nothing when its feature is off. The lines and
//! counters are listed in [the observability page](crate::docs::observability).

use std::fmt::Display;
use std::time::Duration;

use super::Name;
use super::error::RetryError;
use super::event::RetryEvent;
use crate::breaker::CircuitOpen;
#[cfg(feature = "tracing")]
use crate::duration::Seconds;
use crate::verdict::Describe;

/// Why a run gave up, for the `reason` label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GiveUp {
    Attempts,
    Deadline,
    RetryAfter,
    Rejected,
    CircuitOpen,
    Budget,
    Throttled,
    Limited,
}

impl GiveUp {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn label(self) -> &'static str {
        match self {
            GiveUp::Attempts => "attempts",
            GiveUp::Deadline => "deadline",
            GiveUp::RetryAfter => "retry_after",
            GiveUp::Rejected => "rejected",
            GiveUp::CircuitOpen => "circuit_open",
            GiveUp::Budget => "budget",
            GiveUp::Throttled => "throttled",
            GiveUp::Limited => "limit",
        }
    }
}

/// An attempt succeeded: counted (with `metrics`), not logged (a first
/// attempt's success is the hot path; a later one's is [`succeeded_after_retry`]).
#[inline]
pub(crate) fn attempt_succeeded(name: &Name) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_attempts_total", "name" => name.clone(), "outcome" => "success").increment(1);
    let _ = name;
}

/// The run succeeded after one retry or more: one INFO line.
pub(crate) fn succeeded_after_retry(name: &Name, attempt: u32, max_attempts: u32, elapsed: Duration) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        name = %name,
        attempt,
        max_attempts,
        elapsed_ms = elapsed.as_millis() as u64,
        "{name} succeeded on attempt {attempt}"
    );
    let _ = (name, attempt, max_attempts, elapsed);
}

pub(crate) fn attempt_failed(name: &Name) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_attempts_total", "name" => name.clone(), "outcome" => "failure").increment(1);
    let _ = name;
}

pub(crate) fn retrying<E: Display>(name: &Name, event: &RetryEvent<'_, E>, describe: Option<Describe<E>>) {
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
        error = %Shown(event.error, describe),
        "{}",
        Line(event, describe),
    );
    let _ = (name, event, describe);
}

/// The run gave up: `max_attempts` is the policy's, `elapsed` the run's
/// time (none if it ended before its clock was read).
pub(crate) fn gave_up<E: Display>(
    name: &Name,
    why: GiveUp,
    error: &RetryError<E>,
    max_attempts: u32,
    elapsed: Option<Duration>,
    describe: Option<Describe<E>>,
) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_exhausted_total", "name" => name.clone(), "reason" => why.label()).increment(1);
    // A call refused before anything ran (an open circuit, the throttle)
    // happens once per call in an outage: DEBUG, counted by `metrics`;
    // the state change behind it is the WARN.
    #[cfg(feature = "tracing")]
    {
        let attempt = error.attempts();
        let elapsed_ms = elapsed.map(|e| e.as_millis() as u64);
        match error.last_error() {
            None if matches!(why, GiveUp::CircuitOpen | GiveUp::Throttled) => {
                tracing::debug!(name = %name, attempt, max_attempts, elapsed_ms, reason = why.label(), "{error:#}");
            }
            None => {
                tracing::warn!(name = %name, attempt, max_attempts, elapsed_ms, reason = why.label(), "{error:#}");
            }
            // The run's own line (`{}`), then the last error as described.
            Some(last) => tracing::warn!(
                name = %name,
                attempt,
                max_attempts,
                elapsed_ms,
                reason = why.label(),
                error = %Shown(last, describe),
                "{error}: {}",
                Shown(last, describe)
            ),
        }
    }
    let _ = (name, why, error, max_attempts, elapsed, describe);
}

/// A retry's line, its error as [`Shown`].
#[cfg(feature = "tracing")]
struct Line<'a, 'e, E>(&'a RetryEvent<'e, E>, Option<Describe<E>>);

#[cfg(feature = "tracing")]
impl<E: Display> Display for Line<'_, '_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.line(f, |f| Shown(self.0.error, self.1).fmt(f))
    }
}

/// An error as the log lines print it: by the classifier's describer, else
/// in its `{:#}` form (the whole chain).
#[cfg(feature = "tracing")]
struct Shown<'a, E>(&'a E, Option<Describe<E>>);

#[cfg(feature = "tracing")]
impl<E: Display> Display for Shown<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(describe) => describe(self.0, f),
            None => write!(f, "{:#}", self.0),
        }
    }
}

pub(crate) fn waiting_for_circuit(name: &Name, open: &CircuitOpen, wait: Duration) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        name = %name,
        wait_ms = wait.as_millis() as u64,
        "{name} waits {} seconds for circuit {} to let a probe through",
        Seconds(wait),
        open.name()
    );
    let _ = (name, open, wait);
}

pub(crate) fn throttled_locally(name: &Name, probability: f64) {
    #[cfg(feature = "tracing")]
    tracing::debug!(name = %name, "{name} rejected locally by the adaptive throttle (p={probability:.2})");
    let _ = (name, probability);
}
