//! Logging on the Python side of a process: the access-log record of each request
//! ([`access`]) and Python's `gunicorn.error` / `gunicorn.access` loggers ([`install`]).
//!
//! gunicorn's loggers are Python loggers, so applications reuse them (the Flask recipe
//! `app.logger.handlers = logging.getLogger("gunicorn.error").handlers`). Here the Rust side
//! owns the destinations (files reopened on USR1, syslog), and the Python loggers get a handler
//! that formats with gunicorn's format and hands each line to that Rust writer. With
//! `logconfig_dict`, `--log-config-json` or `--log-config`, the user's configuration is applied
//! to Python logging as gunicorn does, and the Rust side's own error and access lines are then
//! routed through those Python loggers so the configuration decides where they go.
//!
//! With `--logger-class` naming a class other than the default, that class takes over all of
//! this ([`logger_class`]).

pub mod access;
pub mod logger_class;
mod py_value;

use std::ffi::CString;

use gunicorn_core::config::Value;
use gunicorn_core::log::Level;
use gunicorn_core::{access_log, syslog, Config};
use py_value::to_python;
use pyo3::prelude::*;

/// The Python side of the setup (handler class, gunicorn's dictConfig defaults).
const SETUP: &str = include_str!("setup.py");

/// Python logging could not be set up in the master; the command prints it and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The interpreter could not be started.
    #[error(transparent)]
    Python(#[from] crate::interpreter::PythonError),
    /// Applying the configuration raised; holds the formatted traceback, as gunicorn prints it.
    #[error("{0}")]
    Exception(String),
    /// `--logger-class` names a class that cannot be loaded or built.
    #[error(transparent)]
    LoggerClass(#[from] logger_class::LoadError),
}

/// Maps a Python level number to ours (custom levels fall to the nearest lower one).
fn level_from_python(levelno: i32) -> Level {
    match levelno {
        n if n >= 50 => Level::Critical,
        n if n >= 40 => Level::Error,
        n if n >= 30 => Level::Warning,
        n if n >= 20 => Level::Info,
        _ => Level::Debug,
    }
}

/// The `gunicorn.error` handler's sink: the formatted line to the error log's destination, the
/// bare message to syslog.
#[pyfunction]
fn error_sink(py: Python<'_>, levelno: i32, line: &str, message: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let level = level_from_python(levelno);
    py.detach(|| {
        gunicorn_core::log::write_raw(&bytes);
        syslog::send(syslog::Stream::Error, level, message);
    });
}

/// The `gunicorn.access` handler's sink: the access log's destinations (file or stdout, syslog).
#[pyfunction]
fn access_sink(py: Python<'_>, _levelno: i32, line: &str, _message: &str) {
    py.detach(|| access_log::write_line(line));
}

/// Rust error-log records through Python's `gunicorn.error` logger (logconfig mode).
fn forward_error(level: Level, message: &str) {
    Python::attach(|py| {
        let logged = py
            .import("logging")
            .and_then(|m| m.call_method1("getLogger", ("gunicorn.error",)))
            .and_then(|l| l.call_method1("log", (level as i32, message)));
        if logged.is_err() {
            gunicorn_core::log::write_raw(format!("{message}\n").as_bytes());
        }
    });
}

/// Access lines through Python's `gunicorn.access` logger (logconfig mode).
fn forward_access(line: &str) {
    Python::attach(|py| {
        let _ = py
            .import("logging")
            .and_then(|m| m.call_method1("getLogger", ("gunicorn.access",)))
            .and_then(|l| l.call_method1("info", (line,)));
    });
}

/// USR1 in logconfig mode: reopens the configuration's `FileHandler`s. Runs on its own thread
/// because it needs the GIL, which the caller (the master's loop, a worker's signal helper
/// thread) must not wait for.
fn reopen_python_files() {
    let spawned = std::thread::Builder::new()
        .name("reopen-python-logs".into())
        .spawn(|| {
            Python::attach(|py| {
                let reopened = py
                    .import("gunicorn_rs_logging")
                    .and_then(|m| m.call_method0("reopen_files"));
                if let Err(e) = reopened {
                    gunicorn_core::log_error!("cannot reopen the Python log files: {e}");
                }
            })
        });
    if let Err(e) = spawned {
        gunicorn_core::log_error!("cannot reopen the Python log files: {e}");
    }
}

/// Sets up Python's `gunicorn.error` and `gunicorn.access` loggers in this process (once: a
/// worker forked from a master that did it inherits them), then applies `logconfig_dict`,
/// `--log-config-json` or `--log-config` as gunicorn does. Called with the GIL before the
/// application is imported, so import-time logging already goes to the right place.
pub fn install(py: Python<'_>, cfg: &Config) -> PyResult<()> {
    // The logger class (loaded in the master, inherited) configured Python logging itself.
    if logger_class::active() {
        return Ok(());
    }
    let code = CString::new(SETUP).map_err(|e| {
        PyErr::new::<pyo3::exceptions::PyValueError, _>(format!("logging setup code: {e}"))
    })?;
    let module = PyModule::from_code(py, &code, c"gunicorn_rs_logging.py", c"gunicorn_rs_logging")?;
    let level = Level::parse(&cfg.loglevel).unwrap_or(Level::Info) as i32;
    let config_dict = if cfg.logconfig_dict.0.is_empty() {
        py.None().into_bound(py)
    } else {
        to_python(py, &Value::Map(cfg.logconfig_dict.0.clone()))?
    };
    let configured: bool = module
        .getattr("install")?
        .call1((
            wrap_pyfunction!(error_sink, py)?,
            wrap_pyfunction!(access_sink, py)?,
            level,
            access_log::active(),
            config_dict,
            cfg.logconfig_json.as_deref(),
            cfg.logconfig.as_deref(),
        ))?
        .extract()?;
    if configured {
        gunicorn_core::log::set_forwarder(forward_error);
        access_log::set_forwarder(forward_access);
        gunicorn_core::log::set_reopen_hook(reopen_python_files);
    }
    Ok(())
}

/// In the master, as gunicorn configures logging there: when a logging configuration is given
/// (Python is initialized for it), or when Python already runs in the master (a Python config
/// file), sets up the loggers before the arbiter logs anything; the workers inherit them.
///
/// A `--logger-class` other than the default is loaded here (Python is initialized for it):
/// it applies the logging configuration itself, as gunicorn's `Logger.setup` does.
pub fn install_in_master(cfg: &Config) -> Result<(), LoggingError> {
    let custom = !logger_class::is_default(&cfg.logger_class);
    let configured =
        !cfg.logconfig_dict.0.is_empty() || cfg.logconfig_json.is_some() || cfg.logconfig.is_some();
    if !configured && !custom && !crate::sys::is_initialized() {
        return Ok(());
    }
    crate::interpreter::ensure_initialized()?;
    if custom {
        return Ok(Python::attach(|py| logger_class::load(py, cfg))?);
    }
    Python::attach(|py| {
        install(py, cfg)
            .map_err(|e| LoggingError::Exception(crate::pyerr::format_exception(py, &e)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_levels_map_to_ours() {
        let cases: &[(i32, Level)] = &[
            (0, Level::Debug),
            (10, Level::Debug),
            (15, Level::Debug),
            (20, Level::Info),
            (25, Level::Info),
            (30, Level::Warning),
            (40, Level::Error),
            (50, Level::Critical),
            (60, Level::Critical),
        ];
        for (levelno, want) in cases {
            assert_eq!(level_from_python(*levelno), *want, "{levelno}");
        }
    }
}
