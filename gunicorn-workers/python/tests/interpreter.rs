//! The embedded interpreter is the build interpreter, with a real `sys.executable`.

use pyo3::prelude::*;

#[test]
fn initializes_once_with_a_real_executable() {
    gunicorn_python::ensure_initialized().unwrap();
    gunicorn_python::ensure_initialized().unwrap();
    Python::attach(|py| {
        let sys = py.import("sys").unwrap();
        let exe: String = sys.getattr("executable").unwrap().extract().unwrap();
        assert!(exe.contains("python"), "sys.executable = {exe}");
        let me = std::env::current_exe().unwrap();
        assert_ne!(std::path::Path::new(&exe), me.as_path());
        // The standard library of that interpreter is importable.
        py.import("json").unwrap();
        py.import("encodings.idna").unwrap();
    });
}
