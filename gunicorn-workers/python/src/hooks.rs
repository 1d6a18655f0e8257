//! The arbiter's fork hooks for a process that may hold an initialized interpreter.

use gunicorn_core::Hooks;

use crate::sys;

/// Brackets every `fork()` of the arbiter with `PyOS_BeforeFork` / `PyOS_AfterFork_Parent` /
/// `PyOS_AfterFork_Child` when Python is initialized in the master (config file, `--preload`),
/// so Python's locks and `os.register_at_fork` callbacks stay consistent in both processes.
/// Without an initialized interpreter every method does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct PythonHooks;

impl Hooks for PythonHooks {
    fn before_fork(&self) {
        sys::before_fork();
    }
    fn after_fork_parent(&self, _child_pid: i32) {
        sys::after_fork_parent();
    }
    fn after_fork_child(&self) {
        sys::after_fork_child();
    }
}
