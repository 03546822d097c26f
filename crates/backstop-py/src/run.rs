//! A Python function run under the core's retry loop: [`run`].

use backstop::retry::{Name, RetryEvent};
use backstop::{Clock, RetryError, Verdict};
use pyo3::call::PyCallArgs;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::clock::{Interruptible, VirtualClock};
use crate::guards::RunGuards;
use crate::log::log;
use crate::schedule::Schedule;

/// Whether `error` is worth a retry: an `Exception` (never `KeyboardInterrupt`
/// or `SystemExit`), judged by the Python classifier `retryable`. It answers
/// `True`/`False`, a verdict's name (`"retry"`, `"timeout"`, `"throttled"`,
/// `"fail"`), or a number: the seconds a server asked to wait. A classifier
/// that raises, or answers anything else, counts as "no".
pub(crate) fn verdict(py: Python<'_>, retryable: &Py<PyAny>, error: &PyErr) -> Verdict {
    if !error.is_instance_of::<PyException>(py) {
        return Verdict::Fail;
    }
    let Ok(answer) = retryable.call1(py, (error.value(py),)) else { return Verdict::Fail };
    let answer = answer.bind(py);
    if let Ok(yes) = answer.extract::<bool>() {
        return Verdict::retry_if(yes);
    }
    if let Ok(name) = answer.extract::<String>() {
        return match name.as_str() {
            "retry" => Verdict::Retry,
            "timeout" => Verdict::Timeout,
            "throttled" => Verdict::Throttled,
            _ => Verdict::Fail,
        };
    }
    match answer.extract::<f64>().map(std::time::Duration::try_from_secs_f64) {
        Ok(Ok(wait)) => Verdict::RetryAfter(wait),
        _ => Verdict::Fail,
    }
}

/// The exceptions a run raises when it gives up, registered once by the
/// Python layer (`register_exceptions`): `RetryExhaustedError(last,
/// attempts)` and `CircuitOpenException(name, state)`.
static EXHAUSTED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CIRCUIT_OPEN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Registers the exception classes runs raise when they give up.
#[pyfunction]
pub(crate) fn register_exceptions(py: Python<'_>, exhausted: Py<PyAny>, circuit_open: Py<PyAny>) {
    // A second registration (a reloaded module) keeps the first.
    let _ = EXHAUSTED.set(py, exhausted);
    let _ = CIRCUIT_OPEN.set(py, circuit_open);
}

/// Calls `func(*args, **kwargs)` until it returns, under `schedule`.
///
/// An exception `retryable(exc)` accepts is retried after the schedule's
/// delay (slept with the GIL released; Ctrl-C ends the sleep and raises),
/// with `on_retry(exc, attempt, delay_seconds)` called and a line logged
/// first; one it refuses is raised as itself. `guards` (a `RunGuards`) are
/// asked as the core's run asks them. When the run gives up, see
/// [`give_up`] for what is raised. On `clock` (a `VirtualClock`) the run
/// sleeps in virtual time.
#[pyfunction]
#[pyo3(signature = (schedule, func, args, kwargs, retryable, on_retry, name, clock = None, guards = None))]
#[allow(clippy::too_many_arguments)] // one Python call, its arguments as the layer above has them
#[allow(clippy::result_large_err)] // the run's outcome (a RetryError of a PyErr) is matched at once, here
pub(crate) fn run(
    py: Python<'_>,
    schedule: Py<Schedule>,
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    retryable: Py<PyAny>,
    on_retry: Option<Py<PyAny>>,
    name: String,
    clock: Option<Py<VirtualClock>>,
    guards: Option<Py<RunGuards>>,
) -> PyResult<Py<PyAny>> {
    let real = Interruptible::new();
    let clock: &dyn Clock = match &clock {
        Some(virtual_clock) => &virtual_clock.get().clock,
        None => &real,
    };
    let policy = &schedule.get().policy;
    let attempt = || {
        Python::attach(|py| {
            if let Some(interrupt) = real.take_interrupt() {
                return Err(interrupt);
            }
            func.call(py, args.bind(py), kwargs.as_ref().map(|k| k.bind(py)))
        })
    };
    let hook = |event: &RetryEvent<'_, PyErr>| Python::attach(|py| announce(py, on_retry.as_ref(), event));
    // The run holds the GIL (each attempt is Python code); its sleeps
    // release it (see `Interruptible`), so a successful call pays no GIL
    // hand-over at all.
    let run = policy
        .retry(attempt)
        .when(|error: &PyErr| Python::attach(|py| verdict(py, &retryable, error)))
        .on_retry(hook)
        .name(Name::Owned(name.clone()))
        .clock(clock);
    let run = match &guards {
        Some(guards) => run.guards(&guards.get().guards),
        None => run,
    };
    match run.with_attempts().call() {
        Ok((value, attempts)) => {
            succeeded(py, &name, attempts);
            Ok(value)
        }
        Err(err) => Err(give_up(py, err)),
    }
}

/// Before a retry: calls `on_retry(exc, attempt, delay_seconds)` (a callback
/// that raises is logged once, at WARNING, and ignored), then logs the
/// retry's line at INFO.
pub(crate) fn announce(py: Python<'_>, on_retry: Option<&Py<PyAny>>, event: &RetryEvent<'_, PyErr>) {
    if let Some(callback) = on_retry {
        let called = callback.call1(py, (event.error.value(py), event.attempt, event.delay.as_secs_f64()));
        if let Err(e) = called {
            log(py, "warning", format!("{}: the on_retry callback failed, and is ignored: {e}", event.name));
        }
    }
    log(py, "info", event.to_string());
}

/// After a success: the document's line, for a run that needed retries.
pub(crate) fn succeeded(py: Python<'_>, name: &str, attempts: u32) {
    if attempts > 1 {
        log(py, "info", format!("{name} succeeded on attempt {attempts}"));
    }
}

/// The exception a run that gave up raises:
/// - attempts ran out, the retry budget was spent or the deadline came
///   after a failure: `RetryExhaustedError(last, attempts)`, chained to the
///   last exception (`__cause__`);
/// - the breaker refused an attempt: `CircuitOpenException(name, state)`,
///   chained to the last exception if there was one;
/// - the exception was not worth a retry, or the server asked for a wait
///   past the policy's bound: the exception itself.
pub(crate) fn give_up(py: Python<'_>, err: RetryError<PyErr>) -> PyErr {
    let why = err.to_string();
    let (raised, last) = match err {
        RetryError::Exhausted { attempts, last, .. } | RetryError::BudgetExhausted { attempts, last, .. } => {
            (make(py, &EXHAUSTED, (last.value(py).clone(), attempts), &why), Some(last))
        }
        RetryError::DeadlineExceeded { attempts, last: Some(last), .. } => {
            (make(py, &EXHAUSTED, (last.value(py).clone(), attempts), &why), Some(last))
        }
        RetryError::CircuitOpen { open, last, .. } => {
            let state = crate::breaker::state_name(open.state());
            (make(py, &CIRCUIT_OPEN, (open.name().to_owned(), state), &why), last)
        }
        other => return other.into_inner().unwrap_or_else(|| PyRuntimeError::new_err(why)),
    };
    if let Some(last) = last {
        raised.set_cause(py, Some(last));
    }
    raised
}

/// The exception the registered class makes of `args`, or a `RuntimeError`
/// saying `why` if none is registered.
fn make<'py>(py: Python<'py>, class: &PyOnceLock<Py<PyAny>>, args: impl PyCallArgs<'py>, why: &str) -> PyErr {
    let Some(class) = class.get(py) else { return PyRuntimeError::new_err(why.to_owned()) };
    match class.call1(py, args) {
        Ok(raised) => PyErr::from_value(raised.into_bound(py)),
        Err(e) => e,
    }
}
