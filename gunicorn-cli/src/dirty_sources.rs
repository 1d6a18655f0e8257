//! The `gunicorn.dirty` modules of the Python package (`python/gunicorn/dirty/`) and
//! `gunicorn.glogging`, built into the command so that the Rust binary, which has no `gunicorn`
//! package installed, serves them too (`gunicorn_python::builtin_package::install_importer`;
//! docs/dirty.md, docs/logging.md).

/// `(module name, source)`; a package's own source is named `PACKAGE.__init__`.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "gunicorn.dirty.__init__",
        include_str!("../python/gunicorn/dirty/__init__.py"),
    ),
    (
        "gunicorn.dirty.app",
        include_str!("../python/gunicorn/dirty/app.py"),
    ),
    (
        "gunicorn.dirty.arbiter",
        include_str!("../python/gunicorn/dirty/arbiter.py"),
    ),
    (
        "gunicorn.dirty.client",
        include_str!("../python/gunicorn/dirty/client.py"),
    ),
    (
        "gunicorn.dirty.errors",
        include_str!("../python/gunicorn/dirty/errors.py"),
    ),
    (
        "gunicorn.dirty.protocol",
        include_str!("../python/gunicorn/dirty/protocol.py"),
    ),
    (
        "gunicorn.dirty.stash",
        include_str!("../python/gunicorn/dirty/stash.py"),
    ),
    (
        "gunicorn.dirty.worker",
        include_str!("../python/gunicorn/dirty/worker.py"),
    ),
    // The base class of --logger-class (docs/logging.md), which config files and applications
    // import too.
    (
        "gunicorn.glogging",
        include_str!("../python/gunicorn/glogging.py"),
    ),
];

#[cfg(test)]
mod tests {
    /// Every module of the package directory is built in (a new file must be listed above).
    #[test]
    fn every_module_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/gunicorn/dirty");
        for entry in std::fs::read_dir(dir).expect("python/gunicorn/dirty") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let Some(stem) = name.strip_suffix(".py") else {
                continue;
            };
            let module = format!("gunicorn.dirty.{stem}");
            assert!(
                super::SOURCES.iter().any(|(n, _)| *n == module),
                "{module} is not in SOURCES"
            );
        }
    }
}
