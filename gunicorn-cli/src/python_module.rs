//! `gunicorn._native`: the server as a CPython extension module, the heart of the Python
//! package (`pip install`).
//!
//! Installed with pip, the `gunicorn` console script is a few lines of Python that hand
//! `sys.argv` to [`run`]. The master is therefore the CPython process of the environment the
//! package is installed in: its `sys.prefix`, `sys.executable` and site-packages are the venv's,
//! whatever the build machine was, and no `VIRTUAL_ENV` is needed. The interpreter is already
//! initialized, so `gunicorn_python::ensure_initialized` has nothing to do, and every `fork()` of
//! the arbiter is bracketed by `PyOS_BeforeFork` / `PyOS_AfterFork_*` (the arbiter's Python
//! hooks do that whenever an interpreter is initialized).
//!
//! The whole command runs with the GIL released (`py.detach`): the arbiter never waits on a
//! signal or a child while holding it, and the Python code it calls (config file, hooks,
//! `--preload`) takes it as in the standalone binary.

use std::ffi::OsString;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use gunicorn_core::Config;

/// Runs the `gunicorn` command with `argv` (without the program name) and returns the exit
/// status; the console script passes it to `sys.exit`.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| crate::run_with(argv))
}

/// Runs `gunicornc`, the control socket client, with `argv` (without the program name) and
/// returns the exit status (the `gunicornc` console script, `gunicorn.ctl.cli`).
#[pyfunction]
fn ctl(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| crate::ctl::main_with(argv))
}

/// The Custom Application API (`gunicorn.app.base`): runs the server with the settings and
/// server hooks in `settings` (checked as a config file's names are), loading the application
/// by calling `loader()` where gunicorn calls `BaseApplication.wsgi()`. With `argv`
/// (gunicorn's `Application`), the command line, `$GUNICORN_CMD_ARGS` and the config file are
/// read too, above `settings`; without it (`BaseApplication`), only `settings` apply.
#[pyfunction]
#[pyo3(signature = (settings, loader, argv=None))]
fn run_application(
    py: Python<'_>,
    settings: &Bound<'_, PyDict>,
    loader: Py<PyAny>,
    argv: Option<Vec<OsString>>,
) -> i32 {
    let settings = match gunicorn_python::config_file::from_namespace(settings) {
        Ok(s) => s,
        Err(e) => {
            // gunicorn's BaseApplication.do_load_config: "\nError: <message>", exit 1.
            eprintln!("\nError: {e}");
            return crate::EXIT_CONFIG;
        }
    };
    if !gunicorn_python::app::set_loader(loader) {
        eprintln!("\nError: the server already runs an application in this process");
        return crate::EXIT_CONFIG;
    }
    py.detach(|| match argv {
        Some(argv) => crate::run_layered(argv, settings),
        None => crate::run_settings(settings),
    })
}

/// Every setting's name and its default as `--print-config` shows it, in the table's order;
/// `gunicorn.config.Config` is built from it.
#[pyfunction]
fn settings() -> Vec<(&'static str, String)> {
    let defaults = Config::default();
    gunicorn_core::config::SETTINGS
        .iter()
        .map(|s| (s.name, s.show(&defaults)))
        .collect()
}

/// The names of gunicorn's server hooks (`on_starting`, `post_fork`...), settable like settings.
#[pyfunction]
fn hooks() -> Vec<&'static str> {
    gunicorn_python::server_hooks::HOOKS
        .iter()
        .map(|(name, _)| *name)
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", gunicorn_core::VERSION)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(ctl, m)?)?;
    m.add_function(wrap_pyfunction!(run_application, m)?)?;
    m.add_function(wrap_pyfunction!(settings, m)?)?;
    m.add_function(wrap_pyfunction!(hooks, m)?)?;
    Ok(())
}
