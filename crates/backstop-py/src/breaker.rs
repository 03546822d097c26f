//! The core's circuit breaker for Python: [`Breaker`], with the
//! specification's `allow_request()` / `record_success()` /
//! `record_failure()` calls.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use backstop::breaker::{BreakerConfig, CircuitState, OwnedPermit};
use backstop::{Backoff, CircuitBreaker};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::clock::VirtualClock;
use crate::fleet::Fleet;

/// A circuit breaker: `failure_threshold` failures in a row open it for
/// `recovery_timeout` seconds, then probes are let through, and
/// `success_threshold` successful ones close it. Thread-safe; every state
/// change is logged once at WARNING on the `backstop` logger.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct Breaker {
    pub(crate) breaker: CircuitBreaker,
    /// Permits granted by `allow_request` and not yet reported, oldest first.
    pending: Mutex<VecDeque<OwnedPermit>>,
}

/// The most permits kept waiting for their outcome.
const MAX_PENDING: usize = 1024;

pub(crate) fn state_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "CLOSED",
        CircuitState::HalfOpen => "HALF_OPEN",
        CircuitState::Open | CircuitState::Isolated => "OPEN",
    }
}

impl Breaker {
    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<OwnedPermit>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The oldest permit not yet reported, or a new one (an outcome
    /// reported without `allow_request` first); `None` if the breaker
    /// rejects that.
    fn permit(&self) -> Option<OwnedPermit> {
        let pending = self.pending().pop_front();
        pending.or_else(|| self.breaker.try_acquire_owned().ok())
    }
}

#[pymethods]
impl Breaker {
    #[new]
    #[pyo3(signature = (name, failure_threshold, recovery_timeout, success_threshold, clock = None, fleet = None))]
    fn new(
        py: Python<'_>,
        name: String,
        failure_threshold: i64,
        recovery_timeout: f64,
        success_threshold: i64,
        clock: Option<Py<VirtualClock>>,
        fleet: Option<Py<Fleet>>,
    ) -> PyResult<Self> {
        let count = |field: &str, n: i64| {
            u32::try_from(n).map_err(|_| {
                PyValueError::new_err(format!("invalid circuit breaker: {field} is {n}; allowed: 1 ..= {}", u32::MAX))
            })
        };
        let open_for = Duration::try_from_secs_f64(recovery_timeout).map_err(|_| {
            PyValueError::new_err(format!(
                "invalid circuit breaker: recovery_timeout_seconds is {recovery_timeout:?}; allowed: a number of seconds from 0 to 1.8e19"
            ))
        })?;
        let config = BreakerConfig::builder()
            .consecutive_failures(count("failure_threshold", failure_threshold)?)
            .open_for(Backoff::constant(open_for))
            .success_threshold(count("success_threshold", success_threshold)?)
            .build()
            .map_err(|e| {
                let field = match e.field() {
                    "consecutive_failures" => "failure_threshold",
                    "open_for" | "open_for.base" => "recovery_timeout_seconds",
                    other => other,
                };
                PyValueError::new_err(format!(
                    "invalid circuit breaker: {field} {}; allowed: {}",
                    e.problem(),
                    e.allowed()
                ))
            })?;
        let mut builder = CircuitBreaker::builder(name).config(config).on_state_change(|event| {
            let message = event.to_string();
            Python::attach(|py| crate::log::log(py, "warning", message));
        });
        if let Some(clock) = &clock {
            builder = builder.clock(&clock.get().clock);
        }
        if let Some(fleet) = &fleet {
            builder = builder.shared(&fleet.get().fleet);
        }
        // Joining a fleet may wait a short, bounded time to learn its state.
        Ok(Self { breaker: py.detach(|| builder.build()), pending: Mutex::new(VecDeque::new()) })
    }

    /// Whether a call may go now. `True` takes a permit (a probe, when
    /// half-open) that the next `record_success()` or `record_failure()`
    /// reports.
    fn allow_request(&self, py: Python<'_>) -> bool {
        match py.detach(|| self.breaker.try_acquire_owned()) {
            Ok(permit) => {
                let mut pending = self.pending();
                // Callers that never report leave permits behind: past this
                // many the oldest is dropped (it counts nothing).
                if pending.len() >= MAX_PENDING {
                    pending.pop_front();
                }
                pending.push_back(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// A permit for one call, reported on itself (the decorator and the
    /// context manager use it, so concurrent calls never report each
    /// other's outcome); `None` when the breaker rejects the call.
    fn acquire(&self, py: Python<'_>) -> Option<Permit> {
        let permit = py.detach(|| self.breaker.try_acquire_owned()).ok()?;
        Some(Permit { permit: Mutex::new(Some(permit)) })
    }

    /// The call succeeded.
    fn record_success(&self, py: Python<'_>) {
        py.detach(|| self.permit().map(OwnedPermit::success));
    }

    /// The call failed.
    fn record_failure(&self, py: Python<'_>) {
        py.detach(|| self.permit().map(OwnedPermit::failure));
    }

    /// `"CLOSED"`, `"OPEN"` or `"HALF_OPEN"` (an open breaker whose
    /// recovery timeout has passed reports, and moves to, half-open).
    #[getter]
    fn state(&self) -> &'static str {
        state_name(self.breaker.state())
    }

    /// The breaker's name.
    #[getter]
    fn name(&self) -> String {
        self.breaker.name().to_owned()
    }

    /// Opens the breaker until `reset()`.
    fn isolate(&self) {
        self.breaker.isolate();
    }

    /// Closes the breaker and forgets its counts.
    fn reset(&self) {
        self.breaker.reset();
    }
}

/// One call's permit (from `Breaker.acquire()`), reported once: the first
/// of `success()`, `failure()` or `release()` counts, later ones do nothing.
/// Dropped unreported, it counts nothing.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct Permit {
    permit: Mutex<Option<OwnedPermit>>,
}

impl Permit {
    fn take(&self) -> Option<OwnedPermit> {
        self.permit.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

#[pymethods]
impl Permit {
    /// The call succeeded.
    fn success(&self, py: Python<'_>) {
        if let Some(permit) = self.take() {
            py.detach(|| permit.success());
        }
    }

    /// The call failed.
    fn failure(&self, py: Python<'_>) {
        if let Some(permit) = self.take() {
            py.detach(|| permit.failure());
        }
    }

    /// The call was abandoned (cancelled): it counts nothing, and a
    /// half-open breaker lets another probe through.
    fn release(&self) {
        drop(self.take());
    }
}
