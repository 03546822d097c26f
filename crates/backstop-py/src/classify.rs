//! The core's classifiers, for facts the Python layer reads off an
//! exception: an AWS error code and status ([`aws_verdict`]), an HTTP status
//! and its `Retry-After` ([`http_verdict`]), a request's method and whether
//! it carries an `Idempotency-Key` ([`may_send_twice`]).
//!
//! A verdict goes to Python as the run takes it back (see
//! [`crate::run`]): `"retry"`, `"timeout"`, `"throttled"`, `"fail"`, or a
//! float, the seconds a server asked to wait.

use std::time::SystemTime;

use backstop::Verdict;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::PyFloat;

/// A verdict as Python sees it.
pub(crate) fn to_python(py: Python<'_>, verdict: Verdict) -> PyResult<Py<PyAny>> {
    match verdict {
        Verdict::RetryAfter(wait) => PyFloat::new(py, wait.as_secs_f64()).into_py_any(py),
        Verdict::Retry => "retry".into_py_any(py),
        Verdict::Timeout => "timeout".into_py_any(py),
        Verdict::Throttled => "throttled".into_py_any(py),
        _ => "fail".into_py_any(py),
    }
}

/// The verdict for an AWS error: its `code` (`SlowDown`, `AccessDenied`)
/// and HTTP `status`, and the response's `x-amz-retry-after`,
/// `Retry-After` and `Date` headers if it had them.
#[pyfunction]
#[pyo3(signature = (code, status, amz_retry_after = None, retry_after = None, date = None))]
pub(crate) fn aws_verdict(
    py: Python<'_>,
    code: Option<&str>,
    status: u16,
    amz_retry_after: Option<&str>,
    retry_after: Option<&str>,
    date: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let verdict = backstop::aws::classify_code(code, status);
    let hint = backstop::aws::hint(amz_retry_after, retry_after, date, SystemTime::now());
    to_python(py, backstop::aws::with_hint(verdict, hint))
}

/// The verdict for an HTTP error response: its `status`, and its
/// `Retry-After` and `Date` headers if it had them.
#[pyfunction]
#[pyo3(signature = (status, retry_after = None, date = None))]
pub(crate) fn http_verdict(
    py: Python<'_>,
    status: u16,
    retry_after: Option<&str>,
    date: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let Ok(status) = StatusCode::from_u16(status) else { return to_python(py, Verdict::Fail) };
    let mut headers = HeaderMap::new();
    for (name, value) in [(http::header::RETRY_AFTER, retry_after), (http::header::DATE, date)] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    to_python(py, backstop::http::classify_status(status, &headers))
}

/// Whether a request with this method, carrying an `Idempotency-Key` or
/// not, may be sent again once it may have reached the server (the core's
/// rule: an idempotent method, or the key).
#[pyfunction]
pub(crate) fn may_send_twice(method: &str, has_idempotency_key: bool) -> bool {
    let mut headers = HeaderMap::new();
    if has_idempotency_key {
        headers.insert(backstop::http::IDEMPOTENCY_KEY, HeaderValue::from_static("present"));
    }
    Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .is_ok_and(|m| backstop::http::may_send_twice(&m, &headers))
}
