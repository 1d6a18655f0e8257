//! Supervised side processes of the master: a process the arbiter forks once the listeners are
//! up, forks again whenever it dies, forwards HUP and USR1 to, and stops with the workers
//! (TERM for a graceful stop, QUIT for a quick one, KILL when the graceful timeout is over).
//!
//! This is how gunicorn 25+ runs its dirty arbiter (`Arbiter.spawn_dirty_arbiter`,
//! `manage_dirty_arbiter`, `kill_dirty_arbiter`): the core knows nothing of what the process
//! does; an embedder (the Python crate's dirty arbiter, see docs/dirty.md) implements
//! [`Sidecar`] and registers it with `Arbiter::add_sidecar` before `run`. The master's side
//! (fork, signals, reaping) is in `sidecar_spawn.rs`.

use crate::config::Config;

/// A process the master keeps running beside its workers.
pub trait Sidecar: Send {
    /// The name used in the master's log lines (`Dirty arbiter`).
    fn name(&self) -> &str;
    /// In the master, just before each fork: e.g. export the address the workers reach the
    /// side process at, so the workers forked later inherit it.
    fn prepare(&mut self) {}
    /// Where the process can be reached, for the `Spawned NAME (pid: N) at WHERE` line.
    fn location(&self) -> Option<String> {
        None
    }
    /// In the master: asks the running process `request` and waits at most `timeout` for its
    /// answer (the dirty arbiter answers gunicornc's `show dirty`, `dirty add N` and
    /// `dirty remove N`: see docs/dirty.md). `None` when the process has no such channel or
    /// did not answer in time. The master's loop waits meanwhile: keep `timeout` short.
    fn query(
        &self,
        _request: &serde_json::Value,
        _timeout: std::time::Duration,
    ) -> Option<serde_json::Value> {
        None
    }
    /// In the forked child, with the master's signal handlers, listeners and pidfile already
    /// dropped and the worker user switched to: runs the process and returns its exit status.
    fn run(&mut self, cfg: &Config) -> i32;
}

/// Where the master is with one side process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SidecarState {
    /// Not running: forked at the next turn of the loop (unless the master is stopping).
    Down,
    /// Running as this pid.
    Up(i32),
}

/// A registered side process and its state.
pub(super) struct SidecarSlot {
    pub(super) sidecar: Box<dyn Sidecar>,
    pub(super) state: SidecarState,
}
