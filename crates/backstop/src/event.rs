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
//! | error not retried | WARN | `upload_to_s3 failed on attempt 1 with an error that is not retried: <error>` |
//! | gave up | WARN | the [`RetryError`](crate::RetryError) in its `{:#}` form (one line, the last error's causes included) |
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
//! | `backstop_exhausted_total` | `reason` = `attempts` / `deadline` / `retry_after` / `rejected` / `circuit_open` / `budget` / `throttled` | every run that gave up |
//!
//! (The facade builds a label set per record, so with `metrics` on, each call
//! allocates once; without it, the success path allocates nothing.)
//!
//! A [`CircuitBreaker`](crate::CircuitBreaker) reports every state change as a
//! [`BreakerEvent`] to its `on_state_change` callback, and logs it:
//!
//! | change | level | message |
//! |---|---|---|
//! | opened | WARN | `circuit s3_upload opened for 30.0s: 5 consecutive failures` |
//! | half-open | INFO | `circuit s3_upload half-open: letting 1 probe through` |
//! | closed | INFO | `circuit s3_upload closed: 1 probe succeeded` |
//! | isolated | WARN | `circuit s3_upload isolated until reset` |
//!
//! A [`RetryBudget`](crate::RetryBudget) logs a WARN when it denies a retry
//! (`retry denied: retry budget s3 is spent (2.0 left)`); with `metrics`, the
//! gauge `backstop_budget_level` and counter `backstop_budget_denied_total`,
//! labelled `budget`.
//!
//! With `metrics`: gauge `backstop_circuit_state` (0 closed, 1 open,
//! 2 half-open, 3 isolated), counters `backstop_circuit_rejected_total` and
//! `backstop_circuit_transitions_total` (label `to`), all labelled `name`.

use std::fmt;
use std::time::Duration;

use crate::breaker::CircuitState;

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

/// A breaker's change of state, handed to its `on_state_change` callback.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerEvent<'a> {
    /// The breaker's name.
    pub name: &'a str,
    /// The state it left.
    pub from: CircuitState,
    /// The state it entered.
    pub to: CircuitState,
    /// Why.
    pub cause: Transition,
    /// For a change to `Open`: how long it stays open.
    pub open_for: Option<Duration>,
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Transition {
    /// This many calls failed in a row.
    ConsecutiveFailures(u32),
    /// The window's failure rate reached the threshold.
    FailureRate {
        /// Calls in the window.
        calls: u32,
        /// Failed calls among them.
        failures: u32,
    },
    /// The window's slow-call rate reached the threshold.
    SlowCallRate {
        /// Calls in the window.
        calls: u32,
        /// Slow calls among them.
        slow: u32,
    },
    /// A half-open probe failed.
    ProbeFailed,
    /// This many half-open probes succeeded.
    ProbesSucceeded(u32),
    /// The open period ended; probes may go through.
    OpenPeriodOver,
    /// [`isolate`](crate::CircuitBreaker::isolate) was called.
    Isolated,
    /// [`reset`](crate::CircuitBreaker::reset) was called.
    Reset,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |part: u32, calls: u32| f64::from(part) * 100.0 / f64::from(calls.max(1));
        match *self {
            Transition::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
            Transition::FailureRate { calls, failures } => {
                write!(f, "{failures} of the last {calls} calls failed ({:.0}%)", percent(failures, calls))
            }
            Transition::SlowCallRate { calls, slow } => {
                write!(f, "{slow} of the last {calls} calls were slow ({:.0}%)", percent(slow, calls))
            }
            Transition::ProbeFailed => f.write_str("a probe failed"),
            Transition::ProbesSucceeded(1) => f.write_str("1 probe succeeded"),
            Transition::ProbesSucceeded(n) => write!(f, "{n} probes succeeded"),
            Transition::OpenPeriodOver => f.write_str("the open period is over"),
            Transition::Isolated => f.write_str("isolated by hand"),
            Transition::Reset => f.write_str("reset by hand"),
        }
    }
}

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
    fn label(self) -> &'static str {
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

/// Emission of log lines and counters; each function compiles to nothing
/// when its feature is off.
pub(crate) mod emit {
    use super::*;
    use crate::error::Name;

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

    pub(crate) fn retrying<E: std::fmt::Display>(name: &Name, event: &RetryEvent<'_, E>) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_retries_total", "name" => name.clone()).increment(1);
        #[cfg(feature = "tracing")]
        // The message says the name, attempt and error; the fields add only
        // what it does not (exact milliseconds, whether a server asked).
        tracing::info!(
            delay_ms = event.delay.as_millis() as u64,
            elapsed_ms = event.elapsed.as_millis() as u64,
            server_hint = event.server_hint,
            "Retrying {name} in {:.1} seconds (attempt {}/{}): {:#}",
            event.delay.as_secs_f64(),
            event.attempt,
            event.max_attempts,
            event.error,
        );
        let _ = (name, event);
    }

    pub(crate) fn gave_up<E: std::fmt::Display>(name: &Name, why: GiveUp, error: &crate::RetryError<E>) {
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

    pub(crate) fn circuit_changed(event: &BreakerEvent<'_>, probes: u32) {
        #[cfg(feature = "metrics")]
        {
            let name = event.name.to_owned();
            metrics::gauge!("backstop_circuit_state", "name" => name.clone()).set(f64::from(event.to.as_number()));
            metrics::counter!("backstop_circuit_transitions_total", "name" => name, "to" => event.to.as_str())
                .increment(1);
        }
        #[cfg(feature = "tracing")]
        {
            // The message names the circuit, the new state and the cause;
            // the fields add the state it left.
            let (name, cause, from) = (event.name, &event.cause, event.from.as_str());
            match event.to {
                CircuitState::Open => tracing::warn!(
                    from,
                    "circuit {name} opened for {:.1}s: {cause}",
                    event.open_for.unwrap_or_default().as_secs_f64()
                ),
                CircuitState::HalfOpen => tracing::info!(
                    from,
                    "circuit {name} half-open: letting {probes} probe{} through",
                    if probes == 1 { "" } else { "s" }
                ),
                CircuitState::Closed => tracing::info!(from, "circuit {name} closed: {cause}"),
                CircuitState::Isolated => tracing::warn!(from, "circuit {name} isolated until reset"),
            }
        }
        let _ = (event, probes);
    }

    pub(crate) fn waiting_for_circuit(name: &Name, open: &crate::CircuitOpen, wait: Duration) {
        #[cfg(feature = "tracing")]
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "{name} waits {:.1} seconds for circuit {} to let a probe through",
            wait.as_secs_f64(),
            open.name()
        );
        let _ = (name, open, wait);
    }

    pub(crate) fn throttled_locally(name: &Name, probability: f64) {
        #[cfg(feature = "tracing")]
        tracing::debug!("{name} rejected locally by the adaptive throttle (p={probability:.2})");
        let _ = (name, probability);
    }

    pub(crate) fn budget_level(budget: &str, level: f64) {
        #[cfg(feature = "metrics")]
        metrics::gauge!("backstop_budget_level", "budget" => budget.to_owned()).set(level);
        let _ = (budget, level);
    }

    /// A retry refused; `ran_dry`: the first refusal since the budget last
    /// granted one (WARN once, then DEBUG per refusal).
    pub(crate) fn budget_denied(budget: &str, level: f64, ran_dry: bool) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("backstop_budget_denied_total", "budget" => budget.to_owned()).increment(1);
            metrics::gauge!("backstop_budget_level", "budget" => budget.to_owned()).set(level);
        }
        #[cfg(feature = "tracing")]
        if ran_dry {
            tracing::warn!("retry budget {budget} is spent ({level:.1} left): retries are refused until it refills");
        } else {
            tracing::debug!("retry denied: retry budget {budget} is spent ({level:.1} left)");
        }
        let _ = (budget, level, ran_dry);
    }

    pub(crate) fn circuit_rejected(name: &str) {
        #[cfg(feature = "metrics")]
        metrics::counter!("backstop_circuit_rejected_total", "name" => name.to_owned()).increment(1);
        let _ = name;
    }
}
