//! A run whose attempts Python makes: [`AsyncRun`], the core's
//! [`backstop::retry::DrivenRun`] for `async def` functions.
//!
//! An async attempt is a coroutine the event loop runs, and a retry's delay
//! is an `await asyncio.sleep(...)`: neither can happen inside Rust without
//! blocking the loop. So the Python layer awaits, and asks this object what
//! to do after each step; every decision (attempts, backoff and jitter,
//! `Retry-After`, deadline) is the core's, the same code the sync `run` uses.

use std::sync::{Mutex, PoisonError};

use backstop::retry::{DrivenRun, Name, Next};
use backstop::{Clock, RetryPolicy, SystemClock};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::clock::VirtualClock;
use crate::guards::RunGuards;
use crate::run::{announce, give_up, succeeded, verdict};
use crate::schedule::Schedule;

/// The wall clock every real async run reads (its sleeps are the event loop's).
static SYSTEM: SystemClock = SystemClock;

/// One run of an async function, driven from Python:
///
/// ```python
/// wait = run.start()                       # None: attempt now; else sleep that long
/// while True:
///     while wait is not None:
///         await asyncio.sleep(wait); wait = run.resume()
///     try:
///         result = await func()
///     except Exception as exc:
///         wait = run.failed(exc)           # raises when the run gives up
///         continue
///     run.succeeded(); return result
/// ```
///
/// `close()` (or dropping the object) ends the run early, giving back what it
/// held, as a cancelled Rust future does.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct AsyncRun {
    // Declared first, so dropped first: `run` borrows from `schedule`,
    // `clock` and `guards` below (see `start`).
    run: Mutex<Phase>,
    schedule: Py<Schedule>,
    clock: Option<Py<VirtualClock>>,
    guards: Option<Py<RunGuards>>,
    retryable: Py<PyAny>,
    on_retry: Option<Py<PyAny>>,
    name: String,
}

/// Where a run is, and so which step may come next.
enum Phase {
    /// Made, not started: `start()`.
    New,
    /// Between `start()`/`resume()` and the attempt's outcome:
    /// `succeeded()` or `failed()`.
    Attempt(DrivenRun<'static, PyErr>),
    /// Sleeping: `resume()`.
    Sleep(DrivenRun<'static, PyErr>),
    /// Over, or inside a step (a callback of the step sees it so).
    Over,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::New => "not started",
            Phase::Attempt(_) => "waiting for the attempt's outcome",
            Phase::Sleep(_) => "sleeping",
            Phase::Over => "over",
        }
    }
}

impl AsyncRun {
    /// Keeps the run for its next step and says how long to sleep first.
    fn answer(&self, py: Python<'_>, next: Next<'static, PyErr>) -> PyResult<Option<f64>> {
        let (phase, wait) = match next {
            Next::Attempt(run) => (Phase::Attempt(run), None),
            Next::Sleep(run, delay) => (Phase::Sleep(run), Some(delay.as_secs_f64())),
            Next::Stop(err) => return Err(give_up(py, err)),
        };
        *self.phase() = phase;
        Ok(wait)
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run, taken out for one step if it is where `step` may come (so a
    /// callback the step calls may use this object without a deadlock, and
    /// finds it over), or an error naming the step asked out of turn.
    fn take(&self, step: &str, sleeping: bool) -> PyResult<DrivenRun<'static, PyErr>> {
        let mut phase = self.phase();
        match std::mem::replace(&mut *phase, Phase::Over) {
            Phase::Sleep(run) if sleeping => Ok(run),
            Phase::Attempt(run) if !sleeping => Ok(run),
            other => {
                let why = format!("backstop: {step}() out of turn: the run is {}", other.name());
                *phase = other;
                Err(PyRuntimeError::new_err(why))
            }
        }
    }
}

#[pymethods]
impl AsyncRun {
    #[new]
    #[pyo3(signature = (schedule, retryable, on_retry, name, clock = None, guards = None))]
    fn new(
        schedule: Py<Schedule>,
        retryable: Py<PyAny>,
        on_retry: Option<Py<PyAny>>,
        name: String,
        clock: Option<Py<VirtualClock>>,
        guards: Option<Py<RunGuards>>,
    ) -> Self {
        Self { run: Mutex::new(Phase::New), schedule, clock, guards, retryable, on_retry, name }
    }

    /// Starts the run: `None` to make the first attempt now, or the seconds
    /// to sleep before asking `resume()`.
    fn start(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        {
            let mut phase = self.phase();
            if !matches!(*phase, Phase::New) {
                return Err(PyRuntimeError::new_err(format!(
                    "backstop: start() out of turn: the run is {}",
                    phase.name()
                )));
            }
            *phase = Phase::Over; // until the first step is known
        }
        // SAFETY: the references made here live as long as `self.run` holds
        // the run that borrows them, and no longer:
        // - each points into a Python object (a frozen `Schedule`,
        //   `VirtualClock` or `RunGuards`) that `self` holds a strong
        //   reference to in `self.schedule` / `self.clock` / `self.guards`,
        //   which are never replaced (`self`
        //   is frozen), so the object is alive while `self` is;
        // - Python objects never move, and frozen pyclasses are never
        //   borrowed mutably, so the data is not moved or changed under the
        //   reference (the core's types change only through their own locks
        //   and atomics, through `&`);
        // - `self.run` is declared before those fields, so when `self` is
        //   dropped the run is dropped before they are released; `close()`
        //   drops it earlier, never later.
        let policy: &'static RetryPolicy = unsafe { &*std::ptr::from_ref(&self.schedule.get().policy) };
        let clock: &'static dyn Clock = match &self.clock {
            // SAFETY: as for `policy` above.
            Some(virtual_clock) => unsafe { &*std::ptr::from_ref(&virtual_clock.get().clock) },
            None => &SYSTEM,
        };
        let driven = policy.driven().name(Name::Owned(self.name.clone())).clock(clock);
        let driven = match &self.guards {
            // SAFETY: as for `policy` above.
            Some(guards) => driven.guards(unsafe { &*std::ptr::from_ref(&guards.get().guards) }),
            None => driven,
        };
        let next = driven.start();
        self.answer(py, next)
    }

    /// After a sleep: `None` to make the attempt now, or more seconds to sleep.
    fn resume(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        let run = self.take("resume", true)?;
        self.answer(py, run.resume())
    }

    /// The attempt raised `exc`: the seconds to sleep before `resume()`, or
    /// the exception to raise when the run gives up (raised from here).
    fn failed(&self, py: Python<'_>, exc: Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let run = self.take("failed", false)?;
        let error = PyErr::from_value(exc);
        let judged = verdict(py, &self.retryable, &error);
        let mut hook = |event: &backstop::RetryEvent<'_, PyErr>| announce(py, self.on_retry.as_ref(), event);
        self.answer(py, run.failed(error, judged, &mut hook))
    }

    /// The attempt returned: tells the core, logs a success after retries.
    fn succeeded(&self, py: Python<'_>) -> PyResult<()> {
        let attempts = self.take("succeeded", false)?.succeeded();
        succeeded(py, &self.name, attempts);
        Ok(())
    }

    /// Ends the run early (its task was cancelled): what it held is given back.
    fn close(&self) {
        let ended = std::mem::replace(&mut *self.phase(), Phase::Over);
        drop(ended); // outside the lock: dropping gives tokens and slots back
    }
}
