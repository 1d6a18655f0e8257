//! `-u`/`-g` without `--preload`: Python starts in the worker, after it switched user. When that
//! user cannot read the interpreter or the virtualenv, the worker says which path, for which
//! user, in one line, and exits 3 ("Worker failed to boot."), instead of CPython's dozen lines
//! about the filesystem encoding or a Python version mismatch. Runs only as root (skipped
//! otherwise, printing SKIPPED).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Gunicorn, TempDir};

const APP: &str = "def app(environ, start_response):\n    \
                   start_response('200 OK', [('Content-Length', '2')])\n    \
                   return [b'ok']\n";

/// The uid of `nobody` when the tests run as root, else None (after printing SKIPPED).
fn nobody_as_root() -> Option<u32> {
    if !nix::unistd::geteuid().is_root() {
        support::skip("not running as root");
        return None;
    }
    match nix::unistd::User::from_name("nobody") {
        Ok(Some(u)) => Some(u.uid.as_raw()),
        _ => {
            support::skip("no user named nobody");
            None
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The python the tests run with (the build's virtualenv when active).
fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) if !venv.is_empty() => Path::new(&venv).join("bin/python"),
        _ => PathBuf::from("python3"),
    }
}

/// A directory anyone may read holding the app, for the worker's user to import from.
fn public_app_dir() -> TempDir {
    let dir = TempDir::new("priv-app");
    chmod(dir.path(), 0o755);
    let app = dir.write("privapp.py", APP);
    chmod(&app, 0o644);
    dir
}

/// The worker's line about the unreadable path, checked to be one line naming the user.
fn unreadable_line(out: &str, uid: u32) -> String {
    let want = format!("the worker's user nobody (uid {uid}) cannot read ");
    let line = out
        .lines()
        .find(|l| l.contains(&want))
        .unwrap_or_else(|| panic!("no line {want:?} in:\n{out}"))
        .to_string();
    assert!(!out.contains("embeds Python"), "{out}");
    assert!(!out.contains("Python path configuration"), "{out}");
    assert!(!out.contains("filesystem encoding"), "{out}");
    assert!(out.contains("Reason: Worker failed to boot."), "{out}");
    line
}

#[test]
fn a_virtualenv_in_a_private_directory_is_named() {
    let Some(uid) = nobody_as_root() else { return };
    let app = public_app_dir();
    let private = TempDir::new("priv-venv");
    chmod(private.path(), 0o700);
    let venv = private.path().join("venv");
    let made = Command::new(python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("run python -m venv");
    assert!(made.success(), "python -m venv failed");
    let done = Gunicorn::new()
        .cwd(app.path())
        .env("VIRTUAL_ENV", &venv)
        .args(["-u", "nobody"])
        .bind_free_port()
        .arg("privapp:app")
        .run();
    let out = format!("{}{}", done.stdout, done.stderr);
    assert_eq!(done.code(), Some(3), "{out}");
    let line = unreadable_line(&out, uid);
    assert!(
        line.contains(&format!("cannot read {} ", private.path().display())),
        "{line}"
    );
    assert!(line.contains(&venv.display().to_string()), "{line}");
}

/// The build's own virtualenv: either the worker's user can read it all and the worker boots,
/// or the worker names what it cannot read (never a version mismatch).
#[test]
fn the_build_virtualenv_boots_or_names_what_is_unreadable() {
    let Some(uid) = nobody_as_root() else { return };
    let app = public_app_dir();
    let server = Gunicorn::new()
        .cwd(app.path())
        .args(["-u", "nobody"])
        .bind_free_port()
        .arg("privapp:app")
        .spawn();
    let booted = server
        .wait_for("Booting worker", 1, support::BOOT_TIMEOUT)
        .is_some();
    assert!(booted, "{}", server.output());
    match server.wait_exit(support::EXIT_TIMEOUT.min(std::time::Duration::from_secs(10))) {
        Some(status) => {
            let out = server.output();
            assert_eq!(status.code(), Some(3), "{out}");
            unreadable_line(&out, uid);
        }
        None => assert_eq!(server.get("/").status, 200, "{}", server.output()),
    }
}
