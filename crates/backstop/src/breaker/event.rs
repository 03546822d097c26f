//! What a breaker tells the world: a [`BreakerEvent`] for every change of
//! state (to its `on_state_change` callback), a log line and, with `metrics`,
//! its gauge and counters (listed in [the observability page](crate::docs::observability)).

use std::fmt;
use std::time::Duration;

use super::state::CircuitState;

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
    /// A shared breaker followed the state its store holds for the fleet
    /// (another process tripped it, probed it, isolated or reset it); see
    /// [`SharedBreaker`](super::SharedBreaker).
    Shared,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |part: u32, calls: u32| f64::from(part) * 100.0 / f64::from(calls.max(1));
        match *self {
            Transition::ConsecutiveFailures(1) => f.write_str("a failure"),
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
            Transition::Shared => f.write_str("the fleet's shared state"),
        }
    }
}

impl fmt::Display for BreakerEvent<'_> {
    /// The change in words, as the breaker's log line says it:
    /// `circuit s3_upload opened for 30.0 seconds: 5 consecutive failures`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, cause) = (self.name, &self.cause);
        match self.to {
            CircuitState::Open => write!(
                f,
                "circuit {name} opened for {} seconds: {cause}",
                crate::duration::Seconds(self.open_for.unwrap_or_default())
            ),
            CircuitState::HalfOpen => write!(f, "circuit {name} half-open: {cause}"),
            CircuitState::Closed => write!(f, "circuit {name} closed: {cause}"),
            CircuitState::Isolated => write!(f, "circuit {name} isolated until reset"),
        }
    }
}

pub(crate) fn circuit_changed(event: &BreakerEvent<'_>, probes: u32) {
    #[cfg(feature = "metrics")]
    {
        let name = event.name.to_owned();
        metrics::gauge!("backstop_circuit_state", "name" => name.clone()).set(f64::from(event.to.as_number()));
        metrics::counter!("backstop_circuit_transitions_total", "name" => name, "to" => event.to.as_str()).increment(1);
    }
    #[cfg(feature = "tracing")]
    {
        // The message names the circuit, the new state and the cause;
        // the fields add the state it left.
        let (name, from) = (event.name, event.from.as_str());
        match event.to {
            CircuitState::Open | CircuitState::Isolated => tracing::warn!(from, "{event}"),
            CircuitState::HalfOpen => tracing::info!(
                from,
                "circuit {name} half-open: letting {probes} probe{} through",
                if probes == 1 { "" } else { "s" }
            ),
            CircuitState::Closed => tracing::info!(from, "{event}"),
        }
    }
    let _ = (event, probes);
}

pub(crate) fn circuit_rejected(name: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("backstop_circuit_rejected_total", "name" => name.to_owned()).increment(1);
    let _ = name;
}
