//! The `Worker` trait and what a worker gets when it runs in its forked child.

use std::sync::Arc;

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
