//! The master's side of its [`Sidecar`]s: registered before `run`, forked once the listeners
//! are up and again whenever one dies, signalled with the workers, reaped and logged as gunicorn
//! does its dirty arbiter.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use super::sidecar::{Sidecar, SidecarSlot, SidecarState};
use super::signal_mask::{block_all_signals, restore_signal_mask};
use super::Arbiter;
use crate::process;
use crate::sys::{self, Forked};
use crate::{log_error, log_info, log_warning};

impl Arbiter {
    /// Registers a side process, forked after the listeners are up (before `when_ready`, as
    /// gunicorn spawns its dirty arbiter) and kept running until the master stops.
    pub fn add_sidecar(&mut self, sidecar: Box<dyn Sidecar>) {
        self.sidecars.push(SidecarSlot {
            sidecar,
            state: SidecarState::Down,
        });
    }

    /// Forks every side process that is not running. `respawn`: a later turn of the loop, where
    /// gunicorn logs `Spawning dirty arbiter...` first.
    pub(super) fn spawn_sidecars(&mut self, respawn: bool) {
        for i in 0..self.sidecars.len() {
            if self.sidecars[i].state != SidecarState::Down {
                continue;
            }
            if respawn {
                log_info!(
                    "Spawning {}...",
                    self.sidecars[i].sidecar.name().to_lowercase()
                );
            }
            self.spawn_sidecar(i);
        }
    }

    fn spawn_sidecar(&mut self, i: usize) {
        self.sidecars[i].sidecar.prepare();
        self.hooks.before_fork();
        let old_mask = block_all_signals();
        let forked = sys::fork();
        if !matches!(forked, Ok(Forked::Child)) {
            restore_signal_mask(&old_mask);
        }
        match forked {
            Ok(Forked::Parent(pid)) => {
                self.hooks.after_fork_parent(pid);
                let slot = &mut self.sidecars[i];
                slot.state = SidecarState::Up(pid);
                let name = slot.sidecar.name().to_lowercase();
                match slot.sidecar.location() {
                    Some(at) => log_info!("Spawned {name} (pid: {pid}) at {at}"),
                    None => log_info!("Spawned {name} (pid: {pid})"),
                }
            }
            Ok(Forked::Child) => {
                self.hooks.after_fork_child();
                if let Some(q) = self.signals.take() {
                    q.uninstall();
                }
                // The workers, the listeners and the pidfile are the master's business.
                self.workers.clear();
                self.listeners.clear();
                self.pidfile = None;
                self.control.forget_in_child();
                let status = match process::drop_privileges(&self.cfg) {
                    Ok(()) => {
                        restore_signal_mask(&old_mask);
                        let mut slot = self.sidecars.swap_remove(i);
                        self.sidecars.clear();
                        slot.sidecar.run(&self.cfg)
                    }
                    Err(e) => {
                        log_error!("{e}");
                        1
                    }
                };
                use std::io::Write;
                let _ = std::io::stdout().flush();
                std::process::exit(status)
            }
            Err(e) => {
                self.hooks.after_fork_parent(-1);
                log_error!("fork failed: {e}");
            }
        }
    }

    /// Sends `sig` to every running side process (gunicorn's `kill_dirty_arbiter`); one that is
    /// already gone is forgotten.
    pub(super) fn signal_sidecars(&mut self, sig: Signal) {
        for slot in &mut self.sidecars {
            if let SidecarState::Up(pid) = slot.state {
                if let Err(nix::Error::ESRCH) = kill(Pid::from_raw(pid), sig) {
                    slot.state = SidecarState::Down;
                }
            }
        }
    }

    /// True while a side process runs.
    pub(super) fn sidecars_running(&self) -> bool {
        self.sidecars
            .iter()
            .any(|s| matches!(s.state, SidecarState::Up(_)))
    }

    /// A reaped child: if it is a side process, logs its exit as gunicorn's
    /// `handle_dirty_arbiter_exit` does, marks it down (forked again by the next loop turn) and
    /// returns true.
    pub(super) fn reap_sidecar(&mut self, pid: i32, status: WaitStatus) -> bool {
        let Some(slot) = self
            .sidecars
            .iter_mut()
            .find(|s| s.state == SidecarState::Up(pid))
        else {
            return false;
        };
        slot.state = SidecarState::Down;
        let name = slot.sidecar.name();
        match status {
            WaitStatus::Exited(_, 0) => log_info!("{name} (pid:{pid}) exited"),
            WaitStatus::Exited(_, code) => {
                log_error!("{name} (pid:{pid}) exited with code {code}")
            }
            WaitStatus::Signaled(_, sig, _) => {
                log_warning!("{name} (pid:{pid}) killed by signal {}", sig as i32)
            }
            _ => {}
        }
        true
    }
}
