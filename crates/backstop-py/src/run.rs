//! A Python function run under the core's retry loop: [`run`].

use backstop::retry::{Name, RetryEvent};
use backstop::{Clock, RetryError, Verdict};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::clock::{Interruptible, VirtualClock};
use crate::schedule::Schedule;

/// The logger every line goes to: `logging.getLogger("backstop")`, looked
/// up at each line (levels set at run time take effect at once).
pub(crate) fn log(py: Python<'_>, level: &str, message: String) {
    let logged = py
        .import("logging")
        .and_then(|logging| logging.call_method1("getLogger", ("backstop",)))
        .and_then(|logger| logger.call_method1(level, (message,)));
    if let Err(e) = logged {
        e.write_unraisable(py, None);
    }
}

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

/// Calls `func(*args, **kwargs)` until it returns, under `schedule`.
///
/// An exception `retryable(exc)` accepts is retried after the schedule's
/// delay (slept with the GIL released; Ctrl-C ends the sleep and raises),
/// with `on_retry(exc, attempt, delay_seconds)` called and a line logged
/// first; one it refuses is raised as itself. When attempts run out, the
/// exception `exhausted(last_exc, attempts)` makes is raised, chained to the
/// last one. On `clock` (a `VirtualClock`) the run sleeps in virtual time.
#[pyfunction]
#[pyo3(signature = (schedule, func, args, kwargs, retryable, on_retry, exhausted, name, clock = None))]
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
    exhausted: Py<PyAny>,
    name: String,
    clock: Option<Py<VirtualClock>>,
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
    let outcome = policy
        .retry(attempt)
        .when(|error: &PyErr| Python::attach(|py| verdict(py, &retryable, error)))
        .on_retry(hook)
        .name(Name::Owned(name.clone()))
        .clock(clock)
        .with_attempts()
        .call();
    match outcome {
        Ok((value, attempts)) => {
            succeeded(py, &name, attempts);
            Ok(value)
        }
        Err(err) => Err(give_up(py, err, &exhausted)),
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

/// The exception a run that gave up raises: `exhausted(last, attempts)`
/// chained to the last exception when attempts ran out; otherwise the last
/// exception itself (a refused one, or the one before an open circuit or
/// a spent budget), or a `RuntimeError` saying why no attempt was made.
pub(crate) fn give_up(py: Python<'_>, err: RetryError<PyErr>, exhausted: &Py<PyAny>) -> PyErr {
    match err {
        RetryError::Exhausted { attempts, last, .. } => {
            let raised = match exhausted.call1(py, (last.value(py), attempts)) {
                Ok(raised) => PyErr::from_value(raised.into_bound(py)),
                Err(e) => return e,
            };
            raised.set_cause(py, Some(last));
            raised
        }
        other => {
            let why = other.to_string();
            other.into_inner().unwrap_or_else(|| pyo3::exceptions::PyRuntimeError::new_err(why))
        }
    }
}
