//! `wsgi.errors`: a text stream writing to the error log's destination (stderr with the
//! default `--error-logfile -`, else the error-log file), like gunicorn's `WSGIErrorsWrapper`.

use pyo3::prelude::*;

/// The error stream (`environ["wsgi.errors"]`).
#[pyclass(module = "gunicorn.http.wsgi", name = "WSGIErrorsWrapper", frozen)]
pub struct Errors;

#[pymethods]
impl Errors {
    fn write(&self, py: Python<'_>, s: &str) -> usize {
        let bytes = s.as_bytes();
        py.detach(|| gunicorn_core::log::write_raw(bytes));
        s.chars().count()
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            let line = line?;
            self.write(py, line.extract::<&str>()?);
        }
        Ok(())
    }

    /// Every write goes straight to the destination: nothing to flush.
    fn flush(&self) {}
}
