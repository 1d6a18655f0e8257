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
//! Only when the master already runs Python (the pip package's `gunicorn` command, or the binary
//! with a config file, a logging configuration or `--preload`): starting an interpreter in a
//! master that has none costs more than the workers save. Only standard-library modules, never
//! the application, and never gevent or eventlet (they must patch the standard library in the
//! worker, as gunicorn's master does not import them either).

use pyo3::prelude::*;

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

/// Imports [`MODULES`] in this process if its interpreter is initialized; does nothing
/// otherwise. Returns how many were imported. A module this Python lacks (`ssl` in a build
/// without OpenSSL) is skipped: a worker that needs it fails there as it would anyway.
pub fn import_in_master() -> usize {
    if !crate::sys::is_initialized() {
        return 0;
    }
    Python::attach(|py| {
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
    })
}
