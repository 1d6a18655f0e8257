//! `--spew`: a trace function that prints every executed line of Python as
//! `module:lineno: source line` on stdout (gunicorn's `debug.spew()` output, without values).
//!
//! `sys.settrace` is per thread, so [`install`] runs in each thread that runs Python code of the
//! server: the thread that loads the application ([`start`]), each gthread pool thread, and the
//! master's main thread when Python runs there. Greenlets share their thread's trace function.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};

use gunicorn_core::Config;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

use crate::interpreter::{ensure_initialized, PythonError};

/// The tracer, compiled once per process (`tracer` is the function given to `sys.settrace`).
const SOURCE: &str = r#"
import linecache


def tracer(frame, event, arg):
    if event != "line":
        return tracer
    code = frame.f_code
    lineno = frame.f_lineno
    module = frame.f_globals
    text = linecache.getline(code.co_filename, lineno).rstrip()
    if "__file__" in module:
        name = module.get("__name__", "[unknown]")
    else:
        name = "[unknown]"
        if not text:
            text = "Unknown code named [%s].  VM instruction #%d" % (code.co_name, frame.f_lasti)
    print("%s:%s: %s" % (name, lineno, text), flush=True)
    return tracer
"#;

/// Whether this process traces (set by [`start`], inherited by forked workers).
static ON: AtomicBool = AtomicBool::new(false);

static TRACER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// With `spew` on: starts Python if needed, turns tracing on for this process and installs the
/// tracer in the calling thread. Nothing otherwise.
pub fn start(cfg: &Config) -> Result<(), PythonError> {
    if !cfg.spew {
        return Ok(());
    }
    ensure_initialized()?;
    ON.store(true, Ordering::Relaxed);
    Python::attach(install);
    Ok(())
}

/// The master: installs the tracer in its main thread when `spew` is on and Python runs there
/// (already started by the config file or the logging setup, or about to start for
/// `--preload`). A master that never runs Python is left without an interpreter.
pub fn start_in_master(cfg: &Config) -> Result<(), PythonError> {
    if cfg.spew && (crate::sys::is_initialized() || cfg.preload_app) {
        start(cfg)?;
    }
    Ok(())
}

/// Installs the tracer in the calling thread if this process traces (see [`start`]).
pub fn install(py: Python<'_>) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = set_trace(py) {
        eprintln!("--spew: cannot install the trace function: {e}");
    }
}

fn set_trace(py: Python<'_>) -> PyResult<()> {
    let tracer = TRACER.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let code = CString::new(SOURCE)?;
        let module = PyModule::from_code(py, &code, c"gunicorn_spew.py", c"gunicorn_spew")?;
        Ok(module.getattr("tracer")?.unbind())
    })?;
    py.import("sys")?.getattr("settrace")?.call1((tracer,))?;
    Ok(())
}
