//! The master's signal queue: handlers only write the signal number to a CLOEXEC, non-blocking
//! self-pipe; the arbiter's loop reads the numbers in arrival order and does all the work
//! (gunicorn's `SIG_QUEUE`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

/// The signals the master handles (gunicorn's `SIGNALS` plus CHLD).
pub const MASTER_SIGNALS: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// gunicorn's name for a signal in `Handling signal: <name>`.
pub fn signal_name(sig: Signal) -> String {
    sig.as_str().trim_start_matches("SIG").to_ascii_lowercase()
}

/// The self-pipe and the installed handlers.
#[derive(Debug)]
pub struct SignalQueue {
    read: OwnedFd,
    write: OwnedFd,
}

impl SignalQueue {
    /// Creates the pipe and routes [`MASTER_SIGNALS`] to it.
    pub fn install() -> io::Result<SignalQueue> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        crate::sys::install_master_handlers(write.as_raw_fd(), MASTER_SIGNALS)?;
        Ok(SignalQueue { read, write })
    }

    /// Waits up to `timeout` for signals and returns those that arrived, oldest first.
    pub fn wait(&self, timeout: Duration) -> Vec<Signal> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        // EINTR just means a handler ran; the read below picks its byte up.
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        );
        self.drain()
    }

    /// The signals queued so far, without waiting.
    pub fn drain(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend(
                    buf[..n]
                        .iter()
                        .filter_map(|b| Signal::try_from(i32::from(*b)).ok()),
                ),
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
        }
        out
    }

    /// Wakes the loop without a signal.
    pub fn wakeup(&self) {
        let _ = nix::unistd::write(&self.write, &[0u8]);
    }

    /// Restores the default actions (in a forked worker, before it installs its own).
    pub fn uninstall(self) {
        let _ = crate::sys::reset_signals(MASTER_SIGNALS);
    }
}

/// The pipe's read end, for a wait that watches more descriptors (the control socket's).
impl AsFd for SignalQueue {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.read.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_gunicorns_handler_names() {
        let cases: &[(Signal, &str)] = &[
            (Signal::SIGHUP, "hup"),
            (Signal::SIGTERM, "term"),
            (Signal::SIGTTIN, "ttin"),
            (Signal::SIGUSR2, "usr2"),
            (Signal::SIGWINCH, "winch"),
        ];
        for (sig, want) in cases {
            assert_eq!(signal_name(*sig), *want);
        }
    }
}
