//! The `gunicorn.dirty` package built into the server (docs/dirty.md): the CLI embeds the
//! sources of its Python package's `gunicorn/dirty/` and registers them here
//! ([`set_package_sources`]); every interpreter this process initializes, and its children, can
//! then import them ([`install_importer`]), even in the Rust binary, where no `gunicorn`
//! package is installed.

use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The Python package's modules the Rust binary serves itself: `(module name, source)`.
static PACKAGE_SOURCES: OnceLock<&'static [(&'static str, &'static str)]> = OnceLock::new();

/// Registers the sources of `gunicorn.dirty` (the CLI embeds them from its Python package), to
/// be importable wherever this process or its children run Python.
pub fn set_package_sources(sources: &'static [(&'static str, &'static str)]) {
    let _ = PACKAGE_SOURCES.set(sources);
}

/// The importer (`dirty_importer.py`): serves the registered modules, and a small `gunicorn`
/// package when no real one is installed.
const IMPORTER_SOURCE: &str = include_str!("dirty_importer.py");

/// Makes `gunicorn.dirty` importable from the registered sources (first on `sys.meta_path`,
/// so the version running is always the one built into this server). Idempotent.
pub fn install_importer(py: Python<'_>) -> PyResult<()> {
    let Some(sources) = PACKAGE_SOURCES.get() else {
        return Ok(());
    };
    let code = CString::new(IMPORTER_SOURCE)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let module = pyo3::types::PyModule::from_code(
        py,
        &code,
        c"_gunicorn_dirty_importer.py",
        c"_gunicorn_dirty_importer",
    )?;
    let table = PyDict::new(py);
    for (name, source) in sources.iter() {
        table.set_item(*name, *source)?;
    }
    module
        .getattr("install")?
        .call1((table, gunicorn_core::VERSION))?;
    Ok(())
}
