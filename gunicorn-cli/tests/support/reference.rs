//! Real gunicorn 27, the reference of the differential tests: its command in the venv
//! `scripts/test-package` makes (`target/package/venvs/gunicorn27`), and a server of it on a
//! free port, killed on drop. Tests skip (with a printed note) when the venv is absent.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port, TempDir};

/// gunicorn 27's `gunicorn` command, if its venv exists.
pub fn gunicorn27() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/package/venvs/gunicorn27/bin/gunicorn");
    path.exists().then_some(path)
}

/// gunicorn 27 with `args` on a free port, killed on drop.
pub struct Reference {
    pub child: Child,
    pub port: u16,
}

impl Reference {
    /// Starts `g27 ARGS -b 127.0.0.1:PORT --no-control-socket` in `tests/apps`, its stderr in
    /// `dir`; None when no stderr line contains `ready` within 30 s.
    pub fn start(g27: &Path, args: &[&str], dir: &TempDir, ready: &str) -> Option<Reference> {
        let port = free_port();
        let err = dir.path().join("g27.err");
        let child = Command::new(g27)
            .current_dir(super::apps_dir())
            .args(args)
            .args(["-b", &format!("127.0.0.1:{port}"), "--no-control-socket"])
            .env_remove("GUNICORN_CMD_ARGS")
            .env_remove("PYTHONPATH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn gunicorn 27");
        let r = Reference { child, port };
        let booted = eventually(Duration::from_secs(30), || {
            std::fs::read_to_string(&err).is_ok_and(|t| t.contains(ready))
        });
        booted.then_some(r)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
