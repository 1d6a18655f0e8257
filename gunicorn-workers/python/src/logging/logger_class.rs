//! `--logger-class`: a Python class that takes over the server's logging, as gunicorn's
//! `logger_class` (a subclass of `gunicorn.glogging.Logger`: a JSON access log, extra handlers
//! in `setup(cfg)`, ...).
//!
//! The default (`gunicorn.glogging.Logger`, or `simple`) stays the Rust writer of
//! gunicorn-core: nothing here runs then. Any other class is imported in the master, before
//! the arbiter logs anything, and instantiated once with a `cfg` object, as gunicorn's arbiter
//! does; the workers inherit the instance through `fork()`. From then on:
//!
//! - every error-log record of Rust code (master and workers) goes to the instance's
//!   `critical` / `error` / `warning` / `info` / `debug` method (gunicorn-core's forwarder);
//! - each finished request goes to its `access(resp, req, environ, request_time)` (the WSGI
//!   bridge calls [`access`] instead of the Rust access line);
//! - USR1 calls its `reopen_files()`, HUP its `setup(cfg)` with the new settings.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use gunicorn_core::log::Level;
use gunicorn_core::Config;
use gunicorn_http::Request;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The class cannot be loaded or built: gunicorn's message (`class uri '...' invalid or not
/// found: ...`) or the constructor's traceback. The command prints it and exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(String);

/// The loading code, the `cfg` object, the `resp` / `req` objects.
const RUNTIME_SOURCE: &str = include_str!("logger_class.py");

/// The logger instance once loaded (inherited by the workers through `fork()`).
static LOGGER: Mutex<Option<Py<PyAny>>> = Mutex::new(None);
/// The module made from [`RUNTIME_SOURCE`].
static RUNTIME: Mutex<Option<Py<PyModule>>> = Mutex::new(None);
/// A class other than the default is in charge (read per request without the GIL).
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `logger_class` names gunicorn's default logger, which is the Rust writer here.
pub fn is_default(name: &str) -> bool {
    matches!(name.trim(), "" | "simple" | "gunicorn.glogging.Logger")
}

/// Whether a logger class other than the default is in charge in this process.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn runtime(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Some(m) = lock(&RUNTIME).as_ref() {
        return Ok(m.bind(py).clone());
    }
    let code = CString::new(RUNTIME_SOURCE)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let module = PyModule::from_code(
        py,
        &code,
        c"gunicorn_rs_logger_class.py",
        c"gunicorn_rs_logger_class",
    )?;
    *lock(&RUNTIME) = Some(module.clone().unbind());
    Ok(module)
}

fn logger(py: Python<'_>) -> Option<Bound<'_, PyAny>> {
    lock(&LOGGER).as_ref().map(|l| l.bind(py).clone())
}

/// The `cfg` object a logger gets: every setting as `--print-config` shows it, read back as
/// Python literals, with the strings the logger reads given exactly (a file name `1` stays a
/// string), `logconfig_dict` as a dict and `proc_name` as gunicorn's property computes it.
fn config_object<'py>(py: Python<'py>, cfg: &Config) -> PyResult<Bound<'py, PyAny>> {
    let rows: Vec<(&str, String)> = gunicorn_core::config::SETTINGS
        .iter()
        .map(|s| (s.name, s.show(cfg)))
        .collect();
    let exact = PyDict::new(py);
    exact.set_item("loglevel", &cfg.loglevel)?;
    exact.set_item("errorlog", &cfg.errorlog)?;
    exact.set_item("accesslog", cfg.accesslog.as_deref())?;
    exact.set_item("access_log_format", &cfg.access_log_format)?;
    exact.set_item("logconfig", cfg.logconfig.as_deref())?;
    exact.set_item("logconfig_json", cfg.logconfig_json.as_deref())?;
    exact.set_item(
        "logconfig_dict",
        super::py_value::to_python(
            py,
            &gunicorn_core::config::Value::Map(cfg.logconfig_dict.0.clone()),
        )?,
    )?;
    exact.set_item("syslog_addr", &cfg.syslog_addr)?;
    exact.set_item("syslog_prefix", cfg.syslog_prefix.as_deref())?;
    exact.set_item("syslog_facility", &cfg.syslog_facility)?;
    exact.set_item("proc_name", gunicorn_core::process::proc_name(cfg))?;
    exact.set_item("logger_class", &cfg.logger_class)?;
    runtime(py)?.getattr("make_config")?.call1((rows, exact))
}

/// In the master, before the arbiter logs anything: imports the class, builds the instance
/// and routes the server's lines through it. An unusable class is an error with gunicorn's
/// text (`class uri '...' invalid or not found: ...`); the command exits 1, as gunicorn does.
pub(super) fn load(py: Python<'_>, cfg: &Config) -> Result<(), LoadError> {
    let exception = |e: PyErr| -> LoadError {
        // A RuntimeError of ours carries gunicorn's whole message: print just that.
        if e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) {
            LoadError(e.value(py).to_string())
        } else {
            LoadError(crate::pyerr::format_exception(py, &e))
        }
    };
    let rt = runtime(py).map_err(exception)?;
    add_working_dir_to_path(py, cfg).map_err(exception)?;
    let class = rt
        .getattr("load_class")
        .and_then(|f| f.call1((cfg.logger_class.trim(),)))
        .map_err(exception)?;
    let cfg_obj = config_object(py, cfg).map_err(exception)?;
    let instance = rt
        .getattr("build")
        .and_then(|f| f.call1((class, cfg_obj)))
        .map_err(exception)?;
    *lock(&LOGGER) = Some(instance.unbind());
    ACTIVE.store(true, Ordering::Relaxed);
    gunicorn_core::log::set_forwarder(forward_error);
    gunicorn_core::log::set_reopen_hook(reopen_files);
    // The one thing of gunicorn's Logger API that cannot be honoured, said once (issue 18).
    gunicorn_core::log_info!(
        "Logger class {}: the server's own messages reach it already formatted \
         (record.args is empty)",
        cfg.logger_class.trim()
    );
    Ok(())
}

/// gunicorn imports the logger class with the working directory (`--chdir`, else the current
/// one) first on `sys.path`, as for the application.
fn add_working_dir_to_path(py: Python<'_>, cfg: &Config) -> PyResult<()> {
    let dir = match &cfg.chdir {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::current_dir()
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?,
    };
    let dir = dir.to_string_lossy().into_owned();
    let path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
    if !path.contains(&dir)? {
        path.insert(0, dir)?;
    }
    Ok(())
}

/// The Python method that gunicorn's arbiter and workers call for a record of `level`.
fn method_for(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
    }
}

/// gunicorn-core's forwarder: one error-log record to the logger instance. If the logger
/// raises, the line still reaches the error log's destination, with the reason.
fn forward_error(level: Level, message: &str) {
    Python::attach(|py| {
        let Some(logger) = logger(py) else {
            gunicorn_core::log::write_raw(format!("{message}\n").as_bytes());
            return;
        };
        if let Err(e) = logger.call_method1(method_for(level), (message,)) {
            let reason = crate::pyerr::format_exception(py, &e);
            gunicorn_core::log::write_raw(
                format!(
                    "{message}\nthe logger class raised: {}\n",
                    reason.trim_end()
                )
                .as_bytes(),
            );
        }
    });
}

/// USR1: the logger's `reopen_files()`, on its own thread: it needs the GIL, which the caller
/// (the master's loop, a worker's signal thread) must not wait for.
fn reopen_files() {
    let spawned = std::thread::Builder::new()
        .name("reopen-logger-class".into())
        .spawn(|| {
            Python::attach(|py| {
                let Some(logger) = logger(py) else { return };
                if let Err(e) = logger.call_method0("reopen_files") {
                    let reason = crate::pyerr::format_exception(py, &e);
                    gunicorn_core::log_error!(
                        "reopen_files() of the logger class raised: {reason}"
                    );
                }
            })
        });
    if let Err(e) = spawned {
        gunicorn_core::log_error!("cannot reopen the log files: {e}");
    }
}

/// HUP in the master: `setup(cfg)` again with the new settings, as gunicorn's arbiter does; if
/// it raises, the previous settings are set up again and the failure is logged.
pub fn reconfigure(cfg: &Config) {
    if !active() {
        return;
    }
    Python::attach(|py| {
        let Some(logger) = logger(py) else { return };
        let previous = logger.getattr("cfg").ok();
        let applied = config_object(py, cfg).and_then(|c| logger.call_method1("setup", (c,)));
        let Err(e) = applied else { return };
        eprintln!(
            "\nError: reloading the logger configuration failed, keeping the previous one\n{}",
            crate::pyerr::format_exception(py, &e).trim_end()
        );
        let restored = match previous {
            Some(prev) => logger.call_method1("setup", (prev,)).map(|_| ()),
            None => Ok(()),
        };
        match restored {
            Ok(()) => gunicorn_core::log_error!(
                "reloading the logger configuration failed, keeping the previous one"
            ),
            Err(e) => eprintln!(
                "Error: restoring the previous logger configuration failed\n{}",
                crate::pyerr::format_exception(py, &e).trim_end()
            ),
        }
    });
}

/// What `access()` is told about a finished response.
pub struct Finished<'a> {
    /// The status line's text (`200 OK`).
    pub status: String,
    /// The response headers as sent.
    pub headers: &'a [(String, String)],
    /// Body bytes sent.
    pub sent: u64,
    /// From the head being parsed to the response sent.
    pub duration: Duration,
}

/// Calls the logger's `access(resp, req, environ, request_time)` for one finished request. An
/// exception is logged as gunicorn logs one from its access(): the traceback at ERROR.
pub fn access(py: Python<'_>, req: &Request, environ: &Bound<'_, PyDict>, done: Finished<'_>) {
    let Some(logger) = logger(py) else { return };
    let call = || -> PyResult<()> {
        let rt = runtime(py)?;
        // The same `req` object as the request hooks get (gunicorn passes one Request to both).
        let req_obj = crate::server_hooks::request_object(py, req)?;
        let resp_headers = PyList::empty(py);
        for (name, value) in done.headers {
            resp_headers.append((name, value))?;
        }
        let micros = u64::try_from(done.duration.as_micros()).unwrap_or(u64::MAX);
        rt.getattr("access")?.call1((
            &logger,
            req_obj,
            environ,
            done.status,
            resp_headers,
            done.sent,
            micros,
            "gunicorn",
        ))?;
        Ok(())
    };
    if let Err(e) = call() {
        gunicorn_core::log_error!("{}", crate::pyerr::format_exception(py, &e).trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_keep_the_rust_logger() {
        let cases: &[(&str, bool)] = &[
            ("gunicorn.glogging.Logger", true),
            ("simple", true),
            (" simple ", true),
            ("", true),
            ("myapp.JsonLogger", false),
            ("egg:gunicorn#simple", false),
            ("Simple", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_default(name), *want, "{name:?}");
        }
    }

    #[test]
    fn levels_call_gunicorns_methods() {
        let cases: &[(Level, &str)] = &[
            (Level::Critical, "critical"),
            (Level::Error, "error"),
            (Level::Warning, "warning"),
            (Level::Info, "info"),
            (Level::Debug, "debug"),
        ];
        for (level, want) in cases {
            assert_eq!(method_for(*level), *want);
        }
    }
}
