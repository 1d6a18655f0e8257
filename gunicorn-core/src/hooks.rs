//! Hooks the arbiter calls at fixed points of its life. An embedding program implements the ones
//! it needs; the Python workers implement them to bracket forks for an initialized interpreter
//! and to run the server hooks of `gunicorn.conf.py`.

use crate::worker::WorkerContext;

/// Callbacks from the arbiter. Every method has a no-op default.
pub trait Hooks: Send {
    /// In the master, before the listeners are created (gunicorn's `on_starting`).
    fn on_starting(&self) {}
    /// In the master, once the listeners are up (gunicorn's `when_ready`).
    fn when_ready(&self) {}
    /// In the master, just before `fork()` of the worker of this age (gunicorn's `pre_fork`).
    /// Runs before [`Hooks::before_fork`].
    fn pre_fork(&self, _age: u64) {}
    /// Immediately before `fork()`, after `pre_fork` (e.g. `PyOS_BeforeFork`).
    fn before_fork(&self) {}
    /// In the master, immediately after `fork()` (e.g. `PyOS_AfterFork_Parent`); `child_pid` is
    /// -1 when `fork()` failed (Python requires AfterFork_Parent after BeforeFork either way).
    fn after_fork_parent(&self, _child_pid: i32) {}
    /// In the child, immediately after `fork()` (e.g. `PyOS_AfterFork_Child`).
    fn after_fork_child(&self) {}
    /// In the child, after the fork bookkeeping and before the worker runs (gunicorn's `post_fork`).
    fn post_fork(&self, _ctx: &WorkerContext) {}
    /// In the worker, after its `run` returned and `Worker exiting (pid: N)` was logged, just
    /// before the process exits (gunicorn's `worker_exit`). `age` is the worker's age.
    fn worker_exit(&self, _age: u64) {}
    /// In the master, after a worker was reaped (gunicorn's `child_exit`).
    fn child_exit(&self, _pid: i32) {}
    /// In the master, when the number of workers changes (gunicorn's `nworkers_changed`).
    fn nworkers_changed(&self, _new: u64, _old: Option<u64>) {}
    /// In the master, after a HUP reloaded the configuration, before the new workers are spawned
    /// (gunicorn's `on_reload`).
    fn on_reload(&self) {}
    /// In the master, just before a USR2 upgrade spawns the new master binary (gunicorn's
    /// `pre_exec`, which gunicorn runs in the forked child just before `exec`).
    fn pre_exec(&self) {}
    /// In the master, just before it exits (gunicorn's `on_exit`).
    fn on_exit(&self) {}
    /// A hook run by the master's loop (`pre_fork`, `on_reload`, `child_exit`,
    /// `nworkers_changed`) failed in a way that must end the master, as an exception escaping
    /// gunicorn's main loop does. Returns the message (e.g. a traceback) once. The arbiter checks
    /// after each turn of its loop, logs `Unhandled exception in main loop` with it, stops the
    /// workers quickly, removes the pidfile and exits with status 255, without `on_exit`.
    fn take_failure(&self) -> Option<String> {
        None
    }
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
