//! A run's log lines (through `tracing`) and counters (through `metrics`):
//! each function compiles to nothing when its feature is off. The lines and
//! counters are listed in [the observability page](crate::docs::observability).

use std::fmt::Display;
use std::time::Duration;

use super::Name;
use super::error::RetryError;
use super::event::RetryEvent;
use crate::breaker::CircuitOpen;

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
        }
    }
}

#[inline]
pub(crate) fn attempt_succeeded(name: &Name, attempt: u32) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_attempts_total", "name" => name.clone(), "outcome" => "success").increment(1);
    #[cfg(feature = "tracing")]
    if attempt > 1 {
        tracing::info!(name = %name, attempt, "{name} succeeded on attempt {attempt}");
    }
    let _ = (name, attempt);
}

pub(crate) fn attempt_failed(name: &Name) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_attempts_total", "name" => name.clone(), "outcome" => "failure").increment(1);
    let _ = name;
}

/// A delay in seconds as the seeds write it (`1.0`, `2.5`), with three
/// decimals below a tenth of a second, where one would say `0.0`.
#[cfg(feature = "tracing")]
struct Seconds(Duration);

#[cfg(feature = "tracing")]
impl Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs > 0.0 && secs < 0.1 { write!(f, "{secs:.3}") } else { write!(f, "{secs:.1}") }
    }
}

pub(crate) fn retrying<E: Display>(name: &Name, event: &RetryEvent<'_, E>) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_retries_total", "name" => name.clone()).increment(1);
    #[cfg(feature = "tracing")]
    // The message says the name, attempt and error; the fields add only
    // what it does not (exact milliseconds, whether a server asked).
    tracing::info!(
        delay_ms = event.delay.as_millis() as u64,
        elapsed_ms = event.elapsed.as_millis() as u64,
        server_hint = event.server_hint,
        "Retrying {name} in {} seconds (attempt {}/{}): {:#}",
        Seconds(event.delay),
        event.attempt,
        event.max_attempts,
        event.error,
    );
    let _ = (name, event);
}

pub(crate) fn gave_up<E: Display>(name: &Name, why: GiveUp, error: &RetryError<E>) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_exhausted_total", "name" => name.clone(), "reason" => why.label()).increment(1);
    // A call refused before anything ran (an open circuit, the throttle)
    // happens once per call in an outage: DEBUG, counted by `metrics`;
    // the state change behind it is the WARN.
    #[cfg(feature = "tracing")]
    if error.last_error().is_none() && matches!(why, GiveUp::CircuitOpen | GiveUp::Throttled) {
        tracing::debug!(reason = why.label(), "{error:#}");
    } else {
        tracing::warn!(reason = why.label(), "{error:#}");
    }
    let _ = (name, why, error);
}

pub(crate) fn waiting_for_circuit(name: &Name, open: &CircuitOpen, wait: Duration) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        wait_ms = wait.as_millis() as u64,
        "{name} waits {} seconds for circuit {} to let a probe through",
        Seconds(wait),
        open.name()
    );
    let _ = (name, open, wait);
}

pub(crate) fn throttled_locally(name: &Name, probability: f64) {
    #[cfg(feature = "tracing")]
    tracing::debug!("{name} rejected locally by the adaptive throttle (p={probability:.2})");
    let _ = (name, probability);
}
