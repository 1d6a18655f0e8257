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
    /// Runs after [`Hooks::before_fork`].
    fn pre_fork(&self, _age: u64) {}
    /// Immediately before `fork()`, after `pre_fork` (e.g. `PyOS_BeforeFork`).
    fn before_fork(&self) {}
    /// In the master, immediately after `fork()` (e.g. `PyOS_AfterFork_Parent`).
    fn after_fork_parent(&self, _child_pid: i32) {}
    /// In the child, immediately after `fork()` (e.g. `PyOS_AfterFork_Child`).
    fn after_fork_child(&self) {}
    /// In the child, after the fork bookkeeping and before the worker runs (gunicorn's `post_fork`).
    fn post_fork(&self, _ctx: &WorkerContext) {}
    /// In the master, after a worker was reaped (gunicorn's `child_exit`).
    fn child_exit(&self, _pid: i32) {}
    /// In the master, when the number of workers changes (gunicorn's `nworkers_changed`).
    fn nworkers_changed(&self, _new: u64, _old: Option<u64>) {}
    /// In the master, just before it exits (gunicorn's `on_exit`).
    fn on_exit(&self) {}
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
