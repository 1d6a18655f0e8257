//! The standard-library modules gunicorn's master has imported when it forks, imported in our
//! master too when Python runs there.
//!
//! gunicorn 27's master imports `gunicorn.config`, `gunicorn.arbiter`, `gunicorn.util`,
//! `gunicorn.sock` and the worker class before its first fork, and with them `ssl`, `json`,
//! `email.utils`, `datetime`, `importlib.metadata`... Every worker then shares those modules'
//! pages, OpenSSL's initialized state included, copy-on-write. Our master needs none of them, so
//! without this each worker whose application uses them (Flask and Django do) imports and
//! initializes them on its own: ~3 MiB more PSS per worker, 2 of them libcrypto's
//! (docs/benchmarks.md, "Memory").
//!
//! Only when the master runs Python anyway (the pip package's `gunicorn` command, or the binary
//! with a config file, a logging configuration or `--preload`): starting an interpreter in a
//! master that has none costs more than the workers save. Only standard-library modules, never
//! the application, and never gevent or eventlet: our greenlet workers import them and patch the
//! standard library first thing after the fork (the modules here patch cleanly after the fact).

use gunicorn_core::Config;
use pyo3::prelude::*;

use crate::interpreter::{ensure_initialized, PythonError};

/// The modules, as gunicorn 27 (CPython 3.11) has them in `sys.modules` at its first fork and
/// ours does not; their own imports (`email.*`, `json.*`, `importlib.metadata.*`, `base64`,
/// `quopri`, `html.entities`, `concurrent.futures._base`...) come along.
pub const MODULES: &[&str] = &[
    "argparse",
    "calendar",
    "concurrent.futures",
    "csv",
    "datetime",
    "email.message",
    "email.utils",
    "fcntl",
    "gettext",
    "glob",
    "grp",
    "html",
    "importlib.metadata",
    "json",
    "locale",
    "platform",
    "pwd",
    "shlex",
    "signal",
    "ssl",
    "zipfile",
];

/// Imports [`MODULES`] in the master when Python runs there or is about to (`--preload`); does
/// nothing otherwise. Called before `--spew` starts tracing, as gunicorn has these modules
/// before it reads its settings. Returns how many were imported. A module this Python lacks
/// (`ssl` in a build without OpenSSL) is skipped: a worker that needs it fails there as it would
/// anyway.
pub fn import_in_master(cfg: &Config) -> Result<usize, PythonError> {
    if !crate::sys::is_initialized() && !cfg.preload_app {
        return Ok(0);
    }
    ensure_initialized()?;
    Ok(Python::attach(|py| {
        MODULES
            .iter()
            .filter(|name| match py.import(**name) {
                Ok(_) => true,
                Err(e) => {
                    gunicorn_core::log_debug!("not imported in the master: {name}: {e}");
                    false
                }
            })
            .count()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_the_standard_librarys() {
        ensure_initialized().unwrap();
        Python::attach(|py| {
            let stdlib = py
                .import("sys")
                .and_then(|sys| sys.getattr("stdlib_module_names"))
                .unwrap();
            for name in MODULES {
                let top = name.split('.').next().unwrap();
                assert!(stdlib.contains(top).unwrap(), "{name} is not stdlib");
                assert!(!["gevent", "eventlet"].contains(&top), "{name}");
            }
        });
    }

    #[test]
    fn with_preload_every_module_is_imported() {
        let cfg = Config {
            preload_app: true,
            ..Config::default()
        };
        assert_eq!(import_in_master(&cfg).unwrap(), MODULES.len());
        Python::attach(|py| {
            let modules = py.import("sys").unwrap().getattr("modules").unwrap();
            for name in MODULES {
                assert!(
                    modules.contains(*name).unwrap(),
                    "{name} not in sys.modules"
                );
            }
        });
    }
}
