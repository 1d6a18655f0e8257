//! The standard-library modules gunicorn 27's master has imported when it forks (`ssl`, `json`,
//! `email.utils`, ...) are imported in our master too when Python already runs there (a config
//! file here), so that workers share them; the binary without a config file or `--preload`
//! starts no Python in its master for this, and its workers start without them. With `--preload`
//! they come before the application, and before `--spew` starts tracing.

mod support;

use support::{Gunicorn, TempDir};

/// An app that answers which of the modules were in `sys.modules` when it was imported (it
/// imports none of them itself).
const APP: &str = "\
import sys
AT_IMPORT = ' '.join(m for m in ('ssl', 'json', 'email.utils', 'datetime') if m in sys.modules)

def app(environ, start_response):
    body = ('[%s]' % AT_IMPORT).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
";

/// A config file with a `post_fork` hook recording the same in the worker, before anything of
/// the worker class or the application ran there.
const CONFIG: &str = "\
import os, sys
def post_fork(server, worker):
    with open(os.path.join(os.path.dirname(__file__), 'post_fork.txt'), 'w') as f:
        f.write(' '.join(m for m in ('ssl', 'json', 'email.utils', 'datetime') if m in sys.modules))
";

/// Whether a process maps CPython's `_ssl` extension module (`import ssl` loads it).
fn maps_ssl_module(pid: i32) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines().any(|l| l.contains("/_ssl."))
}

/// Whether the test Python's `_ssl` is a file of its own (it is not in a static build).
fn ssl_is_a_shared_module() -> bool {
    let python = match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) => std::path::Path::new(&venv).join("bin/python"),
        None => std::path::PathBuf::from("python3"),
    };
    let out = std::process::Command::new(python)
        .args(["-c", "import _ssl; print(getattr(_ssl, '__file__', ''))"])
        .output();
    matches!(out, Ok(o) if !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

#[test]
fn without_a_config_file_the_master_imports_nothing() {
    let dir = TempDir::new("master-imports-bare");
    dir.write("probe.py", APP);
    let server = Gunicorn::new()
        .cwd(dir.path())
        .arg("probe:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let r = server.get("/");
    assert_eq!(r.status, 200, "{}", server.output());
    // The worker started Python itself, after the fork, with none of them.
    assert_eq!(r.text(), "[]", "{}", server.output());
    if ssl_is_a_shared_module() {
        assert!(!maps_ssl_module(server.pid()), "the master loaded _ssl");
    }
}

#[test]
fn with_a_config_file_workers_inherit_them_from_the_master() {
    let dir = TempDir::new("master-imports-config");
    dir.write("probe.py", APP);
    let config = dir.write("gunicorn.conf.py", CONFIG);
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-c", config.to_str().unwrap(), "probe:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let r = server.get("/");
    assert_eq!(r.status, 200, "{}", server.output());
    assert_eq!(
        r.text(),
        "[ssl json email.utils datetime]",
        "{}",
        server.output()
    );
    let at_fork = std::fs::read_to_string(dir.path().join("post_fork.txt")).unwrap_or_default();
    assert_eq!(at_fork, "ssl json email.utils datetime");
    if ssl_is_a_shared_module() {
        assert!(
            maps_ssl_module(server.pid()),
            "the master did not load _ssl"
        );
    }
}

#[test]
fn with_preload_they_are_imported_before_the_app_and_spew() {
    let dir = TempDir::new("master-imports-preload");
    dir.write("probe.py", APP);
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--preload", "--spew", "probe:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let r = server.get("/");
    assert_eq!(r.status, 200, "{}", server.output());
    // The master started Python for --preload and imported them before the application.
    assert_eq!(
        r.text(),
        "[ssl json email.utils datetime]",
        "{}",
        server.output()
    );
    // --spew traces the application's lines, not the server's own imports (gunicorn has them
    // before it reads its settings).
    let out = server.stdout_text();
    assert!(out.lines().any(|l| l.starts_with("probe:")), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("ssl:")), "traced: {out}");
}
