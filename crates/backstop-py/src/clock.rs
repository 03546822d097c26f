//! The clocks a Python run sleeps on: the real one, interruptible by
//! Ctrl-C ([`Interruptible`]), and virtual time for tests ([`VirtualClock`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use backstop::clock::SleepFuture;
use backstop::{Clock, ManualClock, SystemClock};
use pyo3::prelude::*;

/// How often a sleep looks for a signal (Ctrl-C): a `KeyboardInterrupt`
/// comes within this long.
const SIGNAL_CHECK: Duration = Duration::from_millis(20);

/// The real clock, sleeping with the GIL released, in slices: between two
/// (holding the GIL) it runs Python's signal handlers, and a handler's exception
/// (`KeyboardInterrupt`) ends the sleep and is kept for the run to raise.
pub(crate) struct Interruptible {
    pub(crate) interrupted: Mutex<Option<PyErr>>,
}

impl Interruptible {
    pub(crate) fn new() -> Self {
        Self { interrupted: Mutex::new(None) }
    }

    /// The exception a signal handler raised during a sleep, once.
    pub(crate) fn take_interrupt(&self) -> Option<PyErr> {
        self.interrupted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

impl Clock for Interruptible {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        Python::attach(|py| {
            while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                if let Err(e) = py.check_signals() {
                    *self.interrupted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    return;
                }
                // Other Python threads run while this one sleeps.
                py.detach(|| std::thread::sleep(left.min(SIGNAL_CHECK)));
            }
        });
    }

    fn sleep_async(&self, d: Duration) -> SleepFuture {
        SystemClock.sleep_async(d)
    }
}

/// Virtual time for tests: a run on it does not sleep; its delays are
/// recorded and time jumps ahead by them. Made by
/// `backstop.testing.virtual_time()`.
#[pyclass(frozen, module = "backstop._backstop")]
pub(crate) struct VirtualClock {
    pub(crate) clock: ManualClock,
}

#[pymethods]
impl VirtualClock {
    #[new]
    fn new() -> Self {
        Self { clock: ManualClock::new() }
    }

    /// Every delay slept on this clock, in seconds, in order.
    #[getter]
    fn sleeps(&self) -> Vec<f64> {
        self.clock.sleeps().iter().map(Duration::as_secs_f64).collect()
    }

    /// Virtual seconds since the clock was made.
    #[getter]
    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    /// Sleeps `seconds` in virtual time: records the delay in `sleeps` and
    /// moves time ahead by it (an async run's sleeps go through here).
    fn sleep(&self, seconds: f64) {
        Clock::sleep(&self.clock, Duration::try_from_secs_f64(seconds).unwrap_or_default());
    }

    /// Moves virtual time `seconds` ahead.
    fn advance(&self, seconds: f64) {
        self.clock.advance(Duration::try_from_secs_f64(seconds).unwrap_or_default());
    }
}
