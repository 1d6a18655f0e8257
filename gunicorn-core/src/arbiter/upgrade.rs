//! USR2 binary upgrade: starting the new master, and the new master's promotion once the old
//! one is gone.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::Arbiter;
use crate::process;
use crate::{log_error, log_info, log_warning};

impl Arbiter {
    /// USR2: start a new master from the same binary and arguments, handing it the listeners
    /// in `GUNICORN_FD` and this pid in `GUNICORN_PID`.
    pub(super) fn reexec(&mut self) {
        if self.reexec_pid != 0 {
            log_warning!("USR2 signal ignored. Child exists.");
            return;
        }
        if self.parent_master.is_some() {
            log_warning!("USR2 signal ignored. Parent exists.");
            return;
        }
        // Like gunicorn (which execs `sys.executable` with `sys.argv`), run the program by the
        // name it was started with, resolved from the start directory or PATH, so an upgrade
        // picks up a binary replaced on disk; /proc/self/exe would still name the old, deleted
        // file. The running executable's path is the fallback.
        let by_name = self
            .start_args
            .first()
            .filter(|a| !a.is_empty())
            .map(PathBuf::from);
        let Some(exe) = by_name.or_else(|| self.start_exe.clone()) else {
            log_error!("USR2: cannot find the running executable");
            return;
        };
        // dup(2) gives copies without CLOEXEC, so exactly these are inherited by the new master.
        let mut inherited: Vec<OwnedFd> = Vec::new();
        for l in &self.listeners {
            match nix::unistd::dup(l.as_fd()) {
                Ok(fd) => inherited.push(fd),
                Err(e) => {
                    log_error!("USR2: cannot pass the listeners on: {e}");
                    return;
                }
            }
        }
        let fds: Vec<String> = inherited
            .iter()
            .map(|f| f.as_raw_fd().to_string())
            .collect();
        self.hooks.pre_exec();
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(self.start_args.iter().skip(1))
            .env("GUNICORN_PID", self.pid.to_string())
            .env("GUNICORN_FD", fds.join(","));
        if self.systemd {
            cmd.env("GUNICORN_SYSTEMD", "1");
        }
        if let Some(cwd) = &self.start_cwd {
            cmd.current_dir(cwd);
        }
        match cmd.spawn() {
            Ok(child) => self.reexec_pid = child.id() as i32,
            Err(e) => log_error!("USR2: cannot start {}: {e}", exe.display()),
        }
        drop(inherited);
    }

    /// A master started by USR2 takes over once its parent (the old master) is gone.
    pub(super) fn maybe_promote_master(&mut self) {
        let Some(old) = self.parent_master else {
            return;
        };
        if nix::unistd::getppid().as_raw() == old {
            return;
        }
        log_info!("Master has been promoted.");
        self.master_name = "Master".into();
        self.parent_master = None;
        std::env::remove_var("GUNICORN_PID");
        self.proc_name = process::proc_name(&self.cfg);
        process::set_title("master", &self.proc_name);
        if let (Some(pf), Some(base)) = (self.pidfile.as_mut(), self.cfg.pidfile.as_ref()) {
            if let Err(e) = pf.rename(Path::new(base)) {
                log_error!("cannot rename the pid file: {e}");
            }
        }
    }
}
