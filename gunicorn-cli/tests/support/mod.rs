//! The end-to-end test harness: runs the real `gunicorn` binary on a free loopback port, collects
//! its output lines, talks raw HTTP to it, sends it signals, and always kills it when dropped.
//!
//! Every wait is bounded by a timeout; nothing here asserts how long something took.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub mod h2;
pub mod reference;
pub mod tls;

/// How long a server gets to boot its workers.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a command that should exit gets to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The gunicorn binary built by cargo for these tests, or `$GUNICORN_TEST_BINARY` (a custom
/// binary that calls `gunicorn_cli::run()` with more worker crates linked).
pub fn binary() -> PathBuf {
    match std::env::var_os("GUNICORN_TEST_BINARY") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_gunicorn")),
    }
}

/// `tests/apps` at the workspace root: the shared fixture applications.
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps")
}

/// `gunicorn-cli/tests/fixtures`: fixtures of these tests (config files, small apps).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("gunicorn-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback TCP port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Whether the Python the binary runs with can import `module` (e.g. flask). Tests that need it
/// skip with a printed reason when it cannot; `scripts/test` always installs it.
pub fn python_has(module: &str) -> bool {
    let python = match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) => Path::new(&venv).join("bin/python"),
        None => PathBuf::from("python3"),
    };
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Prints why a test is skipped; the caller returns right after.
pub fn skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
}

/// Whether the test Python can import `module`; says SKIPPED when it cannot (for the tests
/// of a worker class that needs it, gevent or eventlet).
pub fn have_module(module: &str) -> bool {
    if python_has(module) {
        return true;
    }
    skip(&format!("{module} is not installed in the test Python"));
    false
}

/// A gunicorn command line being prepared.
pub struct Gunicorn {
    cmd: Command,
    args: Vec<String>,
}

impl Gunicorn {
    /// The binary, started in `tests/apps`, with a clean environment for the variables that
    /// change its defaults.
    pub fn new() -> Gunicorn {
        let mut cmd = Command::new(binary());
        cmd.current_dir(apps_dir())
            .env_remove("GUNICORN_CMD_ARGS")
            .env_remove("PORT")
            .env_remove("WEB_CONCURRENCY")
            .env_remove("FORWARDED_ALLOW_IPS")
            .env_remove("PYTHONPATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Gunicorn {
            cmd,
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<str>) -> Gunicorn {
        self.args.push(arg.as_ref().to_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Gunicorn
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for a in args {
            self.args.push(a.as_ref().to_string());
        }
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Gunicorn {
        self.cmd.env(key, value);
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Gunicorn {
        self.cmd.current_dir(dir);
        self
    }

    /// Adds `-b 127.0.0.1:0`: the kernel picks a free port, and the server's `port()` reads it
    /// from the `Listening at:` line (no window in which another process could take it).
    pub fn bind_free_port(mut self) -> Gunicorn {
        self.args.push("-b".into());
        self.args.push("127.0.0.1:0".into());
        self
    }

    /// Runs a command that is expected to exit by itself (`--version`, a config error, ...).
    pub fn run(mut self) -> Finished {
        let server = self.spawn_inner();
        let status = server.wait_exit(EXIT_TIMEOUT);
        let status = status.unwrap_or_else(|| {
            panic!(
                "gunicorn {:?} did not exit; output:\n{}",
                server.args,
                server.output()
            )
        });
        Finished {
            status,
            stdout: server.stdout_text(),
            stderr: server.stderr_text(),
        }
    }

    /// Starts a server; use `wait_booted` before sending requests.
    pub fn spawn(mut self) -> Server {
        self.spawn_inner()
    }

    fn spawn_inner(&mut self) -> Server {
        self.cmd.args(&self.args);
        let mut child = self.cmd.spawn().expect("spawn gunicorn");
        let out = Arc::new(Output::default());
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(read_lines(stdout, out.clone(), Stream::Stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(read_lines(stderr, out.clone(), Stream::Stderr));
        }
        Server {
            child,
            out,
            readers,
            args: self.args.clone(),
            exit: Mutex::new(None),
        }
    }
}

impl Default for Gunicorn {
    fn default() -> Self {
        Gunicorn::new()
    }
}

/// A command that exited.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Output {
    lines: Mutex<Vec<(Stream, String)>>,
    changed: Condvar,
}

fn read_lines(
    pipe: impl Read + Send + 'static,
    out: Arc<Output>,
    stream: Stream,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    out.lines.lock().unwrap().push((stream, line));
                    out.changed.notify_all();
                }
            }
        }
    })
}

/// A running gunicorn. Dropping it stops the master (TERM, then KILL) and kills any worker it
/// logged, so no process outlives a test.
pub struct Server {
    child: Child,
    out: Arc<Output>,
    readers: Vec<std::thread::JoinHandle<()>>,
    args: Vec<String>,
    exit: Mutex<Option<ExitStatus>>,
}

impl Server {
    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The port of the first address in the `Listening at:` line (waits for it).
    pub fn port(&self) -> u16 {
        match self.listening_addrs().first() {
            Some(addr) => addr.port(),
            None => panic!(
                "no TCP address in `Listening at:`; output:\n{}",
                self.output()
            ),
        }
    }

    /// A connection to [`Server::port`] on 127.0.0.1 that reads with `read_timeout`, for tests
    /// that talk on one connection themselves (keep-alive, pipelining, slow clients).
    pub fn connect(&self, read_timeout: Duration) -> TcpStream {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port()));
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
        s.set_read_timeout(Some(read_timeout))
            .expect("set read timeout");
        s
    }

    /// The TCP addresses of the `Listening at:` line, e.g. `http://127.0.0.1:8000,unix:/x (42)`.
    pub fn listening_addrs(&self) -> Vec<SocketAddr> {
        let Some(lines) = self.wait_for("Listening at: ", 1, BOOT_TIMEOUT) else {
            panic!("no `Listening at:` line; output:\n{}", self.output());
        };
        parse_listening(&lines[0])
    }

    /// Every output line so far (stdout and stderr), joined.
    pub fn output(&self) -> String {
        self.lines(None).join("\n")
    }

    fn lines(&self, stream: Option<Stream>) -> Vec<String> {
        self.out
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| match stream {
                None => true,
                Some(want) => *s == want,
            })
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn stderr_text(&self) -> String {
        self.lines(Some(Stream::Stderr)).join("\n")
    }

    pub fn stdout_text(&self) -> String {
        self.lines(Some(Stream::Stdout)).join("\n")
    }

    /// Waits until `count` lines (stdout or stderr) contain `needle`; returns those lines.
    pub fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.out.lines.lock().unwrap();
        loop {
            let found: Vec<String> = lines
                .iter()
                .filter(|(_, l)| l.contains(needle))
                .map(|(_, l)| l.clone())
                .collect();
            if found.len() >= count {
                return Some(found);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Wake at least every 100 ms to notice an exited server.
            let wait = (deadline - now).min(Duration::from_millis(100));
            lines = self.out.changed.wait_timeout(lines, wait).unwrap().0;
            if self.exit_status().is_some() {
                drop(lines);
                // Let the readers drain what the process wrote before it exited.
                std::thread::sleep(Duration::from_millis(50));
                lines = self.out.lines.lock().unwrap();
                let found: Vec<String> = lines
                    .iter()
                    .filter(|(_, l)| l.contains(needle))
                    .map(|(_, l)| l.clone())
                    .collect();
                return (found.len() >= count).then_some(found);
            }
        }
    }

    /// Waits for `workers` "Booting worker" lines; panics with the output if they do not come.
    pub fn wait_booted(&self, workers: usize) -> &Server {
        if self
            .wait_for("Booting worker with pid:", workers, BOOT_TIMEOUT)
            .is_none()
        {
            panic!(
                "gunicorn {:?} did not boot {workers} worker(s); output:\n{}",
                self.args,
                self.output()
            );
        }
        self
    }

    /// The pids of the "Booting worker with pid: N" lines so far.
    pub fn worker_pids(&self) -> Vec<i32> {
        self.lines(None)
            .iter()
            .filter_map(|l| l.split("Booting worker with pid: ").nth(1))
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    pub fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid()), sig);
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        let mut exit = self.exit.lock().unwrap();
        if exit.is_none() {
            // try_wait needs &mut Child; the pid is ours, so waitpid through nix.
            if let Ok(status) = nix::sys::wait::waitpid(
                Pid::from_raw(self.pid()),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            ) {
                use std::os::unix::process::ExitStatusExt;
                *exit = match status {
                    nix::sys::wait::WaitStatus::Exited(_, code) => {
                        Some(ExitStatus::from_raw(code << 8))
                    }
                    nix::sys::wait::WaitStatus::Signaled(_, sig, _) => {
                        Some(ExitStatus::from_raw(sig as i32))
                    }
                    _ => None,
                };
            }
        }
        *exit
    }

    /// Waits for the master to exit; `None` on timeout.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                // Let the readers drain the rest of the output.
                let drain_deadline = Instant::now() + Duration::from_secs(5);
                while self.readers.iter().any(|r| !r.is_finished())
                    && Instant::now() < drain_deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `request` (raw bytes) to 127.0.0.1:port and reads the whole response.
    pub fn send(&self, request: &[u8]) -> Response {
        send_to(SocketAddr::from(([127, 0, 0, 1], self.port())), request)
    }

    /// `GET path` with `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        self.send(get_request(path).as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            self.signal(Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                self.signal(Signal::SIGKILL);
                let _ = self.wait_exit(Duration::from_secs(5));
            }
        }
        // Workers of a master that was killed would otherwise linger until they notice.
        for pid in self.worker_pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The TCP addresses of a `Listening at: URL,URL (PID)` line.
pub fn parse_listening(line: &str) -> Vec<SocketAddr> {
    let Some(rest) = line.split("Listening at: ").nth(1) else {
        return Vec::new();
    };
    let urls = rest.rsplit_once(" (").map_or(rest, |(urls, _)| urls);
    urls.split(',')
        .filter_map(|u| {
            let u = u.trim();
            u.strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"))
        })
        .filter_map(|hostport| hostport.parse().ok())
        .collect()
}

/// The first TCP address of the `Listening at:` line in `log`, the text of a log file (for a
/// server whose error log does not go to the captured output).
pub fn listening_addr_in(log: &str) -> SocketAddr {
    let line = log.lines().find(|l| l.contains("Listening at: ")).unwrap();
    parse_listening(line)[0]
}

/// A `GET` request with `Connection: close`.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to `addr` (retrying briefly while the server starts accepting), sends `request`,
/// and reads until the server closes the connection.
pub fn send_to(addr: SocketAddr, request: &[u8]) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("connect to {addr}: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(RESPONSE_TIMEOUT))
        .expect("set read timeout");
    exchange(&mut stream, request)
}

/// How long a response may take to arrive and the connection to be closed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `request` on `stream` and reads the response until EOF.
pub fn exchange(stream: &mut (impl Read + Write), request: &[u8]) -> Response {
    stream.write_all(request).expect("send request");
    let mut raw = Vec::new();
    if let Err(e) = read_to_end_bounded(stream, &mut raw) {
        // The sync worker answers `Connection: close`: a response that never ends is a bug.
        panic!(
            "reading the response failed ({e}); the server did not close the connection; got {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    parse_response(&raw)
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))
}

fn read_to_end_bounded(stream: &mut impl Read, raw: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 16384];
    // At most 64 MiB, so a server that never closes cannot grow this forever.
    while raw.len() < 64 << 20 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `Content-Length` of a response head (any case), 0 when absent or not a number: how
/// much body to read before the next response on a kept-alive connection.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Parses a response head and body (Content-Length, chunked, or up to EOF).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest.get(..len)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
        raw: raw.to_vec(),
    })
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The pids of the children of `pid`, read from /proc (what `ps --ppid` shows).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return kids;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: fields follow the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        // fields[0] = state, fields[1] = ppid; a zombie (Z) is already dead.
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) && fields[0] != "Z" {
            kids.push(child);
        }
    }
    kids.sort_unstable();
    kids
}

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
