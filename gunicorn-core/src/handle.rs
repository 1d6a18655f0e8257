//! [`ArbiterHandle`]: control a running master from anywhere — another thread of the embedding
//! program, a worker, or another process. Each method sends the master the signal gunicorn uses
//! for that action, so it goes through the same queue and logging as `kill -HUP`.

use std::io;
use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::worker::WorkerContext;

/// A cheap, copyable handle on a master process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArbiterHandle {
    pid: i32,
}

impl ArbiterHandle {
    /// The master with this pid.
    pub fn from_pid(pid: i32) -> ArbiterHandle {
        ArbiterHandle { pid }
    }

    /// The master whose pid is in `path` (`--pid`); the right choice for a daemon, whose pid
    /// changes when it detaches.
    pub fn from_pidfile(path: &Path) -> io::Result<ArbiterHandle> {
        let text = std::fs::read_to_string(path)?;
        let pid: i32 = text
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "pidfile holds no pid"))?;
        if pid <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "pidfile holds no pid",
            ));
        }
        Ok(ArbiterHandle { pid })
    }

    /// The master of the worker running with `ctx`.
    pub fn of_parent(ctx: &WorkerContext) -> ArbiterHandle {
        ArbiterHandle { pid: ctx.ppid }
    }

    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn send(&self, sig: Signal) -> io::Result<()> {
        kill(Pid::from_raw(self.pid), sig).map_err(io::Error::from)
    }

    /// HUP: reload the configuration and replace the workers.
    pub fn reload(&self) -> io::Result<()> {
        self.send(Signal::SIGHUP)
    }

    /// TTIN: one more worker.
    pub fn incr(&self) -> io::Result<()> {
        self.send(Signal::SIGTTIN)
    }

    /// TTOU: one worker fewer (never below one).
    pub fn decr(&self) -> io::Result<()> {
        self.send(Signal::SIGTTOU)
    }

    /// TERM: graceful stop.
    pub fn stop(&self) -> io::Result<()> {
        self.send(Signal::SIGTERM)
    }

    /// QUIT: quick stop.
    pub fn quick_stop(&self) -> io::Result<()> {
        self.send(Signal::SIGQUIT)
    }

    /// USR1: reopen the log files, in the master and the workers.
    pub fn reopen_logs(&self) -> io::Result<()> {
        self.send(Signal::SIGUSR1)
    }

    /// USR2: start a new master from the same binary, sharing the sockets.
    pub fn upgrade(&self) -> io::Result<()> {
        self.send(Signal::SIGUSR2)
    }

    /// Whether the master process still exists.
    pub fn is_alive(&self) -> bool {
        matches!(
            kill(Pid::from_raw(self.pid), None),
            Ok(()) | Err(nix::Error::EPERM)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfiles_are_read_strictly() {
        let dir = std::env::temp_dir().join(format!("gunicorn-handle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p");
        let cases: &[(&str, Option<i32>)] = &[
            ("123\n", Some(123)),
            (" 77 ", Some(77)),
            ("", None),
            ("abc", None),
            ("0", None),
            ("-5", None),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                ArbiterHandle::from_pidfile(&path).ok().map(|h| h.pid()),
                *want,
                "{text:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        let me = ArbiterHandle::from_pid(std::process::id() as i32);
        assert!(me.is_alive());
    }
}
