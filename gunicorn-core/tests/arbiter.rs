//! End-to-end tests of the arbiter with a tiny pure-Rust worker and no Python.
//!
//! The test binary plays two roles. Run by `cargo test`, it runs each scenario by starting a copy
//! of itself with `GUNICORN_CORE_TEST_ROLE=master`, which runs a real [`Arbiter`] (so every
//! scenario gets its own process and its own signal handlers), reads the master's log from its
//! stderr, and sends it signals. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use gunicorn_core::{
    log_info, register_worker, registry, Arbiter, ArbiterHandle, BuildError, Config, Hooks,
    NoHooks, StopKind, Value, Worker, WorkerClass, WorkerContext, WorkerError,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

// ---------------------------------------------------------------------------------------------
// The test worker: its behaviour comes from $TEST_WORKER_MODE.

struct TestWorker {
    mode: String,
}

fn build(_cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    let mode = std::env::var("TEST_WORKER_MODE").unwrap_or_else(|_| "serve".into());
    if mode == "badbuild" {
        return Err(BuildError("test worker refuses this configuration".into()));
    }
    Ok(Box::new(TestWorker { mode }))
}

register_worker!(WorkerClass::new("testworker", &["egg:test#worker"], build));

impl Worker for TestWorker {
    fn run(self: Box<Self>, ctx: WorkerContext) -> Result<(), WorkerError> {
        match self.mode.as_str() {
            "exit3" => Err(WorkerError::Boot("cannot boot".into())),
            "exit4" => Err(WorkerError::AppLoad("No module named 'nowhere'".into())),
            "hang-custom-abort" => {
                gunicorn_core::worker::set_abort_handler(Box::new(|| {
                    log_info!("abort handler ran");
                    std::process::exit(7);
                }));
                while ctx.shutdown.requested() != Some(StopKind::Quick) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(())
            }
            "ignore-term" => {
                // Heartbeats, honours only a quick stop.
                while ctx.shutdown.requested() != Some(StopKind::Quick) {
                    ctx.heartbeat.notify();
                    std::thread::sleep(Duration::from_millis(50));
                }
                log_info!("quick stop honoured");
                Ok(())
            }
            "hang" => loop {
                // Never calls heartbeat.notify(): the master must time it out.
                if ctx.shutdown.requested() == Some(StopKind::Quick) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            },
            _ => serve(ctx),
        }
    }
}

/// Answers every connection with `pid=<pid>` and closes it; heartbeats every loop.
fn serve(ctx: WorkerContext) -> Result<(), WorkerError> {
    use nix::poll::PollTimeout;
    let pid = std::process::id();
    loop {
        ctx.heartbeat.notify();
        if ctx.shutdown.requested().is_some() {
            return Ok(());
        }
        let _ = ctx.wait_readable(PollTimeout::from(200u16));
        for l in &ctx.listeners {
            while let Ok((mut s, _)) = l.accept() {
                // Read the request first, so closing does not reset the connection.
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                let groups: Vec<String> = nix::unistd::getgroups()
                    .unwrap_or_default()
                    .iter()
                    .map(|g| g.to_string())
                    .collect();
                let body = format!(
                    "uid={} gid={} groups={} pid={pid}",
                    nix::unistd::getuid(),
                    nix::unistd::getgid(),
                    groups.join(",")
                );
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    }
}

/// Hooks that log each call, to check where and in which order the arbiter calls them.
struct LoggingHooks;

impl Hooks for LoggingHooks {
    fn on_starting(&self) {
        log_info!("hook: on_starting");
    }
    fn when_ready(&self) {
        log_info!("hook: when_ready");
    }
    fn pre_fork(&self, age: u64) {
        log_info!("hook: pre_fork {age}");
    }
    fn before_fork(&self) {
        log_info!("hook: before_fork");
    }
    fn after_fork_parent(&self, child_pid: i32) {
        log_info!("hook: after_fork_parent {child_pid}");
    }
    fn after_fork_child(&self) {
        log_info!("hook: after_fork_child");
    }
    fn post_fork(&self, ctx: &WorkerContext) {
        log_info!("hook: post_fork age={} ppid={}", ctx.age, ctx.ppid);
    }
    fn worker_exit(&self, age: u64) {
        log_info!("hook: worker_exit {age}");
    }
    fn child_exit(&self, pid: i32) {
        log_info!("hook: child_exit {pid}");
    }
    fn nworkers_changed(&self, new: u64, old: Option<u64>) {
        log_info!("hook: nworkers_changed {new} {old:?}");
    }
    fn on_reload(&self) {
        log_info!("hook: on_reload");
    }
    fn on_exit(&self) {
        log_info!("hook: on_exit");
    }
}

/// The master role: settings from `$TEST_SETTINGS` (`name=value;...`), then run the arbiter.
/// Builds a test configuration from `name=value;...` (`bind` takes a comma-separated list).
fn config_from(settings: &str) -> Result<Config, String> {
    let mut cfg = Config {
        bind: vec!["127.0.0.1:0".into()],
        ..Config::default()
    };
    for pair in settings.trim().split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("not name=value: {pair}"))?;
        if k == "bind" {
            cfg.bind = v.split(',').map(str::to_string).collect();
        } else {
            cfg.set(k, Value::Str(v.to_string()))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(cfg)
}

/// The master role: settings from `$TEST_SETTINGS`, then run the arbiter. With
/// `$TEST_RELOAD_FILE`, HUP reads the new settings from that file.
fn run_master() -> ! {
    let settings = std::env::var("TEST_SETTINGS").unwrap_or_default();
    let cfg = config_from(&settings).expect("valid test settings");
    gunicorn_core::log::init(&cfg.loglevel, &cfg.errorlog).expect("log init");
    let class = registry::lookup("egg:test#worker").expect("registered");
    let hooks: Box<dyn Hooks> = if std::env::var_os("TEST_LOG_HOOKS").is_some() {
        Box::new(LoggingHooks)
    } else {
        Box::new(NoHooks)
    };
    let status = match Arbiter::new(cfg, class, hooks) {
        Ok(mut a) => {
            if let Some(path) = std::env::var_os("TEST_RELOAD_FILE") {
                a.on_reload(Box::new(move || {
                    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                    Ok(config_from(&text)?)
                }));
            }
            a.run()
        }
        Err(e) => {
            gunicorn_core::log_error!("{e}");
            e.exit_status()
        }
    };
    std::process::exit(status)
}

/// A stand-in for systemd (or any parent passing a socket): binds a socket, which becomes fd 3
/// in this fresh process, keeps it across `exec`, and re-executes itself as the master with
/// either `LISTEN_FDS`/`LISTEN_PID` (same pid after exec) or `bind=fd://N`.
fn run_standin() -> ! {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let fd = l.as_raw_fd();
    nix::fcntl::fcntl(
        &l,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .expect("clear cloexec");
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.env("GUNICORN_CORE_TEST_ROLE", "master");
    let settings = std::env::var("TEST_SETTINGS").unwrap_or_default();
    if std::env::var("TEST_PASS_FD").as_deref() == Ok("systemd") {
        assert_eq!(fd, 3, "the first socket of a fresh process is fd 3");
        cmd.env("LISTEN_FDS", "1")
            .env("LISTEN_PID", std::process::id().to_string())
            .env("TEST_SETTINGS", settings);
    } else {
        cmd.env("TEST_SETTINGS", format!("{settings};bind=fd://{fd}"));
    }
    let err = cmd.exec();
    panic!("exec failed: {err}");
}

// ---------------------------------------------------------------------------------------------
// The harness side.

struct Master {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
    /// Indices of `log` lines already returned by `wait_for`.
    matched: Vec<usize>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Master {
    fn start(settings: &str, mode: &str) -> Master {
        Self::start_with(settings, mode, &[])
    }

    fn start_with(settings: &str, mode: &str, env: &[(&str, &str)]) -> Master {
        let exe = std::env::current_exe().expect("test exe");
        Self::start_exe(&exe, settings, mode, env)
    }

    fn start_exe(
        exe: &std::path::Path,
        settings: &str,
        mode: &str,
        env: &[(&str, &str)],
    ) -> Master {
        let mut cmd = Command::new(exe);
        cmd.env("GUNICORN_CORE_TEST_ROLE", "master")
            .env("TEST_SETTINGS", settings)
            .env("TEST_WORKER_MODE", mode)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn master");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Master {
            child,
            lines: rx,
            log: Vec::new(),
            matched: Vec::new(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a log line containing `needle` not returned before, and returns it. Lines of
    /// different processes can arrive in any order, so earlier unmatched lines count too.
    fn wait_for(&mut self, needle: &str) -> Result<String, String> {
        for (i, line) in self.log.iter().enumerate() {
            if !self.matched.contains(&i) && line.contains(needle) {
                self.matched.push(i);
                return Ok(line.clone());
            }
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        self.matched.push(self.log.len() - 1);
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "no line containing {needle:?}; log so far:\n{}",
                        self.log.join("\n")
                    ))
                }
            }
        }
    }

    /// The pid in a `Booting worker with pid: N` line.
    fn next_worker(&mut self) -> Result<i32, String> {
        let line = self.wait_for("Booting worker with pid: ")?;
        line.rsplit(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad line {line}"))
    }

    /// The port from `Listening at: http://127.0.0.1:PORT (pid)`.
    fn port(&mut self) -> Result<u16, String> {
        let line = self.wait_for("Listening at: http://127.0.0.1:")?;
        let after = line.split("127.0.0.1:").nth(1).unwrap_or("");
        after
            .split(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad line {line}"))
    }

    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid()), sig);
    }

    fn wait_exit(&mut self) -> Result<i32, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().map_err(|e| e.to_string())? {
                // Collect the rest of the log for the assertions that follow.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                return st.code().ok_or_else(|| format!("killed: {st:?}"));
            }
            if Instant::now() > deadline {
                let pid = self.pid();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let wchan =
                    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
                return Err(format!(
                    "master did not exit (stat {stat:?}, wchan {wchan:?}); log:\n{}",
                    self.log.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|l| l.contains(needle))
    }

    /// Sends TERM and expects a clean exit (status 0).
    fn term_exits_0(&mut self) -> Result<(), String> {
        self.signal(Signal::SIGTERM);
        let status = self.wait_exit()?;
        check(status == 0, "TERM exits 0", self)
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn check(cond: bool, what: &str, m: &Master) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}; log:\n{}", m.log.join("\n")))
    }
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// A fresh directory `gunicorn-core-<name>-<pid>` under the temporary directory.
fn scratch_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("gunicorn-core-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Polls `done` every 50 ms until it holds or `WAIT` has passed; the caller checks the outcome.
fn poll_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

fn boots_serves_respawns_and_stops_on_term() -> Result<(), String> {
    let mut m = Master::start("workers=2", "serve");
    m.wait_for("Starting gunicorn ")?;
    let port = m.port()?;
    m.wait_for("Using worker: testworker")?;
    let a = m.next_worker()?;
    let b = m.next_worker()?;
    let body = get(port)?;
    check(
        body.ends_with(&format!("pid={a}")) || body.ends_with(&format!("pid={b}")),
        &format!("served by a worker: {body}"),
        &m,
    )?;
    let _ = kill(Pid::from_raw(a), Signal::SIGKILL);
    m.wait_for(&format!(
        "[ERROR] Worker (pid:{a}) was sent SIGKILL! Perhaps out of memory?"
    ))?;
    let c = m.next_worker()?;
    check(c != a && c != b, "a new worker replaced the killed one", &m)?;
    m.signal(Signal::SIGTERM);
    m.wait_for("[INFO] Handling signal: term")?;
    let status = m.wait_exit()?;
    check(status == 0, &format!("TERM exits 0, got {status}"), &m)?;
    check(
        m.logged("[INFO] Shutting down: Master"),
        "shutdown logged",
        &m,
    )?;
    check(
        m.logged(&format!("Worker exiting (pid: {b})")),
        "workers exit gracefully",
        &m,
    )?;
    check(!alive(b) && !alive(c), "no worker outlives the master", &m)
}

fn boot_error_halts_with_3() -> Result<(), String> {
    let mut m = Master::start("workers=2", "exit3");
    let status = m.wait_exit()?;
    check(status == 3, &format!("exit status 3, got {status}"), &m)?;
    check(m.logged("exited with code 3."), "exit code logged", &m)?;
    check(
        m.logged("[ERROR] Shutting down: Master")
            && m.logged("[ERROR] Reason: Worker failed to boot."),
        "reason logged",
        &m,
    )
}

fn app_load_error_halts_with_4() -> Result<(), String> {
    let mut m = Master::start("workers=1", "exit4");
    let status = m.wait_exit()?;
    check(status == 4, &format!("exit status 4, got {status}"), &m)?;
    check(m.logged("No module named 'nowhere'"), "error printed", &m)?;
    check(m.logged("Reason: App failed to load."), "reason logged", &m)
}

fn bad_build_exits_1_before_forking() -> Result<(), String> {
    let mut m = Master::start("workers=1", "badbuild");
    let status = m.wait_exit()?;
    check(status == 1, &format!("exit status 1, got {status}"), &m)?;
    check(
        m.logged("test worker refuses this configuration") && !m.logged("Booting worker"),
        "build error reported before any fork",
        &m,
    )
}

fn missing_worker_tmp_dir_is_a_config_error() -> Result<(), String> {
    let mut m = Master::start("worker_tmp_dir=/nonexistent/dir", "serve");
    let status = m.wait_exit()?;
    check(status == 1, &format!("exit 1, got {status}"), &m)?;
    check(
        m.logged("/nonexistent/dir doesn't exist. Can't create workertmp.")
            && !m.logged("Starting gunicorn"),
        "reported before starting",
        &m,
    )
}

/// A user that is a member of some supplementary group, from /etc/group: (user, that group's gid).
fn user_with_supplementary_group() -> Option<(String, u32)> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let member = f.get(3)?.split(',').find(|m| !m.is_empty())?;
        let gid: u32 = f.get(2)?.parse().ok()?;
        nix::unistd::User::from_name(member)
            .ok()
            .flatten()
            .filter(|u| u.gid.as_raw() != gid)
            .map(|_| (member.to_string(), gid))
    })
}

fn initgroups_loads_the_users_groups() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        println!("(skipping initgroups: not root)");
        return Ok(());
    }
    let Some((user, extra_gid)) = user_with_supplementary_group() else {
        println!("(skipping initgroups: no user with a supplementary group)");
        return Ok(());
    };
    let groups_of = |body: &str| -> Vec<String> {
        body.split("groups=")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .map(|g| g.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut with = Master::start(&format!("workers=1;user={user};initgroups=true"), "serve");
    let port = with.port()?;
    with.next_worker()?;
    let body = get(port)?;
    check(
        groups_of(&body).contains(&extra_gid.to_string()),
        &format!("--initgroups gives {user} its group {extra_gid}: {body}"),
        &with,
    )?;
    with.signal(Signal::SIGTERM);
    with.wait_exit()?;
    let mut without = Master::start(&format!("workers=1;user={user}"), "serve");
    let port = without.port()?;
    without.next_worker()?;
    let body = get(port)?;
    check(
        !groups_of(&body).contains(&extra_gid.to_string())
            && !groups_of(&body).contains(&"0".to_string()),
        &format!("without --initgroups only the user's primary group remains: {body}"),
        &without,
    )?;
    without.signal(Signal::SIGTERM);
    without.wait_exit()?;
    Ok(())
}

fn daemon_with_stdio_inheritance_keeps_stderr() -> Result<(), String> {
    let dir = scratch_dir("stdio")?;
    let pidfile = dir.join("d.pid");
    let mut m = Master::start(
        &format!(
            "workers=1;daemon=true;enable_stdio_inheritance=true;pidfile={}",
            pidfile.display()
        ),
        "serve",
    );
    // The daemon keeps our stderr pipe: its lines still arrive here.
    let line = m.wait_for("Booting worker with pid: ")?;
    check(
        !line.contains(&format!("[{}]", m.pid())),
        "logged by the daemon's worker",
        &m,
    )?;
    let daemon = ArbiterHandle::from_pidfile(&pidfile).map_err(|e| e.to_string())?;
    check(daemon.pid() != m.pid(), "detached under a new pid", &m)?;
    daemon.stop().map_err(|e| e.to_string())?;
    m.wait_for("Shutting down: Master")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn silent_worker_is_killed_at_the_timeout() -> Result<(), String> {
    let mut m = Master::start("workers=1;timeout=1", "hang");
    let a = m.next_worker()?;
    m.wait_for(&format!("[CRITICAL] WORKER TIMEOUT (pid:{a})"))?;
    m.wait_for(&format!("Worker exiting (pid: {a})"))?;
    m.wait_for(&format!("Worker (pid:{a}) exited with code 1."))?;
    let b = m.next_worker()?;
    check(a != b, "replaced", &m)?;
    m.signal(Signal::SIGINT);
    m.wait_for("Handling signal: int")?;
    let status = m.wait_exit()?;
    check(status == 0, &format!("INT exits 0, got {status}"), &m)
}

fn abort_handler_replaces_the_default() -> Result<(), String> {
    let mut m = Master::start("workers=1;timeout=1", "hang-custom-abort");
    let a = m.next_worker()?;
    m.wait_for(&format!("WORKER TIMEOUT (pid:{a})"))?;
    let line = m.wait_for("abort handler ran")?;
    check(line.contains(&format!("[{a}]")), "runs in the worker", &m)?;
    m.wait_for(&format!("Worker (pid:{a}) exited with code 7."))?;
    m.signal(Signal::SIGQUIT);
    let status = m.wait_exit()?;
    check(status == 0, "QUIT exits 0", &m)
}

fn hup_reloads_the_configuration_and_rebinds() -> Result<(), String> {
    let dir = scratch_dir("reload")?;
    let reload = dir.join("settings");
    let reload_env = reload.display().to_string();
    let mut m = Master::start_with(
        "workers=1",
        "serve",
        &[("TEST_RELOAD_FILE", reload_env.as_str())],
    );
    let old_port = m.port()?;
    m.next_worker()?;
    // A bad new configuration is refused; the old one stays and the workers are replaced.
    std::fs::write(&reload, "workers=-1").map_err(|e| e.to_string())?;
    m.signal(Signal::SIGHUP);
    m.wait_for("Error reloading the configuration: invalid value for workers: -1")?;
    m.next_worker()?;
    check(
        get(old_port)?.contains("pid="),
        "still on the old address",
        &m,
    )?;
    // A new address and worker count: the master rebinds and logs it (without a pid, as gunicorn).
    let new_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    std::fs::write(
        &reload,
        format!("workers=2;loglevel=debug;bind=127.0.0.1:{new_port}"),
    )
    .map_err(|e| e.to_string())?;
    m.signal(Signal::SIGHUP);
    let line = m.wait_for(&format!("Listening at: http://127.0.0.1:{new_port}"))?;
    check(
        line.ends_with(&format!("127.0.0.1:{new_port}")),
        "no pid after a rebind",
        &m,
    )?;
    m.next_worker()?;
    m.next_worker()?;
    m.wait_for("[DEBUG] 2 workers")?;
    check(
        get(new_port)?.contains("pid="),
        "serves on the new address",
        &m,
    )?;
    check(get(old_port).is_err(), "the old address is closed", &m)?;
    m.term_exits_0()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn graceful_timeout_ends_in_sigkill() -> Result<(), String> {
    let mut m = Master::start("workers=1;graceful_timeout=1", "ignore-term");
    let a = m.next_worker()?;
    m.signal(Signal::SIGTERM);
    m.wait_for(&format!(
        "[ERROR] Worker (pid:{a}) was sent SIGKILL! Perhaps out of memory?"
    ))?;
    let status = m.wait_exit()?;
    check(status == 0, "TERM still exits 0", &m)
}

fn int_during_a_graceful_stop_switches_to_quick() -> Result<(), String> {
    let mut m = Master::start("workers=1;graceful_timeout=30", "ignore-term");
    let a = m.next_worker()?;
    m.signal(Signal::SIGTERM);
    m.wait_for("Handling signal: term")?;
    std::thread::sleep(Duration::from_millis(300));
    m.signal(Signal::SIGINT);
    let line = m.wait_for("quick stop honoured")?;
    check(line.contains(&format!("[{a}]")), "the worker got QUIT", &m)?;
    let status = m.wait_exit()?;
    check(status == 0, "exits 0", &m)
}

fn timeout_zero_disables_the_check() -> Result<(), String> {
    let mut m = Master::start("workers=1;timeout=0", "hang");
    m.next_worker()?;
    std::thread::sleep(Duration::from_millis(2500));
    m.signal(Signal::SIGQUIT);
    let status = m.wait_exit()?;
    check(status == 0, &format!("QUIT exits 0, got {status}"), &m)?;
    check(!m.logged("WORKER TIMEOUT"), "no timeout with timeout=0", &m)
}

fn ttin_and_ttou_change_the_count() -> Result<(), String> {
    let mut m = Master::start("workers=1;loglevel=debug", "serve");
    let a = m.next_worker()?;
    m.wait_for("[DEBUG] 1 workers")?;
    m.signal(Signal::SIGTTIN);
    m.wait_for("Handling signal: ttin")?;
    let b = m.next_worker()?;
    m.wait_for("[DEBUG] 2 workers")?;
    m.signal(Signal::SIGTTOU);
    m.wait_for("Handling signal: ttou")?;
    // The oldest worker is retired, gracefully.
    m.wait_for(&format!("Worker exiting (pid: {a})"))?;
    m.wait_for("[DEBUG] 1 workers")?;
    // TTOU never goes below one worker.
    m.signal(Signal::SIGTTOU);
    m.wait_for("Handling signal: ttou")?;
    std::thread::sleep(Duration::from_millis(1500));
    check(alive(b), "the last worker stays", &m)?;
    m.term_exits_0()
}

fn arbiter_handle_drives_the_master() -> Result<(), String> {
    let dir = scratch_dir("handle")?;
    let pidfile = dir.join("h.pid");
    let mut m = Master::start(
        &format!("workers=1;loglevel=debug;pidfile={}", pidfile.display()),
        "serve",
    );
    m.next_worker()?;
    let h = ArbiterHandle::from_pidfile(&pidfile).map_err(|e| e.to_string())?;
    check(
        h.pid() == m.pid() && h.is_alive(),
        "handle from the pidfile",
        &m,
    )?;
    h.incr().map_err(|e| e.to_string())?;
    m.wait_for("Handling signal: ttin")?;
    m.wait_for("[DEBUG] 2 workers")?;
    h.decr().map_err(|e| e.to_string())?;
    m.wait_for("Handling signal: ttou")?;
    h.reload().map_err(|e| e.to_string())?;
    m.wait_for("Hang up: Master")?;
    h.reopen_logs().map_err(|e| e.to_string())?;
    m.wait_for("Handling signal: usr1")?;
    h.stop().map_err(|e| e.to_string())?;
    let status = m.wait_exit()?;
    check(status == 0, "stop() exits 0", &m)?;
    check(!h.is_alive(), "gone", &m)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn hup_replaces_the_generation() -> Result<(), String> {
    let mut m = Master::start("workers=2;loglevel=debug", "serve");
    let port = m.port()?;
    let old = [m.next_worker()?, m.next_worker()?];
    m.signal(Signal::SIGHUP);
    m.wait_for("Handling signal: hup")?;
    m.wait_for("Hang up: Master")?;
    let new = [m.next_worker()?, m.next_worker()?];
    for pid in old {
        m.wait_for(&format!("Worker exiting (pid: {pid})"))?;
    }
    m.wait_for("[DEBUG] 2 workers")?;
    let body = get(port)?;
    check(
        new.iter().any(|p| body.ends_with(&format!("pid={p}"))),
        &format!("the new generation serves: {body}"),
        &m,
    )?;
    m.term_exits_0()
}

fn pidfile_unix_socket_and_usr1() -> Result<(), String> {
    let dir = scratch_dir("e2e")?;
    let pidfile = dir.join("g.pid");
    let sock = dir.join("g.sock");
    let log = dir.join("error.log");
    let settings = format!(
        "workers=1;pidfile={};bind=unix:{};errorlog={};umask=0o077",
        pidfile.display(),
        sock.display(),
        log.display()
    );
    let mut m = Master::start(&settings, "serve");
    // The log goes to the file; poll it.
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    poll_until(|| read_log().contains("Booting worker"));
    let text = read_log();
    m.log = text.lines().map(str::to_string).collect();
    check(
        text.contains(&format!("Listening at: unix:{}", sock.display())),
        "unix listener",
        &m,
    )?;
    let pid_text = std::fs::read_to_string(&pidfile).map_err(|e| e.to_string())?;
    check(
        pid_text == format!("{}\n", m.pid()),
        "pidfile holds the master pid",
        &m,
    )?;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    check(mode & 0o077 == 0, "socket created under umask 077", &m)?;
    let mut s = std::os::unix::net::UnixStream::connect(&sock).map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    check(body.contains("pid="), "served over the unix socket", &m)?;
    // A second master with the same pidfile refuses to start.
    let mut second = Master::start(&format!("workers=1;pidfile={}", pidfile.display()), "serve");
    let status = second.wait_exit()?;
    check(
        status == 1
            && second.logged(&format!(
                "Already running on PID {} (or pid file '{}' is stale)",
                m.pid(),
                pidfile.display()
            )),
        "second master refused",
        &second,
    )?;
    // USR1 reopens the log file: after a rotation, new lines go to a new file.
    let rotated = dir.join("error.log.1");
    std::fs::rename(&log, &rotated).map_err(|e| e.to_string())?;
    m.signal(Signal::SIGUSR1);
    let read_rotated = || std::fs::read_to_string(&rotated).unwrap_or_default();
    poll_until(|| read_rotated().contains("Handling signal: usr1"));
    check(
        read_rotated().contains("Handling signal: usr1"),
        "USR1 handled",
        &m,
    )?;
    m.term_exits_0()?;
    let new_log = read_log();
    check(
        new_log.contains("Handling signal: term") && new_log.contains("Shutting down: Master"),
        &format!("after USR1 the log goes to the new file: {new_log:?}"),
        &m,
    )?;
    check(!pidfile.exists(), "pidfile removed", &m)?;
    check(!sock.exists(), "socket file removed", &m)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn busy_port_gives_up_with_1() -> Result<(), String> {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = holder.local_addr().map_err(|e| e.to_string())?.port();
    let mut m = Master::start(&format!("bind=127.0.0.1:{port}"), "serve");
    let status = m.wait_exit()?;
    check(status == 1, &format!("exit 1, got {status}"), &m)?;
    let in_use = format!("[ERROR] Connection in use: ('127.0.0.1', {port})");
    check(
        m.log.iter().filter(|l| l.contains(&in_use)).count() == 5,
        "five attempts",
        &m,
    )?;
    check(
        m.logged(&format!("Can't connect to ('127.0.0.1', {port})")),
        "gave up",
        &m,
    )
}

fn reuse_port_workers_bind_their_own_sockets() -> Result<(), String> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    let dir = scratch_dir("rp")?;
    let sock = dir.join("rp.sock");
    let mut m = Master::start(
        &format!(
            "workers=2;reuse_port=true;bind=127.0.0.1:{port},unix:{}",
            sock.display()
        ),
        "serve",
    );
    // The unix socket stays with the master (listed first); TCP is bound by each worker.
    m.wait_for(&format!(
        "Listening at: unix:{},http://127.0.0.1:{port} (",
        sock.display()
    ))?;
    let workers = [m.next_worker()?, m.next_worker()?];
    // Each worker binds its own TCP socket on the port (SO_REUSEPORT), just after booting.
    let sockets_of = |w: i32| {
        std::fs::read_dir(format!("/proc/{w}/fd"))
            .map(|fds| {
                fds.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter(|p| p.display().to_string().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    };
    for w in workers {
        let deadline = Instant::now() + WAIT;
        while sockets_of(w) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        check(
            sockets_of(w) >= 2,
            &format!("worker {w} has its own listener"),
            &m,
        )?;
    }
    let mut ok = false;
    for _ in 0..50 {
        if get(port).map(|b| b.contains("pid=")).unwrap_or(false) {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check(ok, "served through the workers' own sockets", &m)?;
    let mut s = std::os::unix::net::UnixStream::connect(&sock).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    check(
        body.contains("pid="),
        "the master's unix socket serves too",
        &m,
    )?;
    m.term_exits_0()?;
    check(!sock.exists(), "unix socket removed at exit", &m)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn workers_leave_when_the_master_dies() -> Result<(), String> {
    let mut m = Master::start("workers=1", "serve");
    let a = m.next_worker()?;
    m.signal(Signal::SIGKILL);
    m.wait_for(&format!("Parent changed, shutting down: worker (pid: {a})"))?;
    m.wait_for(&format!("Worker exiting (pid: {a})"))?;
    Ok(())
}

fn usr2_starts_a_new_master_that_takes_over() -> Result<(), String> {
    let dir = scratch_dir("usr2")?;
    let pidfile = dir.join("g.pid");
    let mut m = Master::start(&format!("workers=1;pidfile={}", pidfile.display()), "serve");
    m.wait_for("Starting gunicorn")?;
    let port = m.port()?;
    m.next_worker()?;
    m.signal(Signal::SIGUSR2);
    m.wait_for("Handling signal: usr2")?;
    let line = m.wait_for("Starting gunicorn")?;
    let new_pid: i32 = line
        .split("] [")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("no pid in the new master's line")?;
    m.wait_for(&format!(
        "Listening at: http://127.0.0.1:{port} ({new_pid})"
    ))?;
    let new_worker = m.next_worker()?;
    let second = dir.join("g.pid.2");
    check(
        std::fs::read_to_string(&second).ok() == Some(format!("{new_pid}\n")),
        "the new master writes pidfile.2",
        &m,
    )?;
    // Old master goes away; the new one keeps serving on the same socket.
    m.signal(Signal::SIGTERM);
    let status = m.wait_exit()?;
    check(status == 0, "old master exits 0", &m)?;
    m.wait_for("Master has been promoted.")?;
    let body = get(port)?;
    check(
        body.ends_with(&format!("pid={new_worker}")),
        "the new generation serves",
        &m,
    )?;
    poll_until(|| std::fs::read_to_string(&pidfile).ok() == Some(format!("{new_pid}\n")));
    check(
        std::fs::read_to_string(&pidfile).ok() == Some(format!("{new_pid}\n")),
        "the promoted master renames its pidfile",
        &m,
    )?;
    let _ = kill(Pid::from_raw(new_pid), Signal::SIGTERM);
    m.wait_for("Shutting down: Master")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn systemd_socket_activation_and_notify() -> Result<(), String> {
    let dir = scratch_dir("sd")?;
    let notify_path = dir.join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).map_err(|e| e.to_string())?;
    notify
        .set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let notify_env = notify_path.display().to_string();
    let mut m = Master::start_with(
        "workers=1",
        "serve",
        &[
            ("GUNICORN_CORE_TEST_ROLE", "standin"),
            ("TEST_PASS_FD", "systemd"),
            ("NOTIFY_SOCKET", &notify_env),
        ],
    );
    let port = m.port()?;
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).map_err(|e| e.to_string())?;
    check(
        &buf[..n] == b"READY=1\nSTATUS=Gunicorn arbiter booted",
        "READY=1 sent to NOTIFY_SOCKET",
        &m,
    )?;
    m.next_worker()?;
    let body = get(port)?;
    check(body.contains("pid="), "serves on the passed socket", &m)?;
    m.term_exits_0()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn fd_bind_uses_an_inherited_socket() -> Result<(), String> {
    let mut m = Master::start_with(
        "workers=1",
        "serve",
        &[
            ("GUNICORN_CORE_TEST_ROLE", "standin"),
            ("TEST_PASS_FD", "fd"),
        ],
    );
    let port = m.port()?;
    m.next_worker()?;
    check(get(port)?.contains("pid="), "serves on fd://N", &m)?;
    m.term_exits_0()
}

fn user_group_tmp_dir_and_titles() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        println!("(skipping user/group checks: not root)");
        return Ok(());
    }
    let tmp = scratch_dir("tmp")?;
    let log = tmp.join("error.log");
    let mut m = Master::start(
        &format!(
            "workers=1;user=nobody;group=65534;worker_tmp_dir={};proc_name=demo;errorlog={}",
            tmp.display(),
            log.display()
        ),
        "serve",
    );
    let text = wait_in_file(&log, "Listening at: ")?;
    m.log = text.lines().map(str::to_string).collect();
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&log).map_err(|e| e.to_string())?.uid();
    check(
        owner == 65534,
        "the error log belongs to the worker user",
        &m,
    )?;
    let port: u16 = text
        .split("Listening at: http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .ok_or("no port")?;
    let text = wait_in_file(&log, "Booting worker with pid: ")?;
    let w: i32 = text
        .split("Booting worker with pid: ")
        .nth(1)
        .and_then(|r| r.lines().next())
        .and_then(|p| p.trim().parse().ok())
        .ok_or("no worker pid")?;
    let body = get(port)?;
    check(
        body.starts_with("HTTP/1.0 200") && body.contains("uid=65534 gid=65534"),
        &format!("the worker runs as nobody: {body}"),
        &m,
    )?;
    // The heartbeat file lives (unlinked) in worker_tmp_dir.
    let fds = std::fs::read_dir(format!("/proc/{w}/fd")).map_err(|e| e.to_string())?;
    let prefix = tmp.join("wgunicorn-").display().to_string();
    let has_tmp = fds
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|p| p.display().to_string().starts_with(&prefix));
    check(has_tmp, "heartbeat file in worker_tmp_dir", &m)?;
    let comm = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    check(
        comm(m.pid()) == "gunicorn: maste\n" && comm(w) == "gunicorn: worke\n",
        &format!("process titles: {:?} {:?}", comm(m.pid()), comm(w)),
        &m,
    )?;
    // Still alive after a few heartbeats as nobody (the file was chowned to the worker).
    let mut m2 = Master::start(
        &format!(
            "workers=1;user=nobody;group=nogroup;timeout=1;worker_tmp_dir={}",
            tmp.display()
        ),
        "serve",
    );
    m2.next_worker()?;
    std::thread::sleep(Duration::from_millis(2500));
    check(
        !m2.logged("WORKER TIMEOUT"),
        "no timeout for a nobody worker",
        &m2,
    )?;
    m2.signal(Signal::SIGTERM);
    m2.wait_exit()?;
    check(
        !m2.logged("WORKER TIMEOUT"),
        "no timeout for a nobody worker",
        &m2,
    )?;
    m.term_exits_0()?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Polls `path` until it contains `needle` (bounded), returning the content.
fn wait_in_file(path: &std::path::Path, needle: &str) -> Result<String, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(format!("no {needle:?} in {}:\n{text}", path.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn daemon_mode_and_winch() -> Result<(), String> {
    let dir = scratch_dir("daemon")?;
    let pidfile = dir.join("d.pid");
    let log = dir.join("error.log");
    let mut m = Master::start(
        &format!(
            "workers=1;daemon=true;pidfile={};errorlog={}",
            pidfile.display(),
            log.display()
        ),
        "serve",
    );
    // The process we started returns at once; the daemon lives on.
    let status = m.wait_exit()?;
    check(status == 0, "the launcher exits 0", &m)?;
    let text = wait_in_file(&log, "Booting worker with pid: ")?;
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .map_err(|e| e.to_string())?
        .trim()
        .parse()
        .map_err(|_| "bad pidfile")?;
    m.log = text.lines().map(str::to_string).collect();
    check(
        daemon != m.pid() && alive(daemon),
        "daemon runs under a new pid",
        &m,
    )?;
    let port: u16 = text
        .split("Listening at: http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .ok_or("no port")?;
    check(get(port)?.contains("pid="), "the daemon serves", &m)?;
    let _ = kill(Pid::from_raw(daemon), Signal::SIGWINCH);
    wait_in_file(&log, "graceful stop of workers")?;
    wait_in_file(&log, "Worker exiting (pid: ")?;
    let _ = kill(Pid::from_raw(daemon), Signal::SIGTTIN);
    let text = wait_in_file(&log, "Handling signal: ttin")?;
    let boots = |t: &str| t.matches("Booting worker with pid: ").count();
    poll_until(|| boots(&std::fs::read_to_string(&log).unwrap_or_default()) >= 2);
    check(
        boots(&std::fs::read_to_string(&log).unwrap_or_default()) >= 2,
        &format!("TTIN brings a worker back: {text}"),
        &m,
    )?;
    let _ = kill(Pid::from_raw(daemon), Signal::SIGTERM);
    wait_in_file(&log, "Shutting down: Master")?;
    poll_until(|| !pidfile.exists());
    check(!pidfile.exists(), "pidfile removed", &m)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn hooks_run_in_order_in_the_right_process() -> Result<(), String> {
    let mut m = Master::start_with("workers=1", "serve", &[("TEST_LOG_HOOKS", "1")]);
    let master = m.pid();
    // Master side, in order; every line carries the master's pid.
    let in_master = |line: &str| line.contains(&format!("] [{master}] "));
    let mut child = 0;
    for needle in [
        "hook: on_starting",
        "hook: when_ready",
        "hook: nworkers_changed 1 None",
        "hook: pre_fork 1",
        "hook: before_fork",
        "hook: after_fork_parent ",
    ] {
        let line = m.wait_for(needle)?;
        check(
            in_master(&line),
            &format!("{needle} runs in the master"),
            &m,
        )?;
        if needle == "hook: after_fork_parent " {
            child = line
                .rsplit(' ')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
        }
    }
    let in_child = |line: &str| line.contains(&format!("] [{child}] "));
    for needle in [
        "hook: after_fork_child",
        "Booting worker with pid: ",
        &format!("hook: post_fork age=1 ppid={master}"),
    ] {
        let line = m.wait_for(needle)?;
        check(in_child(&line), &format!("{needle} runs in the worker"), &m)?;
    }
    let order: Vec<usize> = [
        "hook: after_fork_child",
        "Booting worker",
        "hook: post_fork",
    ]
    .iter()
    .filter_map(|n| m.log.iter().position(|l| l.contains(n)))
    .collect();
    check(
        order.len() == 3 && order.windows(2).all(|w| w[0] < w[1]),
        "after_fork_child, then Booting, then post_fork",
        &m,
    )?;
    m.signal(Signal::SIGHUP);
    m.wait_for("hook: on_reload")?;
    m.wait_for("hook: pre_fork 2")?;
    m.wait_for("hook: worker_exit 1")?;
    m.wait_for(&format!("hook: child_exit {child}"))?;
    m.signal(Signal::SIGTERM);
    m.wait_for("hook: worker_exit 2")?;
    let line = m.wait_for("hook: on_exit")?;
    check(in_master(&line), "on_exit in the master", &m)?;
    let status = m.wait_exit()?;
    check(status == 0, "TERM exits 0", &m)
}

fn usr2_runs_the_binary_replaced_on_disk() -> Result<(), String> {
    let dir = scratch_dir("upgrade")?;
    let exe = dir.join("server");
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    std::fs::copy(&me, &exe).map_err(|e| e.to_string())?;
    let mut m = Master::start_exe(&exe, "workers=1", "serve", &[]);
    m.wait_for("Starting gunicorn")?;
    m.next_worker()?;
    // A package upgrade: the new binary is renamed over the old path.
    let staged = dir.join("server.new");
    std::fs::copy(&me, &staged).map_err(|e| e.to_string())?;
    std::fs::rename(&staged, &exe).map_err(|e| e.to_string())?;
    m.signal(Signal::SIGUSR2);
    m.wait_for("Handling signal: usr2")?;
    let line = m.wait_for("Starting gunicorn")?;
    let new_pid: i32 = line
        .split("] [")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("no pid")?;
    m.wait_for("Booting worker with pid: ")?;
    let target = std::fs::read_link(format!("/proc/{new_pid}/exe")).map_err(|e| e.to_string())?;
    check(
        target == exe,
        &format!(
            "the new master runs the new file, not a deleted one: {}",
            target.display()
        ),
        &m,
    )?;
    let _ = kill(Pid::from_raw(new_pid), Signal::SIGTERM);
    m.wait_for("Shutting down: Master.2")?;
    m.signal(Signal::SIGTERM);
    let status = m.wait_exit()?;
    check(status == 0, "old master exits 0", &m)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() {
    match std::env::var("GUNICORN_CORE_TEST_ROLE").as_deref() {
        Ok("master") => run_master(),
        Ok("standin") => run_standin(),
        _ => {}
    }
    type Scenario = (&'static str, fn() -> Result<(), String>);
    let scenarios: &[Scenario] = &[
        (
            "boots_serves_respawns_and_stops_on_term",
            boots_serves_respawns_and_stops_on_term,
        ),
        ("boot_error_halts_with_3", boot_error_halts_with_3),
        ("app_load_error_halts_with_4", app_load_error_halts_with_4),
        (
            "bad_build_exits_1_before_forking",
            bad_build_exits_1_before_forking,
        ),
        (
            "silent_worker_is_killed_at_the_timeout",
            silent_worker_is_killed_at_the_timeout,
        ),
        (
            "timeout_zero_disables_the_check",
            timeout_zero_disables_the_check,
        ),
        (
            "ttin_and_ttou_change_the_count",
            ttin_and_ttou_change_the_count,
        ),
        ("hup_replaces_the_generation", hup_replaces_the_generation),
        (
            "hup_reloads_the_configuration_and_rebinds",
            hup_reloads_the_configuration_and_rebinds,
        ),
        (
            "graceful_timeout_ends_in_sigkill",
            graceful_timeout_ends_in_sigkill,
        ),
        (
            "int_during_a_graceful_stop_switches_to_quick",
            int_during_a_graceful_stop_switches_to_quick,
        ),
        (
            "usr2_runs_the_binary_replaced_on_disk",
            usr2_runs_the_binary_replaced_on_disk,
        ),
        (
            "initgroups_loads_the_users_groups",
            initgroups_loads_the_users_groups,
        ),
        (
            "daemon_with_stdio_inheritance_keeps_stderr",
            daemon_with_stdio_inheritance_keeps_stderr,
        ),
        (
            "missing_worker_tmp_dir_is_a_config_error",
            missing_worker_tmp_dir_is_a_config_error,
        ),
        (
            "arbiter_handle_drives_the_master",
            arbiter_handle_drives_the_master,
        ),
        (
            "abort_handler_replaces_the_default",
            abort_handler_replaces_the_default,
        ),
        (
            "hooks_run_in_order_in_the_right_process",
            hooks_run_in_order_in_the_right_process,
        ),
        ("daemon_mode_and_winch", daemon_mode_and_winch),
        (
            "systemd_socket_activation_and_notify",
            systemd_socket_activation_and_notify,
        ),
        (
            "fd_bind_uses_an_inherited_socket",
            fd_bind_uses_an_inherited_socket,
        ),
        (
            "user_group_tmp_dir_and_titles",
            user_group_tmp_dir_and_titles,
        ),
        ("pidfile_unix_socket_and_usr1", pidfile_unix_socket_and_usr1),
        ("busy_port_gives_up_with_1", busy_port_gives_up_with_1),
        (
            "reuse_port_workers_bind_their_own_sockets",
            reuse_port_workers_bind_their_own_sockets,
        ),
        (
            "workers_leave_when_the_master_dies",
            workers_leave_when_the_master_dies,
        ),
        (
            "usr2_starts_a_new_master_that_takes_over",
            usr2_starts_a_new_master_that_takes_over,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    // Scenarios are independent processes: run them a few at a time to stay well under a minute.
    let selected: Vec<&Scenario> = scenarios
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let mut failed = 0;
    for chunk in selected.chunks(4) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|(name, f)| {
                let (name, f) = (*name, *f);
                std::thread::spawn(move || (name, f()))
            })
            .collect();
        for h in handles {
            let (name, result) = h.join().expect("scenario thread");
            match result {
                Ok(()) => println!("test {name} ... ok"),
                Err(e) => {
                    failed += 1;
                    println!("test {name} ... FAILED\n{e}\n");
                }
            }
        }
    }
    println!(
        "\narbiter scenarios: {} passed, {failed} failed",
        selected.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
