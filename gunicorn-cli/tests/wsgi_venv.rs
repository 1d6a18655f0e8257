//! The embedded Python is the user's (issue 2 part 2): without a virtualenv `sys.executable` is
//! the build interpreter (a real python, not the gunicorn binary); with `VIRTUAL_ENV` set, that
//! virtualenv's site-packages are importable and `sys.prefix` is the virtualenv.

mod support;

use std::process::Command;

use support::{Gunicorn, TempDir};

/// `(prefix, executable, mark)` as the venv_probe app reports them.
fn probe(server: &support::Server) -> (String, String, String) {
    let text = server.get("/").text();
    let field = |name: &str| -> String {
        let key = format!("\"{name}\": ");
        let rest = text.split(&key).nth(1).unwrap_or_else(|| panic!("{text}"));
        if let Some(s) = rest.strip_prefix('"') {
            s.split('"').next().unwrap_or_default().to_string()
        } else {
            rest.split([',', '}'])
                .next()
                .unwrap_or_default()
                .to_string()
        }
    };
    (field("prefix"), field("executable"), field("mark"))
}

#[test]
fn build_interpreter_then_virtualenv() {
    let server = Gunicorn::new()
        .arg("venv_probe:app")
        .env("VIRTUAL_ENV", "")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let (_, executable, mark) = probe(&server);
    assert_eq!(mark, "null");
    assert!(executable.contains("python"), "{executable}");
    assert_ne!(
        std::path::Path::new(&executable),
        support::binary().as_path()
    );
    drop(server);

    // A fresh virtualenv made by that same interpreter, with a module only it has.
    let dir = TempDir::new("venv");
    let venv = dir.path().join("venv");
    let ok = Command::new(&executable)
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{executable} -m venv failed");
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let purelib = String::from_utf8(out.stdout).unwrap();
    std::fs::write(
        std::path::Path::new(purelib.trim()).join("only_in_this_venv.py"),
        "MARK = 'from-the-venv'\n",
    )
    .unwrap();

    let server = Gunicorn::new()
        .arg("venv_probe:app")
        .env("VIRTUAL_ENV", &venv)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let (prefix, executable, mark) = probe(&server);
    assert_eq!(mark, "from-the-venv");
    assert_eq!(std::path::Path::new(&prefix), venv.as_path());
    assert!(
        executable.starts_with(venv.to_str().unwrap()),
        "{executable}"
    );
}
