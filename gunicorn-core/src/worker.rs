//! The `Worker` trait and what a worker gets when it runs in its forked child.

use std::os::fd::AsFd;
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::config::Config;
use crate::heartbeat::Heartbeat;
use crate::listener::Listener;
use crate::shutdown::Shutdown;

/// A worker: built in the master, consumed by `run` in the forked child.
pub trait Worker: Send + 'static {
    /// Serves until shutdown is requested, max_requests is reached, or the master goes away.
    /// Returning `Ok` exits the child with status 0.
    fn run(self: Box<Self>, ctx: WorkerContext) -> Result<(), WorkerError>;
}

/// What a worker receives in its child process.
pub struct WorkerContext {
    /// 1 for the first worker spawned, then counting up (gunicorn's `worker.age`).
    pub age: u64,
    /// The master's pid; a worker exits when its parent pid changes.
    pub ppid: i32,
    /// The listening sockets, already non-blocking and CLOEXEC.
    pub listeners: Vec<Listener>,
    /// Proves the worker alive to the master; call `notify()` at least every `timeout / 2`.
    pub heartbeat: Heartbeat,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Set by the worker's signal handlers (TERM = graceful, INT/QUIT = quick).
    pub shutdown: Shutdown,
}

impl WorkerContext {
    /// Waits up to `timeout` until a listener is readable (a connection to accept) or a stop
    /// was asked for (the shutdown pipe is readable): the wait of a simple accept loop between
    /// rounds. Returns what `poll(2)` returns: how many descriptors are ready, 0 on timeout.
    pub fn wait_readable(&self, timeout: PollTimeout) -> nix::Result<i32> {
        let mut fds: Vec<PollFd<'_>> = self
            .listeners
            .iter()
            .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(self.shutdown.wake_fd(), PollFlags::POLLIN));
        poll(&mut fds, timeout)
    }
}

/// A worker could not be built from the configuration (reported before any fork, exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// Why a worker stopped with an error. The child's exit status follows gunicorn:
/// 3 = failed to boot, 4 = the application failed to load; the master then halts with it.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Anything that failed before the worker was serving.
    #[error("worker failed to boot: {0}")]
    Boot(String),
    /// The application could not be imported or is not callable.
    #[error("{0}")]
    AppLoad(String),
    /// A failure after boot.
    #[error("{0}")]
    Runtime(String),
}

impl WorkerError {
    /// The process exit status for this error (gunicorn's `WORKER_BOOT_ERROR` = 3,
    /// `APP_LOAD_ERROR` = 4, anything after boot = 1).
    pub fn exit_status(&self) -> i32 {
        match self {
            WorkerError::Boot(_) => 3,
            WorkerError::AppLoad(_) => 4,
            WorkerError::Runtime(_) => 1,
        }
    }
}

/// What a worker does on SIGABRT, the master's first answer to a `WORKER TIMEOUT`.
pub type AbortHandler = Box<dyn Fn() + Send + Sync + 'static>;

static ABORT_HANDLER: std::sync::OnceLock<AbortHandler> = std::sync::OnceLock::new();

/// Replaces the worker's SIGABRT behaviour (by default: exit 1 at once). Call it in the worker
/// process (in `Worker::run` or `Hooks::post_fork`). The handler runs on the worker's helper
/// thread, not in signal context, so it may take locks or the GIL; it is then responsible for
/// ending the process, e.g. by asking the serving thread to unwind the current request (a 500
/// if no header was sent yet, as gunicorn does) and exit. The master sends SIGKILL on its next
/// tick if the worker is still silent. Returns false if a handler was already set.
pub fn set_abort_handler(handler: AbortHandler) -> bool {
    ABORT_HANDLER.set(handler).is_ok()
}

/// Runs the SIGABRT behaviour: the handler set with [`set_abort_handler`], else exit 1.
pub(crate) fn abort_worker() {
    match ABORT_HANDLER.get() {
        Some(handler) => handler(),
        None => {
            // gunicorn's worker logs this on every way out, the abort included.
            crate::log_info!("Worker exiting (pid: {})", std::process::id());
            std::process::exit(1)
        }
    }
}

/// The number of requests a worker serves before it restarts: gunicorn's base worker takes
/// `max_requests + randint(0, max_requests_jitter)`, and unlimited (`None`) when `max_requests`
/// is 0. The jitter keeps workers from restarting all at once.
pub fn max_requests(cfg: &Config) -> Option<u64> {
    max_requests_from(cfg.max_requests, cfg.max_requests_jitter, random_u64())
}

fn max_requests_from(max: u64, jitter: u64, random: u64) -> Option<u64> {
    if max == 0 {
        return None;
    }
    let extra = if jitter == 0 {
        0
    } else {
        random % (jitter + 1)
    };
    Some(max.saturating_add(extra))
}

/// A random number from the OS-seeded hasher keys (no RNG crate needed for a jitter).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_requests_with_jitter() {
        let cases = [
            // (max, jitter, random, expected)
            (0, 0, 7, None),
            (0, 50, 7, None),
            (100, 0, 7, Some(100)),
            (100, 10, 7, Some(107)),
            (100, 10, 10, Some(110)),
            (100, 10, 11, Some(100)),
            (u64::MAX, 5, 3, Some(u64::MAX)),
        ];
        for (max, jitter, random, want) in cases {
            assert_eq!(
                max_requests_from(max, jitter, random),
                want,
                "{max} {jitter} {random}"
            );
        }
    }
}
