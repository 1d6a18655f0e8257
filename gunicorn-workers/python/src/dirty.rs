//! Dirty arbiters (gunicorn 25+, docs/dirty.md): the master's [`Sidecar`] that runs the Python
//! dirty arbiter of the `gunicorn.dirty` package.
//!
//! The master (Rust, no Python needed) forks this side process once the listeners are up,
//! forks it again when it dies and forwards HUP, USR1 and its own stop signal to it
//! (`gunicorn_core::arbiter::sidecar`). Before each fork [`DirtySidecar::prepare`] exports
//! `GUNICORN_DIRTY_SOCKET`, so the web workers forked later find the dirty arbiter's socket.
//! In the child, [`DirtySidecar::run`] initializes Python if the master had not, and runs
//! `gunicorn.dirty.arbiter.DirtyArbiter` with the server's `cfg` and `log` objects and the
//! config file's four dirty hooks.
//!
//! The `gunicorn.dirty` sources belong to the Python package (`gunicorn-cli/python`); see
//! [`crate::builtin_package`] for how the Rust binary, with no such package installed, serves
//! them.

use std::path::{Path, PathBuf};

use gunicorn_core::{log_error, Config, Sidecar};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::server_hooks;

/// A dirty setting the master cannot start the dirty arbiter with.
#[derive(Debug, thiserror::Error)]
pub enum DirtyConfigError {
    /// A `dirty_apps` entry is not `module:Class` or `module:Class:N` with N >= 1.
    #[error(
        "Invalid value for dirty_apps: {spec:?}: expected 'module.path:ClassName' or \
         'module.path:ClassName:N' with N >= 1"
    )]
    BadSpec {
        /// The entry.
        spec: String,
    },
    /// The private directory for the sockets cannot be created.
    #[error("cannot create the dirty arbiter's socket directory in {dir}: {source}")]
    SocketDir {
        /// The temporary directory it was to be created in.
        dir: String,
        /// Why.
        source: nix::Error,
    },
}

/// Whether `spec` is `module:Class` or `module:Class:N` with N >= 1 (gunicorn's
/// `parse_dirty_app_spec`, checked in the master so that a typo is one line at boot).
pub fn valid_app_spec(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [module, class] => !module.is_empty() && !class.is_empty(),
        [module, class, n] => {
            !module.is_empty() && !class.is_empty() && n.trim().parse::<i64>().is_ok_and(|n| n >= 1)
        }
        _ => false,
    }
}

/// The dirty arbiter, as the master supervises it.
#[derive(Debug)]
pub struct DirtySidecar {
    /// The private (0700) directory holding the arbiter's and the workers' sockets.
    socket_dir: PathBuf,
    socket_path: PathBuf,
    /// gunicorn's well-known pidfile of the dirty arbiter: `$TMPDIR/gunicorn-dirty-NAME.pid`.
    pidfile: PathBuf,
    proc_name: String,
    /// The process that made the directory, the only one that removes it.
    master_pid: u32,
}

/// The dirty arbiter the configuration asks for: `None` unless `dirty_workers > 0` and at
/// least one dirty app is given (as gunicorn, which then starts none).
pub fn sidecar(cfg: &Config) -> Result<Option<DirtySidecar>, DirtyConfigError> {
    if cfg.dirty_workers == 0 || cfg.dirty_apps.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = cfg.dirty_apps.iter().find(|s| !valid_app_spec(s)) {
        return Err(DirtyConfigError::BadSpec { spec: bad.clone() });
    }
    let tmp = std::env::temp_dir();
    let socket_dir = nix::unistd::mkdtemp(&tmp.join("gunicorn-dirty-XXXXXX")).map_err(|e| {
        DirtyConfigError::SocketDir {
            dir: tmp.display().to_string(),
            source: e,
        }
    })?;
    if let Ok(Some((uid, gid))) = gunicorn_core::process::worker_ids(cfg) {
        // The dirty arbiter runs as the worker user: it creates its sockets in there.
        let _ = nix::unistd::chown(
            &socket_dir,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        );
    }
    let proc_name = gunicorn_core::process::proc_name(cfg);
    let safe: String = proc_name
        .chars()
        .map(|c| if c == '/' || c == ' ' { '_' } else { c })
        .collect();
    Ok(Some(DirtySidecar {
        socket_path: socket_dir.join("arbiter.sock"),
        socket_dir,
        pidfile: tmp.join(format!("gunicorn-dirty-{safe}.pid")),
        proc_name,
        master_pid: std::process::id(),
    }))
}

impl DirtySidecar {
    /// The unix socket the web workers connect to.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    fn run_python(&self, py: Python<'_>, cfg: &Config) -> PyResult<i32> {
        // `gunicorn.dirty` comes from where the web workers get it too: the installed package
        // (the pip master) or the built-in copy (`ensure_initialized` installed its importer).
        if let Err(e) = crate::app::prepare_dirty_process(py, cfg) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(e.to_string()));
        }
        let module = py.import("gunicorn.dirty.arbiter")?;
        let cfg_obj = server_hooks::config_object(py)?;
        // Typed values for what the dirty arbiter reads (the generic object holds what
        // --print-config shows).
        let apps: Vec<&str> = cfg.dirty_apps.iter().map(String::as_str).collect();
        cfg_obj.setattr("dirty_apps", apps)?;
        cfg_obj.setattr("dirty_workers", cfg.dirty_workers)?;
        cfg_obj.setattr("dirty_timeout", cfg.dirty_timeout)?;
        cfg_obj.setattr("dirty_threads", cfg.dirty_threads)?;
        cfg_obj.setattr("dirty_graceful_timeout", cfg.dirty_graceful_timeout)?;
        cfg_obj.setattr("proc_name", &self.proc_name)?;
        let hooks = PyDict::new(py);
        for name in [
            "on_dirty_starting",
            "dirty_post_fork",
            "dirty_worker_init",
            "dirty_worker_exit",
        ] {
            if let Some(h) = server_hooks::hook_object(py, name) {
                hooks.set_item(name, h)?;
            }
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("pidfile", self.pidfile.to_string_lossy().as_ref())?;
        kwargs.set_item("hooks", hooks)?;
        kwargs.set_item("reopen_logs", wrap_pyfunction!(reopen_logs, py)?)?;
        let arbiter = module.getattr("DirtyArbiter")?.call(
            (
                cfg_obj,
                server_hooks::log_object(py)?,
                self.socket_path.to_string_lossy().as_ref(),
            ),
            Some(&kwargs),
        )?;
        arbiter.call_method0("run")?.extract()
    }
}

/// USR1 in the dirty arbiter and its workers: reopen the error log, as the master does.
#[pyfunction]
fn reopen_logs() {
    if let Err(e) = gunicorn_core::log::reopen() {
        log_error!("cannot reopen the log file: {e}");
    }
}

impl Sidecar for DirtySidecar {
    fn name(&self) -> &str {
        "Dirty arbiter"
    }

    fn prepare(&mut self) {
        let path = self.socket_path.as_os_str();
        // The master is single-threaded here (the arbiter's rule), so changing its environment
        // is safe; the web workers forked later inherit it.
        std::env::set_var("GUNICORN_DIRTY_SOCKET", path);
        if crate::sys::is_initialized() {
            // A master that runs Python (config file, --preload, the pip package) has its own
            // copy of the environment in os.environ, which the workers' Python code reads.
            let _ = Python::attach(|py| -> PyResult<()> {
                py.import("os")?
                    .getattr("environ")?
                    .set_item("GUNICORN_DIRTY_SOCKET", path)
            });
        }
    }

    fn location(&self) -> Option<String> {
        Some(self.socket_path.display().to_string())
    }

    fn query(
        &self,
        request: &serde_json::Value,
        timeout: std::time::Duration,
    ) -> Option<serde_json::Value> {
        match query_socket(&self.socket_path, request, timeout) {
            Ok(answer) => Some(answer),
            Err(e) => {
                gunicorn_core::log_debug!("no answer from the dirty arbiter: {e}");
                None
            }
        }
    }

    fn run(&mut self, cfg: &Config) -> i32 {
        gunicorn_core::process::set_title("dirty-arbiter", &self.proc_name);
        if let Err(e) = crate::ensure_initialized() {
            log_error!("Exception in dirty arbiter process\n{e}");
            return 1;
        }
        let status = Python::attach(|py| match self.run_python(py, cfg) {
            Ok(status) => status,
            Err(e) => {
                let tb = crate::pyerr::format_exception(py, &e);
                log_error!("Exception in dirty arbiter process\n{}", tb.trim_end());
                1
            }
        });
        status
    }
}

impl Drop for DirtySidecar {
    /// The master, when its arbiter is done, removes the sockets' directory (a dirty arbiter
    /// that exits leaves it: the master starts another one in it).
    fn drop(&mut self) {
        if std::process::id() == self.master_pid {
            let _ = std::fs::remove_dir_all(&self.socket_dir);
        }
    }
}

/// The largest answer the master reads from the dirty arbiter.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One request to the dirty arbiter's socket in its framing (`gunicorn.dirty.protocol`: a 4-byte
/// big-endian length, then JSON), and the `result` of its `response`.
fn query_socket(
    path: &Path,
    request: &serde_json::Value,
    timeout: std::time::Duration,
) -> std::io::Result<serde_json::Value> {
    use std::io::{Error, ErrorKind, Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = serde_json::to_vec(request).map_err(Error::other)?;
    let len = u32::try_from(body.len()).map_err(Error::other)?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(&body)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    let size = u32::from_be_bytes(head) as usize;
    if size > MAX_ANSWER {
        return Err(Error::new(ErrorKind::InvalidData, "answer too large"));
    }
    let mut answer = vec![0u8; size];
    stream.read_exact(&mut answer)?;
    let answer: serde_json::Value = serde_json::from_slice(&answer).map_err(Error::other)?;
    match answer.get("type").and_then(|t| t.as_str()) {
        Some("response") => Ok(answer.get("result").cloned().unwrap_or_default()),
        _ => Err(Error::new(ErrorKind::InvalidData, answer.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::{query_socket, valid_app_spec};

    /// The master's question and a fake dirty arbiter's answer, in the framing of
    /// `gunicorn.dirty.protocol`; an error answer and a silent peer give errors, not hangs.
    #[test]
    fn query_speaks_the_dirty_framing() {
        use std::io::{Read, Write};
        use std::time::Duration;
        let dir = std::env::temp_dir().join(format!("dirty-query-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let answers = [
            r#"{"type":"response","id":"1","result":{"enabled":true}}"#,
            r#"{"type":"error","id":"1","error":{"message":"no"}}"#,
            "",
        ];
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut head = [0u8; 4];
                conn.read_exact(&mut head).unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
                conn.read_exact(&mut body).unwrap();
                seen.push(String::from_utf8(body).unwrap());
                if answer.is_empty() {
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                }
                conn.write_all(&(answer.len() as u32).to_be_bytes())
                    .unwrap();
                conn.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        let request = serde_json::json!({"type": "status", "id": "1"});
        let t = Duration::from_millis(100);
        let ok = query_socket(&path, &request, t).unwrap();
        assert_eq!(ok, serde_json::json!({"enabled": true}));
        assert!(query_socket(&path, &request, t).is_err());
        assert!(query_socket(&path, &request, t).is_err());
        let seen = server.join().unwrap();
        assert_eq!(seen[0], r#"{"type":"status","id":"1"}"#);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn app_specs_as_gunicorn_parses_them() {
        let cases = [
            ("app:App", true),
            ("pkg.mod:App", true),
            ("pkg.mod:App:2", true),
            ("pkg.mod:App:0", false),
            ("pkg.mod:App:-1", false),
            ("pkg.mod:App:x", false),
            ("pkg.mod", false),
            (":App", false),
            ("mod:", false),
            ("a:b:1:2", false),
        ];
        for (spec, ok) in cases {
            assert_eq!(valid_app_spec(spec), ok, "{spec}");
        }
    }
}
