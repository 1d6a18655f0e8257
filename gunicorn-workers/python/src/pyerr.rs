//! Python exceptions as text: the traceback gunicorn prints. A leaf module, used by app loading,
//! the config file's hooks, logging configuration and the WSGI bridge alike.

use pyo3::prelude::*;

/// `traceback.format_exception(err)` joined, or the exception's str if that fails.
pub(crate) fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let parts: Vec<String> = lines.extract()?;
        Ok(parts.concat())
    });
    formatted.unwrap_or_else(|_| err.to_string())
}
