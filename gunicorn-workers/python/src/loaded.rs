//! A loaded application and why loading one failed: the types that app loading (`app.rs`) and
//! the `--reload` fallback page (`reload.rs`) share, kept in a leaf module so that those two do
//! not import each other.

use pyo3::prelude::*;

use crate::interpreter::PythonError;

/// A loaded WSGI application: the callable `app(environ, start_response)`.
#[derive(Debug)]
pub struct App {
    callable: Py<PyAny>,
}

impl App {
    /// The application callable.
    pub fn callable(&self) -> &Py<PyAny> {
        &self.callable
    }

    /// Wraps an application object already at hand (e.g. built by an embedding program).
    pub fn from_callable(callable: Py<PyAny>) -> App {
        App { callable }
    }

    /// The application callable itself, for keeping it (the preloaded application).
    pub fn into_callable(self) -> Py<PyAny> {
        self.callable
    }

    /// Another reference to the same application object.
    pub fn clone_ref(&self, py: Python<'_>) -> App {
        App {
            callable: self.callable.clone_ref(py),
        }
    }
}

/// Why the application could not be loaded. The worker (`worker_boot`) turns an exception
/// while importing and an interpreter that cannot start into `WorkerError::Boot` (exit status 3,
/// as gunicorn), the other variants into `WorkerError::AppLoad` (exit status 4).
#[derive(Debug, thiserror::Error)]
pub enum AppLoadError {
    /// Neither APP_MODULE nor `wsgi_app` was given.
    #[error("No application module specified.")]
    NoApp,
    /// The interpreter could not start.
    #[error(transparent)]
    Interpreter(#[from] PythonError),
    /// `--chdir` names a directory we cannot enter.
    #[error("can't chdir to {0:?}")]
    Chdir(String),
    /// gunicorn's `AppImportError`: a one-line explanation, no traceback.
    #[error("{0}")]
    Invalid(String),
    /// A Python exception while importing the module or calling the factory.
    #[error("{message}")]
    Exception {
        /// The exception's last line (`ModuleNotFoundError: No module named 'x'`).
        message: String,
        /// The formatted traceback.
        traceback: String,
    },
}

impl AppLoadError {
    /// Writes the error as gunicorn does: an exception's traceback to the error log, then the
    /// one-line message on stderr.
    pub fn report(&self) {
        self.log_traceback();
        eprintln!("{self}");
    }

    /// Logs an exception's traceback (`Exception in worker process`) at ERROR; nothing for the
    /// one-line errors. A worker calls this and leaves the one line to the arbiter, which prints
    /// the `WorkerError::AppLoad` message.
    pub fn log_traceback(&self) {
        if let AppLoadError::Exception { traceback, .. } = self {
            gunicorn_core::log_error!("Exception in worker process\n{}", traceback.trim_end());
        }
    }
}
