//! The arbiter: the master process that binds the listeners, forks the workers, and keeps the
//! configured number alive (gunicorn's `arbiter.py`).
//!
//! It is a single-threaded loop. Signal handlers only queue the signal number on a self-pipe
//! ([`crate::signals`]); the loop wakes at least once a second, handles the queued signals in
//! order (each logged `Handling signal: <name>`), reaps dead workers, kills silent ones
//! (`--timeout`) and spawns or retires workers to match the wanted count.
//!
//! Embedders must not start threads in the master before [`Arbiter::run`]: the master forks.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::bind::{self, BindAddr};
use crate::config::Config;
use crate::heartbeat::Heartbeat;
use crate::hooks::Hooks;
use crate::listener::Listener;
use crate::process::{self, Pidfile};
use crate::registry::WorkerClass;
use crate::shutdown::{Shutdown, StopKind};
use crate::signals::{signal_name, SignalQueue};
use crate::sys::{self, Forked};
use crate::worker::{Worker, WorkerContext, WorkerError};
use crate::{log_critical, log_debug, log_error, log_info, log_warning};

/// gunicorn's exit status when a worker failed to boot.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// gunicorn's exit status when the application could not be loaded.
pub const APP_LOAD_ERROR: i32 = 4;

/// How the master loop reloads its configuration on HUP.
pub type ReloadFn = Box<dyn FnMut() -> Result<Config, String>>;

/// The arbiter could not be set up; the caller logs it and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum ArbiterError {
    /// The worker class refused the configuration.
    #[error("{0}")]
    Build(#[from] crate::worker::BuildError),
    /// A `bind` value is malformed.
    #[error("{0}")]
    Bind(#[from] bind::BindError),
    /// Another setting is unusable (unknown user, ...).
    #[error("{0}")]
    Config(String),
}

impl ArbiterError {
    /// The exit status gunicorn uses for this kind of error.
    pub fn exit_status(&self) -> i32 {
        1
    }
}

/// Why the master stops: gunicorn's `HaltServer`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Halt {
    reason: Option<String>,
    status: i32,
}

impl Halt {
    fn new(reason: &str, status: i32) -> Halt {
        Halt {
            reason: Some(reason.to_string()),
            status,
        }
    }
}

/// The master's record of one worker.
#[derive(Debug)]
struct WorkerSlot {
    age: u64,
    heartbeat: Heartbeat,
    /// Sent SIGABRT for a timeout; SIGKILL follows if it is still silent on the next tick.
    aborted: bool,
    /// Sent SIGTERM to retire it (TTOU, HUP's old generation); not counted as a live worker.
    retiring: bool,
}

/// What a reaped child's status means for the master (gunicorn's `reap_workers`), decided
/// without side effects so it can be tested without forking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    /// The line to log, and at which level; `None` for a clean exit.
    pub log: Option<(crate::log::Level, String)>,
    /// Set when the master must halt: the reason and the master's exit status.
    pub halt: Option<(&'static str, i32)>,
}

/// Classifies a worker's end: exit codes 3 and 4 halt the master with the same status, any other
/// non-zero code is logged as an error, and death by signal is logged at error level for
/// SIGKILL (with gunicorn's out-of-memory hint), info for SIGTERM and warning otherwise.
pub fn classify_exit(pid: i32, status: WaitStatus) -> ExitReport {
    use crate::log::Level;
    match status {
        WaitStatus::Exited(_, code) => ExitReport {
            log: (code != 0).then(|| {
                (
                    Level::Error,
                    format!("Worker (pid:{pid}) exited with code {code}."),
                )
            }),
            halt: match code {
                WORKER_BOOT_ERROR => Some(("Worker failed to boot.", WORKER_BOOT_ERROR)),
                APP_LOAD_ERROR => Some(("App failed to load.", APP_LOAD_ERROR)),
                _ => None,
            },
        },
        WaitStatus::Signaled(_, sig, _) => {
            let msg = format!("Worker (pid:{pid}) was sent {}!", sig.as_str());
            let log = match sig {
                Signal::SIGKILL => (Level::Error, format!("{msg} Perhaps out of memory?")),
                Signal::SIGTERM => (Level::Info, msg),
                _ => (Level::Warning, msg),
            };
            ExitReport {
                log: Some(log),
                halt: None,
            }
        }
        _ => ExitReport {
            log: None,
            halt: None,
        },
    }
}

/// Which workers to retire so that `wanted` remain: the oldest first (lowest age), as gunicorn.
/// `live` is `(pid, age)` of the workers not already retiring.
pub fn workers_to_retire(live: &[(i32, u64)], wanted: u64) -> Vec<i32> {
    let mut sorted = live.to_vec();
    sorted.sort_by_key(|(_, age)| *age);
    let excess = sorted.len().saturating_sub(wanted as usize);
    sorted
        .into_iter()
        .take(excess)
        .map(|(pid, _)| pid)
        .collect()
}

/// The pre-fork master. See the module documentation.
pub struct Arbiter {
    cfg: Arc<Config>,
    class: &'static WorkerClass,
    hooks: Box<dyn Hooks>,
    reload: Option<ReloadFn>,
    listeners: Vec<Listener>,
    /// With `reuse_port` the master binds nothing and each worker binds these itself.
    reuse_port_addrs: Vec<BindAddr>,
    workers: BTreeMap<i32, WorkerSlot>,
    num_workers: u64,
    worker_age: u64,
    pid: i32,
    master_name: String,
    proc_name: String,
    pidfile: Option<Pidfile>,
    /// `GUNICORN_PID`: set when this master was started by a USR2 upgrade of that master.
    parent_master: Option<i32>,
    /// The pid of the new master started by USR2, until it exits.
    reexec_pid: i32,
    /// The listeners came from systemd socket activation.
    systemd: bool,
    signals: Option<SignalQueue>,
    last_logged_count: Option<usize>,
    start_exe: Option<PathBuf>,
    start_args: Vec<OsString>,
    start_cwd: Option<PathBuf>,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("class", &self.class.name)
            .field("pid", &self.pid)
            .field("workers", &self.workers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Arbiter {
    /// Validates the configuration: the bind addresses parse, the worker user and group exist,
    /// and the worker class accepts the settings (it builds one worker and drops it, so a bad
    /// setting is reported before anything is forked).
    pub fn new(
        cfg: Config,
        class: &'static WorkerClass,
        hooks: Box<dyn Hooks>,
    ) -> Result<Arbiter, ArbiterError> {
        let addrs = bind::parse_all(&cfg)?;
        process::worker_ids(&cfg).map_err(ArbiterError::Config)?;
        if let Some(dir) = &cfg.worker_tmp_dir {
            if !Path::new(dir).is_dir() {
                // gunicorn's WorkerTmp: "%s doesn't exist. Can't create workertmp."
                return Err(ArbiterError::Config(format!(
                    "{dir} doesn't exist. Can't create workertmp."
                )));
            }
        }
        drop((class.build)(&cfg)?);
        let proc_name = process::proc_name(&cfg);
        Ok(Arbiter {
            num_workers: cfg.workers,
            reuse_port_addrs: if cfg.reuse_port { addrs } else { Vec::new() },
            cfg: Arc::new(cfg),
            class,
            hooks,
            reload: None,
            listeners: Vec::new(),
            workers: BTreeMap::new(),
            worker_age: 0,
            pid: std::process::id() as i32,
            master_name: "Master".into(),
            proc_name,
            pidfile: None,
            parent_master: None,
            reexec_pid: 0,
            systemd: false,
            signals: None,
            last_logged_count: None,
            start_exe: std::env::current_exe().ok(),
            start_args: std::env::args_os().collect(),
            start_cwd: std::env::current_dir().ok(),
        })
    }

    /// A handle to control this master (reload, incr, decr, stop...) from another thread or
    /// process. With `--daemon` the pid changes when `run` detaches: use
    /// [`crate::ArbiterHandle::from_pidfile`] then.
    pub fn handle(&self) -> crate::ArbiterHandle {
        crate::ArbiterHandle::from_pid(self.pid)
    }

    /// Sets how HUP reloads the configuration: the callback re-reads the config file, the
    /// environment and the command line and returns the new [`Config`] (the CLI passes its own
    /// loader). An error is logged and the old configuration is kept. Without a callback, HUP
    /// keeps the configuration and only replaces the workers.
    pub fn on_reload(&mut self, reload: ReloadFn) {
        self.reload = Some(reload);
    }

    /// Runs the master until it halts; returns the process exit status: 0 after TERM/INT/QUIT,
    /// 1 for a bind or pidfile failure, 3 when a worker failed to boot, 4 when the application
    /// failed to load.
    pub fn run(mut self) -> i32 {
        if self.cfg.daemon && std::env::var_os("GUNICORN_FD").is_none() {
            if let Err(e) = self.daemonize() {
                log_error!("cannot daemonize: {e}");
                return 1;
            }
        }
        if let Err(status) = self.start() {
            return status;
        }
        log_debug!("Arbiter booted");
        match self.main_loop() {
            Ok(()) => self.halt(None),
            Err(h) => self.halt(Some(h)),
        }
    }

    /// gunicorn's `util.daemonize`: fork, new session, fork again (so the daemon can never
    /// reacquire a terminal), umask 022, stdin from /dev/null and, unless
    /// `enable_stdio_inheritance`, stdout and stderr to /dev/null too. The forks are bracketed by
    /// the fork hooks, since an interpreter may already be initialized.
    fn daemonize(&mut self) -> Result<(), String> {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            log_warning!("NOTIFY_SOCKET is set: systemd units should not use --daemon");
        }
        for round in 0..2 {
            self.hooks.before_fork();
            match sys::fork().map_err(|e| e.to_string())? {
                // The intermediate processes leave without running any exit handler or
                // flushing buffers the daemon still owns.
                Forked::Parent(_) => sys::exit_immediately(0),
                Forked::Child => self.hooks.after_fork_child(),
            }
            if round == 0 {
                nix::unistd::setsid().map_err(|e| e.to_string())?;
            }
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| e.to_string())?;
        nix::unistd::dup2_stdin(&null).map_err(|e| e.to_string())?;
        if !self.cfg.enable_stdio_inheritance {
            nix::unistd::dup2_stdout(&null).map_err(|e| e.to_string())?;
            nix::unistd::dup2_stderr(&null).map_err(|e| e.to_string())?;
        }
        self.pid = std::process::id() as i32;
        Ok(())
    }

    fn start(&mut self) -> Result<(), i32> {
        log_info!("Starting gunicorn {}", crate::VERSION);
        if let Some(old) = std::env::var("GUNICORN_PID")
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
        {
            self.parent_master = Some(old);
            self.master_name = "Master.2".into();
            self.proc_name = format!("{}.2", self.proc_name);
        }
        if let Err(e) = self.create_pidfile() {
            log_error!("{e}");
            return Err(1);
        }
        self.hooks.on_starting();
        match SignalQueue::install() {
            Ok(q) => self.signals = Some(q),
            Err(e) => {
                log_error!("cannot install signal handlers: {e}");
                self.unlink_pidfile();
                return Err(1);
            }
        }
        if let Err(msg) = self.open_listeners() {
            log_error!("{msg}");
            self.unlink_pidfile();
            return Err(1);
        }
        log_info!(
            "Listening at: {} ({})",
            self.listener_urls().join(","),
            self.pid
        );
        log_info!("Using worker: {}", self.class.name);
        if let Err(e) = process::sd_notify("READY=1\nSTATUS=Gunicorn arbiter booted") {
            log_debug!("Exception while invoking sd_notify(): {e}");
        }
        self.hooks.when_ready();
        process::set_title("master", &self.proc_name);
        self.hooks.nworkers_changed(self.num_workers, None);
        Ok(())
    }

    fn pidfile_path(&self) -> Option<PathBuf> {
        let base = self.cfg.pidfile.as_ref()?;
        Some(if self.parent_master.is_some() {
            PathBuf::from(format!("{base}.2"))
        } else {
            PathBuf::from(base)
        })
    }

    fn create_pidfile(&mut self) -> Result<(), process::PidfileError> {
        self.pidfile = match self.pidfile_path() {
            Some(p) => Some(Pidfile::create(&p, self.pid)?),
            None => None,
        };
        Ok(())
    }

    fn unlink_pidfile(&mut self) {
        if let Some(p) = self.pidfile.take() {
            p.unlink();
        }
    }

    /// systemd's fds, then `GUNICORN_FD` from a USR2 parent, then the configured addresses.
    fn open_listeners(&mut self) -> Result<(), String> {
        if let Some(n) = process::take_listen_fds() {
            self.systemd = true;
            for fd in 3..3 + n {
                let l = bind::listener_from_fd(fd).map_err(|e| format!("LISTEN_FDS: {e}"))?;
                self.listeners.push(l);
            }
            return Ok(());
        }
        if let Ok(fds) = std::env::var("GUNICORN_FD") {
            std::env::remove_var("GUNICORN_FD");
            // The sockets came from systemd through the old master: they are still systemd's
            // to remove, not ours (gunicorn passes LISTEN_FDS again for the same effect).
            if std::env::var_os("GUNICORN_SYSTEMD").is_some() {
                std::env::remove_var("GUNICORN_SYSTEMD");
                self.systemd = true;
            }
            for part in fds.split(',').filter(|p| !p.trim().is_empty()) {
                let fd: i32 = part
                    .trim()
                    .parse()
                    .map_err(|_| format!("GUNICORN_FD: '{part}' is not a file descriptor"))?;
                let l = bind::listener_from_fd(fd).map_err(|e| format!("GUNICORN_FD: {e}"))?;
                self.listeners.push(l);
            }
            return Ok(());
        }
        if self.cfg.reuse_port {
            // gunicorn 24: with reuse_port every worker binds its own sockets after fork.
            return Ok(());
        }
        self.listeners = bind::bind_all(&self.cfg).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn listener_urls(&self) -> Vec<String> {
        if !self.listeners.is_empty() {
            return self.listeners.iter().map(Listener::url).collect();
        }
        self.reuse_port_addrs
            .iter()
            .map(|a| match a {
                BindAddr::Tcp { host, port } if host.contains(':') => {
                    format!("http://[{host}]:{port}")
                }
                BindAddr::Tcp { host, port } => format!("http://{host}:{port}"),
                BindAddr::Unix(p) => format!("unix:{}", p.display()),
                BindAddr::Fd(n) => format!("fd://{n}"),
            })
            .collect()
    }

    fn main_loop(&mut self) -> Result<(), Halt> {
        self.manage_workers()?;
        loop {
            self.maybe_promote_master();
            let queued = match &self.signals {
                Some(q) => q.wait(Duration::from_secs(1)),
                None => Vec::new(),
            };
            for sig in queued {
                if sig == Signal::SIGCHLD {
                    // Reaping happens below, after every wake-up.
                    continue;
                }
                log_info!("Handling signal: {}", signal_name(sig));
                match sig {
                    Signal::SIGTERM => return Ok(()),
                    Signal::SIGINT | Signal::SIGQUIT => {
                        self.stop(false);
                        return Ok(());
                    }
                    Signal::SIGHUP => self.reload()?,
                    Signal::SIGTTIN => self.set_num_workers(self.num_workers + 1),
                    Signal::SIGTTOU if self.num_workers > 1 => {
                        self.set_num_workers(self.num_workers - 1)
                    }
                    Signal::SIGUSR1 => {
                        if let Err(e) = crate::log::reopen() {
                            log_error!("cannot reopen the log file: {e}");
                        }
                        self.kill_workers(Signal::SIGUSR1);
                    }
                    Signal::SIGUSR2 => self.reexec(),
                    Signal::SIGWINCH if self.cfg.daemon => {
                        // Step 2 of a binary upgrade: the old daemon stops its workers but
                        // keeps running, so a HUP can bring them back (rollback).
                        log_info!("graceful stop of workers");
                        self.set_num_workers(0);
                        self.kill_workers(Signal::SIGTERM);
                    }
                    Signal::SIGWINCH => log_debug!("SIGWINCH ignored. Not daemonized"),
                    _ => {}
                }
                self.manage_workers()?;
            }
            self.reap_workers()?;
            self.murder_workers();
            self.manage_workers()?;
        }
    }

    fn set_num_workers(&mut self, n: u64) {
        let old = self.num_workers;
        self.num_workers = n;
        self.hooks.nworkers_changed(n, Some(old));
    }

    /// Stops everything and returns the exit status (gunicorn's `halt`).
    fn halt(&mut self, halt: Option<Halt>) -> i32 {
        self.stop(true);
        let (reason, status) = match halt {
            Some(h) => (h.reason, h.status),
            None => (None, 0),
        };
        let level = if status == 0 {
            crate::log::Level::Info
        } else {
            crate::log::Level::Error
        };
        crate::log::log(level, format_args!("Shutting down: {}", self.master_name));
        if let Some(r) = reason {
            crate::log::log(level, format_args!("Reason: {r}"));
        }
        self.unlink_pidfile();
        self.hooks.on_exit();
        status
    }

    /// Closes the listeners, asks the workers to stop (TERM when graceful, QUIT otherwise),
    /// waits up to `graceful_timeout` for them, then SIGKILLs the rest. An INT or QUIT arriving
    /// during a graceful stop switches to a quick one with two seconds left, as gunicorn does.
    fn stop(&mut self, graceful: bool) {
        let unlink = self.reexec_pid == 0
            && self.parent_master.is_none()
            && !self.systemd
            && !self.cfg.reuse_port;
        for l in self.listeners.drain(..) {
            if let (true, Listener::Unix { path, .. }) = (unlink, &l) {
                let _ = std::fs::remove_file(path);
            }
        }
        let mut sig = if graceful {
            Signal::SIGTERM
        } else {
            Signal::SIGQUIT
        };
        let mut limit = Instant::now() + Duration::from_secs(self.cfg.graceful_timeout);
        self.kill_workers(sig);
        while !self.workers.is_empty() && Instant::now() < limit {
            let queued = match &self.signals {
                Some(q) => q.wait(Duration::from_millis(100)),
                None => {
                    std::thread::sleep(Duration::from_millis(100));
                    Vec::new()
                }
            };
            let quick = queued
                .iter()
                .any(|s| matches!(s, Signal::SIGINT | Signal::SIGQUIT));
            if quick && sig == Signal::SIGTERM {
                sig = Signal::SIGQUIT;
                limit = limit.min(Instant::now() + Duration::from_secs(2));
                self.kill_workers(sig);
            }
            let _ = self.reap_workers();
        }
        self.kill_workers(Signal::SIGKILL);
        // SIGKILL is not ignorable: wait briefly so no zombie outlives the master.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.workers.is_empty() && Instant::now() < deadline {
            let _ = self.reap_workers();
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill_workers(&mut self, sig: Signal) {
        let pids: Vec<i32> = self.workers.keys().copied().collect();
        for pid in pids {
            self.kill_worker(pid, sig);
        }
    }

    fn kill_worker(&mut self, pid: i32, sig: Signal) {
        if let Err(nix::Error::ESRCH) = kill(Pid::from_raw(pid), sig) {
            // Already gone and reaped elsewhere: forget it.
            self.workers.remove(&pid);
        }
    }

    fn reap_workers(&mut self) -> Result<(), Halt> {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(()),
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    log_debug!("waitpid: {e}");
                    return Ok(());
                }
                Ok(s) => s,
            };
            let Some(pid) = status.pid().map(Pid::as_raw) else {
                continue;
            };
            if pid == self.reexec_pid {
                self.reexec_pid = 0;
                continue;
            }
            if self.workers.remove(&pid).is_none() {
                log_debug!("Reaped unknown child {pid}");
                continue;
            }
            let report = classify_exit(pid, status);
            if let Some((level, line)) = &report.log {
                crate::log::log(*level, format_args!("{line}"));
            }
            self.hooks.child_exit(pid);
            if let Some((reason, status)) = report.halt {
                return Err(Halt::new(reason, status));
            }
        }
    }

    /// Kills workers whose heartbeat is older than `timeout`: SIGABRT first, SIGKILL if still
    /// silent on the next tick. `timeout = 0` disables this.
    fn murder_workers(&mut self) {
        if self.cfg.timeout == 0 {
            return;
        }
        let timeout = Duration::from_secs(self.cfg.timeout);
        let stale: Vec<(i32, bool)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.heartbeat.silent_for() > timeout)
            .map(|(pid, w)| (*pid, w.aborted))
            .collect();
        for (pid, aborted) in stale {
            if aborted {
                self.kill_worker(pid, Signal::SIGKILL);
            } else {
                log_critical!("WORKER TIMEOUT (pid:{pid})");
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.aborted = true;
                }
                self.kill_worker(pid, Signal::SIGABRT);
            }
        }
    }

    /// Spawns missing workers and retires the oldest extra ones.
    fn manage_workers(&mut self) -> Result<(), Halt> {
        let live: Vec<(i32, u64)> = self
            .workers
            .iter()
            .filter(|(_, w)| !w.retiring)
            .map(|(pid, w)| (*pid, w.age))
            .collect();
        if (self.workers.len() as u64) < self.num_workers {
            for _ in self.workers.len() as u64..self.num_workers {
                self.spawn_worker()?;
            }
        }
        for pid in workers_to_retire(&live, self.num_workers) {
            if let Some(w) = self.workers.get_mut(&pid) {
                w.retiring = true;
            }
            self.kill_worker(pid, Signal::SIGTERM);
        }
        let count = self.workers.len();
        if self.last_logged_count != Some(count) {
            self.last_logged_count = Some(count);
            log_debug!("{count} workers");
        }
        Ok(())
    }

    fn spawn_worker(&mut self) -> Result<(), Halt> {
        self.worker_age += 1;
        let age = self.worker_age;
        let worker = match (self.class.build)(&self.cfg) {
            Ok(w) => w,
            Err(e) => {
                log_error!("{e}");
                return Err(Halt::new("Worker failed to build.", 1));
            }
        };
        let heartbeat = match self.create_heartbeat() {
            Ok(h) => h,
            Err(e) => {
                log_error!("cannot create the worker heartbeat file: {e}");
                return Err(Halt::new("Worker failed to boot.", WORKER_BOOT_ERROR));
            }
        };
        self.hooks.pre_fork(age);
        self.hooks.before_fork();
        // Signals are blocked across the fork: a TERM or QUIT sent to the new worker before it
        // has its own handlers stays pending instead of running the inherited master handler
        // (which would write to the master's pipe and be lost for the worker).
        let old_mask = block_all_signals();
        let forked = sys::fork();
        if !matches!(forked, Ok(Forked::Child)) {
            restore_signal_mask(&old_mask);
        }
        match forked {
            Ok(Forked::Parent(pid)) => {
                self.hooks.after_fork_parent(pid);
                self.workers.insert(
                    pid,
                    WorkerSlot {
                        age,
                        heartbeat,
                        aborted: false,
                        retiring: false,
                    },
                );
                Ok(())
            }
            Ok(Forked::Child) => self.run_child(worker, heartbeat, age, old_mask),
            Err(e) => {
                self.hooks.after_fork_parent(-1);
                log_error!("fork failed: {e}");
                Ok(())
            }
        }
    }

    fn create_heartbeat(&self) -> std::io::Result<Heartbeat> {
        let dir = self.cfg.worker_tmp_dir.as_deref().map(Path::new);
        let mask = nix::sys::stat::Mode::from_bits_truncate(self.cfg.umask.0);
        let old = nix::sys::stat::umask(mask);
        let hb = Heartbeat::create(dir);
        nix::sys::stat::umask(old);
        let hb = hb?;
        if let Ok(Some((uid, gid))) = process::worker_ids(&self.cfg) {
            hb.chown(uid, gid)?;
        }
        Ok(hb)
    }

    /// The forked child: becomes the worker and never returns.
    fn run_child(
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
            Err(msg) => {
                log_error!("Exception in worker process\n{msg}");
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
    ) -> Result<(Vec<Listener>, Shutdown, OwnedFd), String> {
        let listeners = if self.cfg.reuse_port && self.listeners.is_empty() {
            bind::bind_all(&self.cfg).map_err(|e| e.to_string())?
        } else {
            std::mem::take(&mut self.listeners)
        };
        process::drop_privileges(&self.cfg)?;
        let shutdown = Shutdown::new().map_err(|e| e.to_string())?;
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| e.to_string())?;
        sys::install_worker_handlers(
            &shutdown,
            write.as_raw_fd(),
            &[Signal::SIGUSR1, Signal::SIGABRT],
        )
        .map_err(|e| e.to_string())?;
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
            .map_err(|e| e.to_string())?;
        Ok((listeners, shutdown, write))
    }

    /// HUP: reload the configuration, start a new generation of workers, retire the old one.
    fn reload(&mut self) -> Result<(), Halt> {
        log_info!("Hang up: {}", self.master_name);
        let new_cfg = match self.reload.as_mut() {
            Some(f) => match f() {
                Ok(c) => Some(c),
                Err(e) => {
                    log_error!("Error reloading the configuration: {e}");
                    None
                }
            },
            None => None,
        };
        if let Some(cfg) = new_cfg {
            if let Err(e) = (self.class.build)(&cfg) {
                log_error!("Error reloading the configuration: {e}");
            } else {
                let old_bind = self.cfg.bind.clone();
                self.cfg = Arc::new(cfg);
                if let Err(e) = crate::log::init(&self.cfg.loglevel, &self.cfg.errorlog) {
                    log_error!("{e}");
                }
                if old_bind != self.cfg.bind && !self.systemd {
                    self.rebind()?;
                }
            }
        }
        if let Err(e) = crate::log::reopen() {
            log_error!("cannot reopen the log file: {e}");
        }
        self.hooks.on_reload();
        self.unlink_pidfile();
        if let Err(e) = self.create_pidfile() {
            log_error!("{e}");
        }
        self.proc_name = process::proc_name(&self.cfg);
        process::set_title("master", &self.proc_name);
        if self.cfg.workers != self.num_workers {
            self.set_num_workers(self.cfg.workers);
        }
        for w in self.workers.values_mut() {
            // The whole old generation goes once the new one is up.
            w.retiring = false;
        }
        for _ in 0..self.cfg.workers {
            self.spawn_worker()?;
        }
        self.manage_workers()
    }

    fn rebind(&mut self) -> Result<(), Halt> {
        self.listeners.clear();
        self.reuse_port_addrs.clear();
        if self.cfg.reuse_port {
            self.reuse_port_addrs =
                bind::parse_all(&self.cfg).map_err(|e| Halt::new(&e.to_string(), 1))?;
        } else {
            self.listeners = bind::bind_all(&self.cfg).map_err(|e| {
                log_error!("{e}");
                Halt::new(&e.to_string(), 1)
            })?;
        }
        log_info!("Listening at: {}", self.listener_urls().join(","));
        Ok(())
    }

    /// USR2: start a new master from the same binary and arguments, handing it the listeners
    /// in `GUNICORN_FD` and this pid in `GUNICORN_PID`.
    fn reexec(&mut self) {
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
    fn maybe_promote_master(&mut self) {
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

/// Blocks every signal in this (single) thread, returning the previous mask.
fn block_all_signals() -> SigSet {
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
    old
}

fn restore_signal_mask(old: &SigSet) {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Level;

    #[test]
    fn exits_are_classified_like_gunicorn() {
        let p = Pid::from_raw(42);
        type Case = (
            WaitStatus,
            Option<(Level, &'static str)>,
            Option<(&'static str, i32)>,
        );
        let cases: Vec<Case> = vec![
            (WaitStatus::Exited(p, 0), None, None),
            (
                WaitStatus::Exited(p, 1),
                Some((Level::Error, "Worker (pid:42) exited with code 1.")),
                None,
            ),
            (
                WaitStatus::Exited(p, 3),
                Some((Level::Error, "Worker (pid:42) exited with code 3.")),
                Some(("Worker failed to boot.", 3)),
            ),
            (
                WaitStatus::Exited(p, 4),
                Some((Level::Error, "Worker (pid:42) exited with code 4.")),
                Some(("App failed to load.", 4)),
            ),
            (
                WaitStatus::Signaled(p, Signal::SIGKILL, false),
                Some((
                    Level::Error,
                    "Worker (pid:42) was sent SIGKILL! Perhaps out of memory?",
                )),
                None,
            ),
            (
                WaitStatus::Signaled(p, Signal::SIGTERM, false),
                Some((Level::Info, "Worker (pid:42) was sent SIGTERM!")),
                None,
            ),
            (
                WaitStatus::Signaled(p, Signal::SIGSEGV, true),
                Some((Level::Warning, "Worker (pid:42) was sent SIGSEGV!")),
                None,
            ),
        ];
        for (status, log, halt) in cases {
            let r = classify_exit(42, status);
            assert_eq!(
                r.log.as_ref().map(|(l, s)| (*l, s.as_str())),
                log,
                "{status:?}"
            );
            assert_eq!(r.halt, halt, "{status:?}");
        }
    }

    #[test]
    fn the_oldest_workers_are_retired_first() {
        let live = [(10, 3), (11, 1), (12, 2), (13, 4)];
        let cases: &[(u64, &[i32])] = &[
            (4, &[]),
            (5, &[]),
            (3, &[11]),
            (2, &[11, 12]),
            (1, &[11, 12, 10]),
        ];
        for (wanted, want) in cases {
            assert_eq!(workers_to_retire(&live, *wanted), *want, "{wanted}");
        }
    }
}
