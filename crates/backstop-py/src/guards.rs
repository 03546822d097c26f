//! The core's retry budget and pacer for Python ([`Budget`], [`Pace`]), and
//! the set of guards a run takes ([`RunGuards`]).
//!
//! Each is the core's own type: its defaults, its validation and its error
//! texts, its arithmetic. Python passes only the settings it was given; the
//! ones left out keep the core's defaults.

use std::time::Duration;

use backstop::{ConfigError, Guards, Pacer, RetryBudget};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::breaker::Breaker;
use crate::clock::VirtualClock;
use crate::fleet::Fleet;

fn invalid(e: &ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A count for the core, or the error naming `field`.
fn count(component: &str, field: &str, n: i64) -> PyResult<u32> {
    u32::try_from(n)
        .map_err(|_| PyValueError::new_err(format!("invalid {component}: {field} is {n}; allowed: 0 ..= {}", u32::MAX)))
}

/// Seconds for the core, or the error naming `field`.
fn seconds(component: &str, field: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid {component}: {field} is {s:?}; allowed: a number of seconds from 0 to 1.8e19"
        ))
    })
}

/// A retry budget: retries draw from it, successes refill it, and when it is
/// spent a run stops retrying (its last exception is raised), so an outage
/// does not multiply the load on a struggling server.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct Budget {
    pub(crate) budget: RetryBudget,
}

#[pymethods]
impl Budget {
    /// The AWS SDKs' retry quota: `capacity` tokens (default 500), a retry
    /// costs `retry_cost` (5), one after a timeout `timeout_cost` (10), a
    /// success gives 1 back (a retry's cost, if it was a retry), and
    /// `refill_per_sec` tokens come back each second (default 0).
    #[staticmethod]
    /// With `fleet`, the bucket is the fleet's: every process with a budget
    /// of this name draws from one bucket in Redis.
    #[pyo3(signature = (name, capacity = None, retry_cost = None, timeout_cost = None, refill_per_sec = None, clock = None, fleet = None))]
    #[allow(clippy::too_many_arguments)] // the budget's settings, by name from Python
    fn token_bucket(
        py: Python<'_>,
        name: String,
        capacity: Option<i64>,
        retry_cost: Option<i64>,
        timeout_cost: Option<i64>,
        refill_per_sec: Option<f64>,
        clock: Option<Py<VirtualClock>>,
        fleet: Option<Py<Fleet>>,
    ) -> PyResult<Self> {
        const WHAT: &str = "retry budget";
        let mut b = RetryBudget::token_bucket(name);
        if let Some(n) = capacity {
            b = b.capacity(count(WHAT, "capacity", n)?);
        }
        if let Some(n) = retry_cost {
            b = b.retry_cost(count(WHAT, "retry_cost", n)?);
        }
        if let Some(n) = timeout_cost {
            b = b.timeout_cost(count(WHAT, "timeout_cost", n)?);
        }
        if let Some(r) = refill_per_sec {
            b = b.refill_per_sec(r);
        }
        if let Some(clock) = &clock {
            b = b.clock(&clock.get().clock);
        }
        if let Some(fleet) = &fleet {
            b = b.shared(&fleet.get().fleet);
        }
        // Joining a fleet may wait a short, bounded time for Redis.
        Ok(Self { budget: py.detach(|| b.build()).map_err(|e| invalid(&e))? })
    }

    /// Finagle's and gRPC's budget: retries may be `ratio` of the requests
    /// of the last `window` seconds (default 0.2 of 10 s), plus
    /// `min_per_sec` retries each second whatever the traffic. With
    /// `fleet`, the rule holds over every process's requests and retries
    /// (one floor for the fleet).
    #[staticmethod]
    #[pyo3(signature = (name, ratio = None, window = None, min_per_sec = None, clock = None, fleet = None))]
    fn ratio(
        py: Python<'_>,
        name: String,
        ratio: Option<f64>,
        window: Option<f64>,
        min_per_sec: Option<f64>,
        clock: Option<Py<VirtualClock>>,
        fleet: Option<Py<Fleet>>,
    ) -> PyResult<Self> {
        let mut b = RetryBudget::ratio(name);
        if let Some(r) = ratio {
            b = b.ratio(r);
        }
        if let Some(w) = window {
            b = b.window(seconds("retry budget", "window", w)?);
        }
        if let Some(m) = min_per_sec {
            b = b.min_per_sec(m);
        }
        if let Some(clock) = &clock {
            b = b.clock(&clock.get().clock);
        }
        if let Some(fleet) = &fleet {
            b = b.shared(&fleet.get().fleet);
        }
        // Joining a fleet may wait a short, bounded time for Redis.
        Ok(Self { budget: py.detach(|| b.build()).map_err(|e| invalid(&e))? })
    }

    /// The budget's name.
    #[getter]
    fn name(&self) -> String {
        self.budget.name().to_owned()
    }

    /// What is left: tokens (a token bucket) or retries (a ratio budget).
    #[getter]
    fn level(&self) -> f64 {
        self.budget.level()
    }

    /// Retries refused so far.
    #[getter]
    fn denied(&self) -> u64 {
        self.budget.denied()
    }
}

/// A pacer: the AWS SDKs' adaptive rate (CUBIC): it learns from throttling
/// the rate the server accepts and spaces the calls to it.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct Pace {
    pub(crate) pacer: Pacer,
}

#[pymethods]
impl Pace {
    /// Not pacing until the first throttling answer (or from `initial_rate`
    /// per second), between `min_rate` (default 0.5) and `max_rate` (100 000)
    /// per second, `burst` calls at once after a quiet spell (default 10).
    #[new]
    /// With `fleet`, the pace is the fleet's: every process with a pacer of
    /// this name learns one rate and sends at it together.
    #[pyo3(signature = (name, initial_rate = None, min_rate = None, max_rate = None, burst = None, clock = None, fleet = None))]
    #[allow(clippy::too_many_arguments)] // the pacer's settings, by name from Python
    fn new(
        py: Python<'_>,
        name: String,
        initial_rate: Option<f64>,
        min_rate: Option<f64>,
        max_rate: Option<f64>,
        burst: Option<i64>,
        clock: Option<Py<VirtualClock>>,
        fleet: Option<Py<Fleet>>,
    ) -> PyResult<Self> {
        let mut b = Pacer::builder(name);
        if let Some(r) = initial_rate {
            b = b.initial_rate(r);
        }
        if let Some(r) = min_rate {
            b = b.min_rate(r);
        }
        if let Some(r) = max_rate {
            b = b.max_rate(r);
        }
        if let Some(n) = burst {
            b = b.burst(count("pacer", "burst", n)?);
        }
        if let Some(clock) = &clock {
            b = b.clock(&clock.get().clock);
        }
        if let Some(fleet) = &fleet {
            b = b.shared(&fleet.get().fleet);
        }
        Ok(Self { pacer: py.detach(|| b.build()).map_err(|e| invalid(&e))? })
    }

    /// The pacer's name.
    #[getter]
    fn name(&self) -> String {
        self.pacer.name().to_owned()
    }

    /// The calls per second it paces at now, or `None` while not pacing.
    #[getter]
    fn rate(&self) -> Option<f64> {
        self.pacer.rate()
    }
}

/// The guards a run asks (each optional): a breaker before every attempt, a
/// budget before every retry, a pacer's slot before every attempt.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct RunGuards {
    pub(crate) guards: Guards,
}

#[pymethods]
impl RunGuards {
    #[new]
    #[pyo3(signature = (breaker = None, budget = None, pacer = None))]
    fn new(breaker: Option<Py<Breaker>>, budget: Option<Py<Budget>>, pacer: Option<Py<Pace>>) -> Self {
        let mut b = Guards::builder();
        if let Some(breaker) = &breaker {
            b = b.breaker(&breaker.get().breaker);
        }
        if let Some(budget) = &budget {
            b = b.budget(&budget.get().budget);
        }
        if let Some(pacer) = &pacer {
            b = b.pacer(&pacer.get().pacer);
        }
        Self { guards: b.build() }
    }
}
