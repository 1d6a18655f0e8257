//! The arbiter's hooks for a process that may hold an initialized interpreter: fork brackets
//! and the server hooks of the config file ([`crate::server_hooks`]).

use gunicorn_core::{Hooks, WorkerContext};

use crate::{server_hooks, sys};

/// Brackets every `fork()` of the arbiter with `PyOS_BeforeFork` / `PyOS_AfterFork_Parent` /
/// `PyOS_AfterFork_Child` when Python is initialized in the master (config file, `--preload`),
/// so Python's locks and `os.register_at_fork` callbacks stay consistent in both processes, and
/// runs gunicorn's server hooks set in the config file (`on_starting`, `pre_fork`, ...). Without
/// an initialized interpreter (no config file, no `--preload`) there are no hooks and the fork
/// brackets do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct PythonHooks;

impl Hooks for PythonHooks {
    fn on_starting(&self) {
        server_hooks::on_starting();
    }
    fn when_ready(&self) {
        server_hooks::when_ready();
    }
    fn pre_fork(&self, age: u64) {
        server_hooks::pre_fork(age);
    }
    fn before_fork(&self) {
        sys::before_fork();
    }
    fn after_fork_parent(&self, child_pid: i32) {
        sys::after_fork_parent();
        server_hooks::after_fork_parent(child_pid);
    }
    fn after_fork_child(&self) {
        sys::after_fork_child();
    }
    fn post_fork(&self, ctx: &WorkerContext) {
        server_hooks::post_fork(ctx.age, ctx.ppid, &ctx.config, &ctx.shutdown);
        // --reload: the watcher is a thread of the worker, never of the master.
        crate::reload::start(&ctx.config, ctx.shutdown.clone());
    }
    fn worker_exit(&self, _age: u64) {
        server_hooks::worker_exit();
    }
    fn child_exit(&self, pid: i32) {
        server_hooks::child_exit(pid);
    }
    fn nworkers_changed(&self, new: u64, old: Option<u64>) {
        server_hooks::nworkers_changed(new, old);
    }
    fn on_reload(&self) {
        // gunicorn's arbiter runs the logger's setup(cfg) again with the new settings.
        if let Some(cfg) = server_hooks::current_config() {
            crate::logging::logger_class::reconfigure(&cfg);
        }
        server_hooks::on_reload();
    }
    fn pre_exec(&self) {
        server_hooks::pre_exec();
    }
    fn on_exit(&self) {
        server_hooks::on_exit();
    }
    fn take_failure(&self) -> Option<String> {
        server_hooks::take_master_failure()
    }
}
