//! `wsgi.errors`: a text stream writing to the server's stderr (gunicorn's
//! `WSGIErrorsWrapper` with the default `--error-logfile -`).

use std::io::Write;

use pyo3::prelude::*;

/// The error stream (`environ["wsgi.errors"]`).
#[pyclass(module = "gunicorn.http.wsgi", name = "WSGIErrorsWrapper", frozen)]
pub struct Errors;

#[pymethods]
impl Errors {
    fn write(&self, py: Python<'_>, s: &str) -> usize {
        let bytes = s.as_bytes();
        py.detach(|| {
            let _ = std::io::stderr().lock().write_all(bytes);
        });
        s.chars().count()
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            let line = line?;
            self.write(py, line.extract::<&str>()?);
        }
        Ok(())
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}
