//! Inside an activated virtualenv, its site-packages are importable (its own test binary, since
//! the interpreter is initialized once per process).

use std::process::Command;

use pyo3::prelude::*;

#[test]
fn virtualenv_site_packages_are_importable() {
    let dir = std::env::temp_dir().join(format!("gunicorn-venv-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = env!("GUNICORN_PYTHON_EXECUTABLE");
    let status = Command::new(exe)
        .args(["-m", "venv", "--without-pip"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    // A module that exists only in this virtualenv.
    let out = Command::new(dir.join("bin/python"))
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let purelib = String::from_utf8(out.stdout).unwrap();
    std::fs::write(
        std::path::Path::new(purelib.trim()).join("only_in_this_venv.py"),
        "MARK = 'venv'\n",
    )
    .unwrap();

    std::env::set_var("VIRTUAL_ENV", &dir);
    gunicorn_python::ensure_initialized().unwrap();
    Python::attach(|py| {
        let m = py.import("only_in_this_venv").unwrap();
        let mark: String = m.getattr("MARK").unwrap().extract().unwrap();
        assert_eq!(mark, "venv");
        let sys = py.import("sys").unwrap();
        let prefix: String = sys.getattr("prefix").unwrap().extract().unwrap();
        let exe: String = sys.getattr("executable").unwrap().extract().unwrap();
        assert_eq!(std::path::Path::new(&prefix), dir.as_path());
        assert!(exe.starts_with(dir.to_str().unwrap()), "{exe}");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
