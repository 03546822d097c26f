//! Guards shared by a fleet of worker processes through Redis: [`Fleet`],
//! the core's `backstop_redis::Fleet` for Python.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A connection to the Redis that worker processes (Dagster, Celery,
/// multiprocessing) share their breakers, budgets and pacers through. One
/// thread per process makes every round trip; a call never waits on Redis,
/// and while Redis is gone the guards work alone on their local state.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct Fleet {
    pub(crate) fleet: backstop_redis::Fleet,
}

/// Seconds for the fleet's builder, or the error naming `field`.
fn seconds(field: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid fleet setting: {field} is {s:?}; allowed: a number of seconds from 0 to 1.8e19"
        ))
    })
}

#[pymethods]
impl Fleet {
    /// The fleet on the Redis at `url` (`redis://host:port/db`). The other
    /// settings (seconds; `None`: the core's default) are the core's:
    /// `timeout` 0.05, `refresh` 0.2, `reconnect_every` 1, `key_ttl` 86 400,
    /// `probe_lease` 30; `budget_lease` (tokens a shared budget takes at a
    /// time) two retries' worth.
    #[new]
    #[pyo3(signature = (url, timeout = None, refresh = None, reconnect_every = None, key_ttl = None, probe_lease = None, budget_lease = None))]
    #[allow(clippy::too_many_arguments)] // the fleet's settings, by name from Python
    fn new(
        py: Python<'_>,
        url: String,
        timeout: Option<f64>,
        refresh: Option<f64>,
        reconnect_every: Option<f64>,
        key_ttl: Option<f64>,
        probe_lease: Option<f64>,
        budget_lease: Option<u32>,
    ) -> PyResult<Self> {
        let mut b = backstop_redis::Fleet::builder(url);
        if let Some(s) = timeout {
            b = b.timeout(seconds("timeout", s)?);
        }
        if let Some(s) = refresh {
            b = b.refresh(seconds("refresh", s)?);
        }
        if let Some(s) = reconnect_every {
            b = b.reconnect_every(seconds("reconnect_every", s)?);
        }
        if let Some(s) = key_ttl {
            b = b.key_ttl(seconds("key_ttl", s)?);
        }
        if let Some(s) = probe_lease {
            b = b.probe_lease(seconds("probe_lease", s)?);
        }
        if let Some(tokens) = budget_lease {
            b = b.budget_lease(tokens);
        }
        // Starting the fleet's thread (and a first connection attempt, bounded
        // by `timeout`) needs no Python.
        let fleet = py.detach(|| b.build()).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { fleet })
    }

    /// Whether the fleet is connected to Redis now.
    #[getter]
    fn is_connected(&self) -> bool {
        self.fleet.is_connected()
    }

    /// Round trips, fallbacks (Redis lost), rejoins and shared guards so far.
    fn stats(&self) -> (u64, u64, u64, usize) {
        let s = self.fleet.stats();
        (s.round_trips, s.fallbacks, s.rejoins, s.guards)
    }
}
