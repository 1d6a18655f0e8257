//! The two greenlet libraries: how each is named, installed and patched in.

use gunicorn_core::{log_debug, WorkerError};
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// Which library's hub runs the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// gevent (gunicorn's `GeventWorker`).
    Gevent,
    /// eventlet (the `EventletWorker` gunicorn had until 26.0).
    Eventlet,
}

impl Library {
    /// The Python package (and the pip distribution) name.
    pub fn package(self) -> &'static str {
        match self {
            Library::Gevent => "gevent",
            Library::Eventlet => "eventlet",
        }
    }

    /// The one line printed when the package cannot be imported.
    pub fn missing_message(self) -> String {
        let name = self.package();
        format!("{name} is not installed: pip install {name}")
    }

    /// The driver function that patches the standard library.
    fn patcher(self) -> &'static str {
        match self {
            Library::Gevent => "patch_gevent",
            Library::Eventlet => "patch_eventlet",
        }
    }

    /// The driver function that runs the worker's event loop.
    pub fn runner(self) -> &'static str {
        match self {
            Library::Gevent => "run_gevent",
            Library::Eventlet => "run_eventlet",
        }
    }

    /// Imports the library and monkey-patches the standard library with it. A library that
    /// cannot be imported is a boot error with one line (exit status 3), so the arbiter halts
    /// instead of respawning workers that fail the same way.
    pub fn patch(self, py: Python<'_>, driver: &Bound<'_, PyModule>) -> Result<(), WorkerError> {
        let imported = driver
            .getattr("import_library")
            .and_then(|f| f.call1((self.package(),)));
        if let Err(e) = imported {
            if e.is_instance_of::<PyImportError>(py) {
                log_debug!("import {}: {}", self.package(), e);
                return Err(WorkerError::Boot(self.missing_message()));
            }
            return Err(WorkerError::Boot(format_exception(py, &e)));
        }
        driver
            .getattr(self.patcher())
            .and_then(|f| f.call0())
            .map(drop)
            .map_err(|e| WorkerError::Boot(format_exception(py, &e)))
    }
}

/// A Python exception with its traceback, as gunicorn logs it.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let text: String = ""
            .into_pyobject(py)?
            .call_method1("join", (lines,))?
            .extract()?;
        Ok(text)
    });
    formatted
        .unwrap_or_else(|_| err.to_string())
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_lines() {
        let cases = [
            (
                Library::Gevent,
                "gevent is not installed: pip install gevent",
            ),
            (
                Library::Eventlet,
                "eventlet is not installed: pip install eventlet",
            ),
        ];
        for (lib, want) in cases {
            assert_eq!(lib.missing_message(), want);
        }
    }
}
