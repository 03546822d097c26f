//! `backstop._backstop`: the Rust core of the Python package, as the thin
//! Python layer in `python/backstop` uses it.
//!
//! Every rule lives in the `backstop` crate: a [`Schedule`] is a validated
//! [`backstop::RetryPolicy`] (its error texts are the core's, with the
//! Python parameter's name), its delays come from [`backstop::Backoff`], and
//! [`run`] is the core's run loop calling a Python function once per
//! attempt. Python only says which exceptions are worth a retry.

use pyo3::prelude::*;

mod breaker;
mod classify;
mod clock;
mod driven;
mod fleet;
mod guards;
mod log;
mod run;
mod schedule;

/// The module `backstop._backstop`.
#[pymodule]
fn _backstop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<schedule::Schedule>()?;
    m.add_class::<clock::VirtualClock>()?;
    m.add_class::<breaker::Breaker>()?;
    m.add_class::<breaker::Permit>()?;
    m.add_class::<driven::AsyncRun>()?;
    m.add_class::<guards::Budget>()?;
    m.add_class::<guards::Pace>()?;
    m.add_class::<guards::RunGuards>()?;
    m.add_class::<fleet::Fleet>()?;
    m.add_function(wrap_pyfunction!(run::register_exceptions, m)?)?;
    m.add_function(wrap_pyfunction!(run::run, m)?)?;
    m.add_function(wrap_pyfunction!(classify::aws_verdict, m)?)?;
    m.add_function(wrap_pyfunction!(classify::http_verdict, m)?)?;
    m.add_function(wrap_pyfunction!(classify::may_send_twice, m)?)?;
    Ok(())
}
