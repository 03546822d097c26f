//! Lines for Python's `logging`: [`log`].

use pyo3::prelude::*;

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
