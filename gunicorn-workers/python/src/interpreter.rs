//! Starting the embedded CPython so that it is the user's Python.
//!
//! The interpreter is the one this crate was built against (the binary links its libpython
//! through an rpath). CPython finds its prefix, standard library and site-packages from
//! `sys.executable`, so we hand it a real python executable instead of letting it derive one from
//! the gunicorn binary's path:
//! - inside an activated virtualenv (`$VIRTUAL_ENV`), `$VIRTUAL_ENV/bin/python`; CPython's path
//!   calculation then reads `pyvenv.cfg` and `site` adds the virtualenv's site-packages, exactly as
//!   when `python` is run from the virtualenv;
//! - otherwise the interpreter pyo3 was configured with at build time.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::sys;

/// The Python executable the crate was built against (pyo3's build configuration).
const BUILD_EXECUTABLE: &str = env!("GUNICORN_PYTHON_EXECUTABLE");
/// Its `major.minor` version.
const BUILD_VERSION: &str = env!("GUNICORN_PYTHON_VERSION");

/// The interpreter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// `Py_InitializeFromConfig` failed (e.g. the standard library was not found).
    #[error("failed to initialize Python (executable {executable}): {message}")]
    Init {
        /// The executable CPython was pointed at.
        executable: String,
        /// CPython's message.
        message: String,
    },
    /// The process's user cannot reach the interpreter or the virtualenv (typically a worker
    /// switched to `-u`/`-g` without `--preload`, with the venv under a private directory).
    #[error(
        "the worker's user {user} (uid {uid}) cannot read {path} ({reason}), which the Python \
         interpreter {executable} needs; make it readable by that user (or use --preload)"
    )]
    Unreadable {
        /// The process's effective user name (or its uid when it has no name).
        user: String,
        /// The process's effective uid.
        uid: u32,
        /// The first path on the way that this user may not read or search.
        path: String,
        /// The OS error (permission denied).
        reason: String,
        /// The python executable (or virtualenv) that was to be used.
        executable: String,
    },
}

/// Serializes first-time initialization between threads of one process.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Initializes the interpreter once per process; later calls (including in a child forked after
/// initialization) return at once.
pub fn ensure_initialized() -> Result<(), PythonError> {
    if sys::is_initialized() {
        return Ok(());
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if sys::is_initialized() {
        return Ok(());
    }
    let virtual_env = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from);
    let virtual_env = virtual_env.as_deref().filter(|v| !v.as_os_str().is_empty());
    // Before anything else (CPython's own failure is a dozen lines about the filesystem
    // encoding): a worker running as another user may not be able to reach the interpreter.
    check_readable(virtual_env)?;
    let exe = choose_executable(virtual_env);
    let exe_c = exe
        .as_ref()
        .and_then(|p| CString::new(p.as_os_str().as_encoded_bytes()).ok());
    // sys.argv is the server's command line, as in gunicorn: the copy taken before the process
    // title overwrote the argv area (a worker may start Python after its title is set).
    let argv: Vec<CString> = gunicorn_core::process::original_args()
        .into_iter()
        .filter_map(|a| CString::new(a.as_encoded_bytes()).ok())
        .collect();
    sys::initialize(exe_c.as_deref(), &argv).map_err(|e| PythonError::Init {
        executable: exe
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        message: e.to_string(),
    })?;
    // `gunicorn.dirty` importable in the Rust binary too (docs/dirty.md).
    pyo3::Python::attach(|py| {
        if let Err(e) = crate::builtin_package::install_importer(py) {
            gunicorn_core::log_warning!("cannot make gunicorn.dirty importable: {e}");
        }
    });
    Ok(())
}

/// Fails when this process's user cannot read the virtualenv, its `bin/python` (and where its
/// symlinks lead), the `home` of its `pyvenv.cfg`, or the build interpreter when no virtualenv is
/// active.
fn check_readable(virtual_env: Option<&Path>) -> Result<(), PythonError> {
    let mut paths: Vec<PathBuf> = Vec::new();
    match virtual_env {
        Some(venv) => {
            paths.push(venv.join("pyvenv.cfg"));
            paths.push(venv.join("bin").join("python"));
            if let Some(home) = std::fs::read_to_string(venv.join("pyvenv.cfg"))
                .ok()
                .and_then(|t| parse_pyvenv_key(&t, &["home"]))
            {
                paths.push(PathBuf::from(home));
            }
        }
        None if !BUILD_EXECUTABLE.is_empty() => paths.push(PathBuf::from(BUILD_EXECUTABLE)),
        None => {}
    }
    let executable = virtual_env
        .map(|v| v.join("bin").join("python"))
        .unwrap_or_else(|| PathBuf::from(BUILD_EXECUTABLE));
    for path in paths {
        if let Some((blocked, err)) = unreadable(&path, 0) {
            let uid = nix::unistd::geteuid();
            let user = nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| uid.to_string());
            return Err(PythonError::Unreadable {
                user,
                uid: uid.as_raw(),
                path: blocked.display().to_string(),
                reason: err.to_string(),
                executable: executable.display().to_string(),
            });
        }
    }
    Ok(())
}

/// The first path on the way to `path` (following symlinks) that this process may not search or
/// read, with the error: a directory without search permission, or the file itself unreadable.
/// A path that does not exist is not our concern here (None).
fn unreadable(path: &Path, depth: u32) -> Option<(PathBuf, std::io::Error)> {
    if depth > 16 {
        return None;
    }
    let denied = |e: &std::io::Error| e.kind() == std::io::ErrorKind::PermissionDenied;
    let mut cur = PathBuf::new();
    for comp in path.components() {
        let next = cur.join(comp);
        match std::fs::symlink_metadata(&next) {
            // `cur` is a directory we may not search.
            Err(e) if denied(&e) => return Some((cur, e)),
            Err(_) => return None,
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&next).ok()?;
                let resolved = if target.is_absolute() {
                    target
                } else {
                    cur.join(target)
                };
                if let Some(found) = unreadable(&resolved, depth + 1) {
                    return Some(found);
                }
                cur = resolved;
            }
            Ok(_) => cur = next,
        }
    }
    let opened = if cur.is_dir() {
        std::fs::read_dir(&cur).map(drop)
    } else {
        std::fs::File::open(&cur).map(drop)
    };
    match opened {
        Err(e) if denied(&e) => Some((cur, e)),
        _ => None,
    }
}

/// The python executable to initialize from: the virtualenv's when one is active and made from
/// the same Python version as ours, else the build interpreter.
fn choose_executable(virtual_env: Option<&Path>) -> Option<PathBuf> {
    if let Some(venv) = virtual_env.filter(|v| !v.as_os_str().is_empty()) {
        let python = venv.join("bin").join("python");
        match venv_version(venv) {
            Some(v) if !same_minor(&v, BUILD_VERSION) => eprintln!(
                "gunicorn: VIRTUAL_ENV={} is Python {v}, but this gunicorn embeds Python {BUILD_VERSION}; \
                 ignoring the virtualenv",
                venv.display()
            ),
            _ if python.exists() => return Some(python),
            _ => {}
        }
    }
    if BUILD_EXECUTABLE.is_empty() {
        return None;
    }
    Some(PathBuf::from(BUILD_EXECUTABLE))
}

/// The `version`/`version_info` recorded in `pyvenv.cfg` (e.g. `3.11.7`).
fn venv_version(venv: &Path) -> Option<String> {
    let text = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    parse_pyvenv_version(&text)
}

fn parse_pyvenv_version(text: &str) -> Option<String> {
    parse_pyvenv_key(text, &["version", "version_info"])
}

/// The value of the first of `keys` set in a `pyvenv.cfg`.
fn parse_pyvenv_key(text: &str, keys: &[&str]) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        keys.contains(&key.trim()).then(|| value.trim().to_string())
    })
}

/// `3.11.7` (or `3.11.7.final.0`) against `3.11`.
fn same_minor(full: &str, major_minor: &str) -> bool {
    full == major_minor
        || full
            .strip_prefix(major_minor)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyvenv_versions() {
        let cases = [
            ("home = /usr/bin\nversion = 3.11.7\n", Some("3.11.7")),
            (
                "home=/x\nversion_info = 3.12.1.final.0\n",
                Some("3.12.1.final.0"),
            ),
            ("home = /usr/bin\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_pyvenv_version(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn minor_versions() {
        let cases = [
            ("3.11.7", "3.11", true),
            ("3.11", "3.11", true),
            ("3.11.7.final.0", "3.11", true),
            ("3.1.2", "3.11", false),
            ("3.110.1", "3.11", false),
            ("3.12.0", "3.11", false),
        ];
        for (full, mm, want) in cases {
            assert_eq!(same_minor(full, mm), want, "{full} vs {mm}");
        }
    }

    #[test]
    fn no_virtualenv_means_the_build_interpreter() {
        let exe = choose_executable(None);
        assert_eq!(
            exe.as_deref().map(|p| p.to_str().unwrap()),
            Some(BUILD_EXECUTABLE)
        );
    }
}
