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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::bind::{self, BindAddr};
use crate::config::Config;
use crate::heartbeat::Heartbeat;
use crate::hooks::Hooks;
use crate::listener::Listener;
use crate::process::{self, Pidfile};
use crate::registry::WorkerClass;
use crate::signals::{signal_name, SignalQueue};
use crate::sys::{self, Forked};
use crate::{log_critical, log_debug, log_error, log_info, log_warning};

mod child;
pub mod control;
mod decisions;
mod exit_status;
mod sidecar;
mod sidecar_spawn;
mod signal_mask;
mod upgrade;

pub use decisions::{classify_exit, workers_to_retire, ExitReport};
pub use exit_status::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};
pub use sidecar::Sidecar;

/// How the master loop reloads its configuration on HUP. The callback is the embedder's code
/// and fails in its own libraries' ways; the arbiter only logs the error and keeps the old
/// configuration, so any error type is taken (with `?`, a `String` too).
pub type ReloadFn = Box<dyn FnMut() -> Result<Config, Box<dyn std::error::Error>>>;

/// The arbiter could not be set up; the caller logs it and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum ArbiterError {
    /// The worker class refused the configuration.
    #[error("{0}")]
    Build(#[from] crate::worker::BuildError),
    /// A `bind` value is malformed.
    #[error("{0}")]
    Bind(#[from] bind::BindError),
    /// The worker user or group does not exist.
    #[error("{0}")]
    Privileges(#[from] process::PrivilegeError),
    /// `worker_tmp_dir` is not a directory (gunicorn's `WorkerTmp`).
    #[error("{0} doesn't exist. Can't create workertmp.")]
    WorkerTmpDir(String),
    /// `--daemon`: a fork, or opening `/dev/null`, failed.
    #[error("{0}")]
    DaemonizeIo(#[source] std::io::Error),
    /// `--daemon`: `setsid` or redirecting the standard streams failed.
    #[error("{0}")]
    DaemonizeSys(#[source] nix::Error),
    /// A socket systemd passed (`LISTEN_FDS`) is unusable.
    #[error("LISTEN_FDS: {0}")]
    SystemdFd(#[source] std::io::Error),
    /// `GUNICORN_FD`, from the master that re-executed us (USR2), holds something else than
    /// descriptor numbers.
    #[error("GUNICORN_FD: '{0}' is not a file descriptor")]
    NotAnFd(String),
    /// A socket the old master passed (`GUNICORN_FD`) is unusable.
    #[error("GUNICORN_FD: {0}")]
    InheritedFd(#[source] std::io::Error),
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
    /// An error escaped the main loop (gunicorn's `except Exception` in `run`): no graceful
    /// halt, no `on_exit`.
    crash: bool,
}

impl Halt {
    fn new(reason: &str, status: i32) -> Halt {
        Halt {
            reason: Some(reason.to_string()),
            status,
            crash: false,
        }
    }

    /// A hook failed fatally ([`Hooks::take_failure`]); `message` is logged.
    fn crash(message: String) -> Halt {
        Halt {
            reason: Some(message),
            status: 255,
            crash: true,
        }
    }
}

/// The master's record of one worker.
#[derive(Debug)]
struct WorkerSlot {
    age: u64,
    /// When it was forked (`show workers` tells whether it has beaten since).
    spawned: Instant,
    heartbeat: Heartbeat,
    state: SlotState,
}

/// Where the master is with one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Serving, and counted as one of the wanted workers.
    Live,
    /// Sent SIGTERM to retire it (TTOU, HUP's old generation): not counted as a live worker.
    Retiring,
    /// Sent SIGABRT for a timeout: SIGKILL follows if it is still silent on the next tick.
    /// `retiring`: it was being retired (and still does not count as live).
    Aborted { retiring: bool },
}

impl SlotState {
    fn is_retiring(self) -> bool {
        matches!(
            self,
            SlotState::Retiring | SlotState::Aborted { retiring: true }
        )
    }

    fn aborted(self) -> SlotState {
        SlotState::Aborted {
            retiring: self.is_retiring(),
        }
    }

    fn retired(self) -> SlotState {
        match self {
            SlotState::Live | SlotState::Retiring => SlotState::Retiring,
            SlotState::Aborted { .. } => SlotState::Aborted { retiring: true },
        }
    }

    /// Counted as live again (HUP: the old generation goes once the new one is up).
    fn kept(self) -> SlotState {
        match self {
            SlotState::Live | SlotState::Retiring => SlotState::Live,
            SlotState::Aborted { .. } => SlotState::Aborted { retiring: false },
        }
    }
}

/// The worker class as gunicorn's `Using worker:` line names it (its `worker_class_str`): as
/// the user gave it when that name is the class running (`uvicorn.workers.UvicornWorker`,
/// `egg:gunicorn#gevent`), `gthread` for the sync worker with more than one thread, and the
/// running class's own name otherwise (a program that embeds the arbiter with a class of its
/// own). `named` is the class the configured name resolves to, if any.
fn worker_class_str(cfg: &Config, running: &str, named: Option<&str>) -> String {
    let uri = cfg.worker_class.as_str();
    let sync = uri == "sync" || uri.ends_with("SyncWorker");
    if sync && cfg.threads > 1 && running == "gthread" {
        return "gthread".into();
    }
    if named == Some(running) {
        uri.into()
    } else {
        running.into()
    }
}

/// The addresses each worker binds itself: the TCP ones when `reuse_port` is on, else none.
fn per_worker_addrs(cfg: &Config, addrs: Vec<BindAddr>) -> Vec<BindAddr> {
    if !cfg.reuse_port {
        return Vec::new();
    }
    addrs
        .into_iter()
        .filter(|a| matches!(a, BindAddr::Tcp { .. }))
        .collect()
}

/// The `gunicorn.backlog` value (`--enable-backlog-metric`): connections waiting in the TCP
/// listeners' accept queues, summed, or `None` when no listener can tell (no TCP listener, or not
/// Linux). A listener whose TCP_INFO cannot be read counts 0, as gunicorn's `get_backlog() or 0`.
/// Unix listeners are left out of the sum (gunicorn adds their -1 "unsupported" to it).
fn listen_backlog(listeners: &[Listener]) -> Option<u64> {
    use std::os::fd::AsFd;
    let tcp: Vec<_> = listeners
        .iter()
        .filter_map(|l| match l {
            Listener::Tcp(t) => Some(t),
            Listener::Unix { .. } => None,
        })
        .collect();
    if !cfg!(target_os = "linux") || tcp.is_empty() {
        return None;
    }
    let queued =
        |t: &&std::net::TcpListener| sys::tcp_listen_backlog(t.as_fd()).map_or(0, u64::from);
    Some(tcp.iter().map(queued).sum())
}

/// The pre-fork master. See the module documentation.
pub struct Arbiter {
    cfg: Arc<Config>,
    class: &'static WorkerClass,
    hooks: Box<dyn Hooks>,
    reload: Option<ReloadFn>,
    listeners: Vec<Listener>,
    /// With `reuse_port` each worker binds these TCP addresses itself, after the fork; unix and
    /// `fd://` addresses stay with the master (SO_REUSEPORT does not apply to them, and a second
    /// bind of a unix path would replace the first worker's socket).
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
    /// The control socket and the counters it reports.
    control: control::Control,
    /// Supervised side processes (the dirty arbiter), see [`Sidecar`].
    sidecars: Vec<sidecar::SidecarSlot>,
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
        process::worker_ids(&cfg)?;
        if let Some(dir) = &cfg.worker_tmp_dir {
            if !Path::new(dir).is_dir() {
                return Err(ArbiterError::WorkerTmpDir(dir.clone()));
            }
        }
        drop((class.build)(&cfg)?);
        let proc_name = process::proc_name(&cfg);
        Ok(Arbiter {
            num_workers: cfg.workers,
            reuse_port_addrs: per_worker_addrs(&cfg, addrs),
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
            // Captured here, before `start()` first calls `process::set_title`: that overwrites
            // the argv strings, and `args_os()` reads them lazily, so later it returns the title.
            start_args: std::env::args_os().collect(),
            start_cwd: std::env::current_dir().ok(),
            control: control::Control::new(),
            sidecars: Vec::new(),
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
            Err(h) if h.crash => {
                // gunicorn: "Unhandled exception in main loop", stop(False), unlink the
                // pidfile, sys.exit(-1); no halt, so no on_exit.
                log_error!(
                    "Unhandled exception in main loop\n{}",
                    h.reason.unwrap_or_default().trim_end()
                );
                self.stop(false);
                self.unlink_pidfile();
                255
            }
            Err(h) => self.halt(Some(h)),
        }
    }

    /// gunicorn's `util.daemonize`: fork, new session, fork again (so the daemon can never
    /// reacquire a terminal), umask 022, stdin from /dev/null and, unless
    /// `enable_stdio_inheritance`, stdout and stderr to /dev/null too. The forks are bracketed by
    /// the fork hooks, since an interpreter may already be initialized.
    fn daemonize(&mut self) -> Result<(), ArbiterError> {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            log_warning!("NOTIFY_SOCKET is set: systemd units should not use --daemon");
        }
        for round in 0..2 {
            self.hooks.before_fork();
            match sys::fork().map_err(ArbiterError::DaemonizeIo)? {
                // The intermediate processes leave without running any exit handler or
                // flushing buffers the daemon still owns.
                Forked::Parent(_) => sys::exit_immediately(0),
                Forked::Child => self.hooks.after_fork_child(),
            }
            if round == 0 {
                nix::unistd::setsid().map_err(ArbiterError::DaemonizeSys)?;
            }
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(ArbiterError::DaemonizeIo)?;
        nix::unistd::dup2_stdin(&null).map_err(ArbiterError::DaemonizeSys)?;
        if !self.cfg.enable_stdio_inheritance {
            nix::unistd::dup2_stdout(&null).map_err(ArbiterError::DaemonizeSys)?;
            nix::unistd::dup2_stderr(&null).map_err(ArbiterError::DaemonizeSys)?;
        }
        self.pid = std::process::id() as i32;
        Ok(())
    }

    fn start(&mut self) -> Result<(), i32> {
        log_info!("Starting gunicorn {}", crate::version::VERSION);
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
        if let Ok(Some((uid, gid))) = process::worker_ids(&self.cfg) {
            if let Err(e) = crate::log::chown(uid, gid) {
                log_warning!("cannot give the error log to the worker user: {e}");
            }
        }
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
        let named = crate::registry::lookup(&self.cfg.worker_class).map(|c| c.name);
        log_info!(
            "Using worker: {}",
            worker_class_str(&self.cfg, self.class.name, named)
        );
        self.spawn_sidecars(false);
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
    fn open_listeners(&mut self) -> Result<(), ArbiterError> {
        if let Some(n) = process::take_listen_fds() {
            self.systemd = true;
            for fd in 3..3 + n {
                let l = bind::listener_from_fd(fd).map_err(ArbiterError::SystemdFd)?;
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
                    .map_err(|_| ArbiterError::NotAnFd(part.to_string()))?;
                let l = bind::listener_from_fd(fd).map_err(ArbiterError::InheritedFd)?;
                self.listeners.push(l);
            }
            return Ok(());
        }
        Ok(self.bind_configured()?)
    }

    /// Binds the configured addresses, except those each worker binds itself under
    /// `reuse_port` (gunicorn 24: with reuse_port the workers bind after the fork).
    fn bind_configured(&mut self) -> Result<(), bind::BindError> {
        let addrs = bind::parse_all(&self.cfg)?;
        self.reuse_port_addrs = per_worker_addrs(&self.cfg, addrs.clone());
        let in_master: Vec<BindAddr> = addrs
            .into_iter()
            .filter(|a| !self.reuse_port_addrs.contains(a))
            .collect();
        self.listeners =
            bind::bind_with_retries(&in_master, &bind::BindOptions::from_config(&self.cfg))?;
        Ok(())
    }

    fn listener_urls(&self) -> Vec<String> {
        let bound = self.listeners.iter().map(Listener::url);
        let per_worker = self.reuse_port_addrs.iter().map(|a| match a {
            BindAddr::Tcp { host, port } if host.contains(':') => {
                format!("http://[{host}]:{port}")
            }
            BindAddr::Tcp { host, port } => format!("http://{host}:{port}"),
            BindAddr::Unix(p) => format!("unix:{}", p.display()),
            BindAddr::Fd(n) => format!("fd://{n}"),
        });
        // gunicorn's TCP sockets print themselves as https:// once TLS is on (`is_ssl`).
        let tls = self.cfg.certfile.is_some() || self.cfg.keyfile.is_some();
        bound
            .chain(per_worker)
            .map(|url| match url.strip_prefix("http://") {
                Some(rest) if tls => format!("https://{rest}"),
                _ => url,
            })
            .collect()
    }

    fn main_loop(&mut self) -> Result<(), Halt> {
        self.manage_workers()?;
        self.hook_failure()?;
        self.start_control();
        loop {
            self.maybe_promote_master();
            let queued = self.wait_for_events(Duration::from_secs(1));
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
                    Signal::SIGHUP => {
                        self.signal_sidecars(Signal::SIGHUP);
                        self.reload()?
                    }
                    Signal::SIGTTIN => self.set_num_workers(self.num_workers + 1),
                    Signal::SIGTTOU if self.num_workers > 1 => {
                        self.set_num_workers(self.num_workers - 1)
                    }
                    Signal::SIGUSR1 => {
                        if let Err(e) = crate::log::reopen() {
                            log_error!("cannot reopen the log file: {e}");
                        }
                        self.kill_workers(Signal::SIGUSR1);
                        self.signal_sidecars(Signal::SIGUSR1);
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
                self.hook_failure()?;
                self.manage_workers()?;
                self.hook_failure()?;
            }
            self.reap_workers()?;
            self.hook_failure()?;
            self.murder_workers();
            self.manage_workers()?;
            self.hook_failure()?;
            self.spawn_sidecars(true);
        }
    }

    /// A hook that failed the way an exception escaping gunicorn's main loop does.
    fn hook_failure(&self) -> Result<(), Halt> {
        match self.hooks.take_failure() {
            Some(message) => Err(Halt::crash(message)),
            None => Ok(()),
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
        self.close_control();
        let unlink = self.reexec_pid == 0 && self.parent_master.is_none() && !self.systemd;
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
        self.signal_sidecars(sig);
        while (!self.workers.is_empty() || self.sidecars_running()) && Instant::now() < limit {
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
                self.signal_sidecars(sig);
            }
            let _ = self.reap_workers();
        }
        self.kill_workers(Signal::SIGKILL);
        self.signal_sidecars(Signal::SIGKILL);
        // SIGKILL is not ignorable: wait briefly so no zombie outlives the master.
        let deadline = Instant::now() + Duration::from_secs(1);
        while (!self.workers.is_empty() || self.sidecars_running()) && Instant::now() < deadline {
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
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) if matches!(sig, Signal::SIGTERM | Signal::SIGKILL) => {
                self.control.stats.workers_killed += 1;
            }
            Err(nix::Error::ESRCH) => {
                // Already gone and reaped elsewhere: forget it.
                self.workers.remove(&pid);
            }
            _ => {}
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
            if self.reap_sidecar(pid, status) {
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
            .map(|(pid, w)| (*pid, matches!(w.state, SlotState::Aborted { .. })))
            .collect();
        for (pid, aborted) in stale {
            if aborted {
                self.kill_worker(pid, Signal::SIGKILL);
            } else {
                log_critical!("WORKER TIMEOUT (pid:{pid})");
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.state = w.state.aborted();
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
            .filter(|(_, w)| !w.state.is_retiring())
            .map(|(pid, w)| (*pid, w.age))
            .collect();
        if (self.workers.len() as u64) < self.num_workers {
            for _ in self.workers.len() as u64..self.num_workers {
                self.spawn_worker()?;
            }
        }
        for pid in workers_to_retire(&live, self.num_workers) {
            if let Some(w) = self.workers.get_mut(&pid) {
                w.state = w.state.retired();
            }
            self.kill_worker(pid, Signal::SIGTERM);
        }
        let count = self.workers.len();
        if self.last_logged_count != Some(count) {
            self.last_logged_count = Some(count);
            log_debug!("{count} workers");
            crate::statsd::gauge("gunicorn.workers", count);
        }
        if self.cfg.enable_backlog_metric {
            if let Some(backlog) = listen_backlog(&self.listeners) {
                log_debug!("socket backlog: {backlog}");
                crate::statsd::histogram("gunicorn.backlog", backlog);
            }
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
        let old_mask = signal_mask::block_all_signals();
        let forked = sys::fork();
        if !matches!(forked, Ok(Forked::Child)) {
            signal_mask::restore_signal_mask(&old_mask);
        }
        match forked {
            Ok(Forked::Parent(pid)) => {
                self.hooks.after_fork_parent(pid);
                self.control.stats.workers_spawned += 1;
                self.workers.insert(
                    pid,
                    WorkerSlot {
                        age,
                        spawned: Instant::now(),
                        heartbeat,
                        state: SlotState::Live,
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

    /// HUP: reload the configuration, start a new generation of workers, retire the old one.
    fn reload(&mut self) -> Result<(), Halt> {
        log_info!("Hang up: {}", self.master_name);
        self.control.stats.reloads += 1;
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
                if let Err(e) = crate::log::setup(&self.cfg) {
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
        // gunicorn's setup() assigns num_workers again, firing nworkers_changed even when the
        // count is the same.
        self.set_num_workers(self.cfg.workers);
        for w in self.workers.values_mut() {
            // The whole old generation goes once the new one is up.
            w.state = w.state.kept();
        }
        for _ in 0..self.cfg.workers {
            self.spawn_worker()?;
        }
        self.manage_workers()
    }

    fn rebind(&mut self) -> Result<(), Halt> {
        self.listeners.clear();
        self.reuse_port_addrs.clear();
        self.bind_configured().map_err(|e| {
            log_error!("{e}");
            Halt::new(&e.to_string(), 1)
        })?;
        log_info!("Listening at: {}", self.listener_urls().join(","));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::worker_class_str;
    use super::SlotState::{self, *};

    #[test]
    fn using_worker_names_the_class_as_given() {
        // (configured name, threads, the class running, what the name resolves to, the line)
        let cases = [
            ("sync", 1, "sync", Some("sync"), "sync"),
            ("sync", 4, "gthread", Some("sync"), "gthread"),
            (
                "gunicorn.workers.sync.SyncWorker",
                2,
                "gthread",
                Some("sync"),
                "gthread",
            ),
            ("gthread", 4, "gthread", Some("gthread"), "gthread"),
            (
                "uvicorn.workers.UvicornWorker",
                1,
                "asgi",
                Some("asgi"),
                "uvicorn.workers.UvicornWorker",
            ),
            (
                "egg:gunicorn#gevent",
                1,
                "gevent",
                Some("gevent"),
                "egg:gunicorn#gevent",
            ),
            // An embedding program's own class, the setting left at its default.
            ("sync", 1, "testworker", Some("sync"), "testworker"),
            ("sync", 1, "echo", None, "echo"),
        ];
        for (class, threads, running, named, want) in cases {
            let cfg = crate::Config {
                worker_class: class.into(),
                threads,
                ..crate::Config::default()
            };
            assert_eq!(
                worker_class_str(&cfg, running, named),
                want,
                "{class} x{threads}"
            );
        }
    }

    #[test]
    fn slot_states() {
        // (state, after abort, after retire, after HUP keeps it, counted as retiring)
        let cases: [(SlotState, SlotState, SlotState, SlotState, bool); 4] = [
            (Live, Aborted { retiring: false }, Retiring, Live, false),
            (Retiring, Aborted { retiring: true }, Retiring, Live, true),
            (
                Aborted { retiring: false },
                Aborted { retiring: false },
                Aborted { retiring: true },
                Aborted { retiring: false },
                false,
            ),
            (
                Aborted { retiring: true },
                Aborted { retiring: true },
                Aborted { retiring: true },
                Aborted { retiring: false },
                true,
            ),
        ];
        for (state, aborted, retired, kept, retiring) in cases {
            assert_eq!(state.aborted(), aborted, "{state:?}");
            assert_eq!(state.retired(), retired, "{state:?}");
            assert_eq!(state.kept(), kept, "{state:?}");
            assert_eq!(state.is_retiring(), retiring, "{state:?}");
        }
    }
}
