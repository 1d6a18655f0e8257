//! The worker side of a fork: everything the child does between `fork()` and `exit()`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};

use super::exit_status::WORKER_BOOT_ERROR;
use super::signal_mask::restore_signal_mask;
use super::Arbiter;
use crate::bind;
use crate::heartbeat::Heartbeat;
use crate::listener::Listener;
use crate::process;
use crate::shutdown::{Shutdown, StopKind};
use crate::sys;
use crate::worker::{Worker, WorkerContext, WorkerError};
use crate::{log_error, log_info};

impl Arbiter {
    /// The forked child: becomes the worker and never returns.
    pub(super) fn run_child(
        &mut self,
        worker: Box<dyn Worker>,
        heartbeat: Heartbeat,
        age: u64,
        old_mask: SigSet,
    ) -> ! {
        self.hooks.after_fork_child();
        if let Some(q) = self.signals.take() {
            q.uninstall();
        }
        // The siblings' heartbeat files and the master's pidfile are not the worker's business.
        self.workers.clear();
        self.pidfile = None;
        self.control.forget_in_child();
        process::set_title("worker", &self.proc_name);
        let pid = std::process::id();
        log_info!("Booting worker with pid: {pid}");
        let status = match self.prepare_child(&old_mask) {
            Ok((listeners, shutdown, _pipe)) => {
                let ctx = WorkerContext {
                    age,
                    ppid: self.pid,
                    listeners,
                    heartbeat,
                    config: self.cfg.clone(),
                    shutdown,
                };
                self.hooks.post_fork(&ctx);
                match worker.run(ctx) {
                    Ok(()) => 0,
                    Err(e) => report_worker_error(&e),
                }
            }
            Err(e) => {
                log_error!("Exception in worker process\n{e}");
                WORKER_BOOT_ERROR
            }
        };
        log_info!("Worker exiting (pid: {pid})");
        self.hooks.worker_exit(age);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::process::exit(status)
    }

    /// The child's setup before the worker runs: listeners (bound here with reuse_port),
    /// privileges, signal handlers and the helper thread.
    fn prepare_child(
        &mut self,
        old_mask: &SigSet,
    ) -> Result<(Vec<Listener>, Shutdown, OwnedFd), ChildSetupError> {
        let mut listeners = std::mem::take(&mut self.listeners);
        if !self.reuse_port_addrs.is_empty() {
            let opts = bind::BindOptions::from_config(&self.cfg);
            let own = bind::bind_with_retries(&self.reuse_port_addrs, &opts)?;
            listeners.extend(own);
        }
        process::drop_privileges(&self.cfg)?;
        let shutdown = Shutdown::new().map_err(ChildSetupError::Shutdown)?;
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(ChildSetupError::SignalPipe)?;
        sys::install_worker_handlers(
            &shutdown,
            write.as_raw_fd(),
            &[Signal::SIGUSR1, Signal::SIGABRT],
        )
        .map_err(ChildSetupError::SignalHandlers)?;
        for sig in [Signal::SIGHUP, Signal::SIGUSR2, Signal::SIGCHLD] {
            let _ = sys::reset_signals(&[sig]);
        }
        let _ = sys::ignore_signal(Signal::SIGWINCH);
        // The worker's handlers are in place: let pending signals in.
        restore_signal_mask(old_mask);
        let helper_shutdown = shutdown.clone();
        let ppid = self.pid;
        std::thread::Builder::new()
            .name("gunicorn-signals".into())
            .spawn(move || worker_signal_thread(read, helper_shutdown, ppid))
            .map_err(ChildSetupError::SignalThread)?;
        Ok((listeners, shutdown, write))
    }
}

/// Why a forked child could not become a worker (gunicorn's "Exception in worker process",
/// exit status 3).
#[derive(Debug, thiserror::Error)]
pub(super) enum ChildSetupError {
    /// `--reuse-port`: the worker's own listeners cannot be bound.
    #[error("{0}")]
    Bind(#[from] bind::BindError),
    /// `--user` / `--group` cannot be switched to.
    #[error("{0}")]
    Privileges(#[from] process::PrivilegeError),
    #[error("cannot create the shutdown pipe: {0}")]
    Shutdown(#[source] std::io::Error),
    #[error("cannot create the signal pipe: {0}")]
    SignalPipe(#[source] nix::Error),
    #[error("cannot install the worker's signal handlers: {0}")]
    SignalHandlers(#[source] std::io::Error),
    #[error("cannot start the signal thread: {0}")]
    SignalThread(#[source] std::io::Error),
}

/// Logs why a worker stopped with an error and returns its exit status. An application that
/// failed to load is printed plainly to stderr, as gunicorn prints `AppImportError`.
fn report_worker_error(e: &WorkerError) -> i32 {
    match e {
        WorkerError::AppLoad(msg) => {
            eprintln!("{msg}");
        }
        WorkerError::Boot(msg) | WorkerError::Runtime(msg) => {
            log_error!("Exception in worker process\n{msg}");
        }
    }
    e.exit_status()
}

/// The worker's helper thread: reopens the log on USR1, runs the abort behaviour on SIGABRT (a
/// timeout kill from the master: [`crate::worker::set_abort_handler`], by default exit 1 as
/// gunicorn's worker does after its `worker_abort` hook), and asks the worker to stop
/// gracefully once its parent changes (the master died).
fn worker_signal_thread(pipe: OwnedFd, shutdown: Shutdown, ppid: i32) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut parent_gone = false;
    loop {
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(1000u16));
        let mut buf = [0u8; 16];
        while let Ok(n) = nix::unistd::read(&pipe, &mut buf) {
            if n == 0 {
                break;
            }
            for b in &buf[..n] {
                match Signal::try_from(i32::from(*b)) {
                    Ok(Signal::SIGUSR1) => {
                        let _ = crate::log::reopen();
                    }
                    Ok(Signal::SIGABRT) => crate::worker::abort_worker(),
                    _ => {}
                }
            }
        }
        if !parent_gone && nix::unistd::getppid().as_raw() != ppid {
            parent_gone = true;
            log_info!(
                "Parent changed, shutting down: worker (pid: {})",
                std::process::id()
            );
            shutdown.request(StopKind::Graceful);
        }
    }
}
