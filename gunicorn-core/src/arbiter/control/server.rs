//! The control socket's listener and clients, served from the arbiter's own loop (gunicorn runs
//! an asyncio thread in the master; here the master stays single-threaded, as it must before
//! `fork()`).
//!
//! Everything is non-blocking and bounded, so no client can hold the arbiter up: a request is
//! at most [`MAX_REQUEST`] bytes, read no further than the message it belongs to; a started
//! message or a pending answer must complete within [`MESSAGE_TIMEOUT`]; an idle connection is
//! closed after [`IDLE_TIMEOUT`] (gunicorn's 300 s, long enough for `gunicornc`'s interactive
//! mode); at most [`MAX_CLIENTS`] connections are kept, the longest idle one making room for a
//! new one.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::Value as Json;

use super::protocol::{self, FrameDecoder, ProtocolError, MAX_REQUEST};

/// How long a started request, or an answer the client does not read, may take.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may sit between requests (gunicorn's idle timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections kept at once.
pub const MAX_CLIENTS: usize = 16;
/// Answers buffered for one client before the server stops reading its requests.
const MAX_PENDING_OUTPUT: usize = 1024 * 1024;
/// Connections accepted per wake-up (the rest wait in the backlog for the next one).
const ACCEPTS_PER_TURN: usize = 32;
/// The longest path a unix socket address holds (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The control socket could not be set up (logged as gunicorn's `Control server error: ...`;
/// the server runs on without it).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The parent directory is missing and cannot be created.
    #[error("cannot create the directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Something that is not a socket is in the way (gunicorn would delete it).
    #[error("{} exists and is not a socket: not replaced", .0.display())]
    NotASocket(PathBuf),
    /// The path does not fit a unix socket address.
    #[error("AF_UNIX path too long: {}", .0.display())]
    PathTooLong(PathBuf),
    /// A stale socket cannot be removed, or the new one cannot be bound or set up.
    #[error("{}: {source}", path.display())]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The master's counters behind `show stats` (gunicorn's `Arbiter._stats`).
#[derive(Debug, Clone)]
pub struct Stats {
    /// When the master started.
    pub start_time: SystemTime,
    /// Workers forked since the start.
    pub workers_spawned: u64,
    /// SIGTERM and SIGKILL sent to workers.
    pub workers_killed: u64,
    /// Configuration reloads (HUP).
    pub reloads: u64,
}

/// The control socket state the arbiter owns: the server when it runs, and the counters.
#[derive(Debug)]
pub struct Control {
    /// The running server, if any.
    pub server: Option<ControlServer>,
    /// The counters `show stats` reports.
    pub stats: Stats,
}

impl Control {
    /// No server yet; counters from now.
    pub fn new() -> Control {
        Control {
            server: None,
            stats: Stats {
                start_time: SystemTime::now(),
                workers_spawned: 0,
                workers_killed: 0,
                reloads: 0,
            },
        }
    }

    /// In a forked worker: closes the master's control descriptors without touching the socket
    /// file, which stays the master's.
    pub fn forget_in_child(&mut self) {
        self.server = None;
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

/// Where one connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the next request; the idle timeout runs.
    Idle,
    /// Part of a request is in, or an answer is being written: the message timeout runs from
    /// this instant.
    Busy(Instant),
    /// Nothing more is read (end of stream, or a request that could not be read): the answers
    /// pending are written, then the connection is closed.
    Closing(Instant),
}

#[derive(Debug)]
struct Client {
    id: u64,
    stream: UnixStream,
    decoder: FrameDecoder,
    out: Vec<u8>,
    /// Requests handed to the arbiter and not answered yet.
    unanswered: usize,
    phase: Phase,
    idle_since: Instant,
}

impl Client {
    fn deadline(&self) -> Instant {
        match self.phase {
            Phase::Idle => self.idle_since + IDLE_TIMEOUT,
            Phase::Busy(t) | Phase::Closing(t) => t + MESSAGE_TIMEOUT,
        }
    }

    fn wants_input(&self) -> bool {
        !matches!(self.phase, Phase::Closing(_)) && self.out.len() < MAX_PENDING_OUTPUT
    }

    /// Back to idle once nothing is half-read and nothing is waiting to be written.
    fn settle(&mut self, now: Instant) {
        let busy = self.decoder.is_partial() || !self.out.is_empty() || self.unanswered > 0;
        match (self.phase, busy) {
            (Phase::Idle, true) => self.phase = Phase::Busy(now),
            (Phase::Busy(_), false) => {
                self.phase = Phase::Idle;
                self.idle_since = now;
            }
            _ => {}
        }
    }

    /// Writes what it can without waiting. `Err` means the connection is dead.
    fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Nothing more will be read and everything is answered and sent.
    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Closing(_)) && self.out.is_empty() && self.unanswered == 0
    }

    /// Reads at most the rest of the current message and queues the requests completed.
    /// `Ok(false)`: the connection is over.
    fn read_some(&mut self, now: Instant, requests: &mut Vec<(u64, Json)>) -> bool {
        let mut buf = [0u8; 8192];
        let want = self.decoder.wanted().min(buf.len());
        match self.stream.read(&mut buf[..want]) {
            Ok(0) => {
                // End of stream: answer what came complete, then close.
                self.phase = Phase::Closing(now);
                return true;
            }
            Ok(n) => self.decoder.feed(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return true
            }
            Err(_) => return false,
        }
        loop {
            match self.decoder.next_payload() {
                Ok(None) => break,
                Ok(Some(payload)) => match protocol::decode(&payload) {
                    Ok(request) => {
                        self.unanswered += 1;
                        requests.push((self.id, request));
                    }
                    Err(e) => {
                        self.refuse(&e, now);
                        break;
                    }
                },
                Err(e) => {
                    self.refuse(&e, now);
                    break;
                }
            }
        }
        true
    }

    /// A request that cannot be read: answer with the reason, then close (gunicorn closes
    /// without a word).
    fn refuse(&mut self, e: &ProtocolError, now: Instant) {
        let answer = protocol::error_response(&Json::Null, &e.to_string());
        self.out.extend_from_slice(&protocol::encode(&answer));
        self.phase = Phase::Closing(now);
    }
}

/// The listening control socket and its connections.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file bound, so that only our own file is removed at exit
    /// (after a USR2 upgrade the new master has bound a new one at the same path).
    identity: (u64, u64),
    clients: Vec<Client>,
    next_id: u64,
}

impl ControlServer {
    /// Binds the socket at `path` (absolute) with permissions `mode`: creates the parent
    /// directory (mode 0700) when missing, replaces a stale socket file, binds under a umask
    /// that lets nobody in before the `chmod`.
    pub fn bind(path: &Path, mode: u32) -> Result<ControlServer, ControlError> {
        let sock_err = |source| ControlError::Socket {
            path: path.to_path_buf(),
            source,
        };
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ControlError::PathTooLong(path.to_path_buf()));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .and_then(|()| {
                        // Exactly 0700 whatever the umask is.
                        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    })
                    .map_err(|source| ControlError::CreateDir {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
            }
        }
        // Another server starting at the same time may bind the path between our removal of a
        // stale socket and our bind: the last one to bind wins (gunicorn replaces the socket
        // too), so a bind that finds the address in use replaces it again, a few times at most.
        let mut attempts = 0;
        let listener = loop {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_socket() => match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(sock_err(e)),
                    _ => {}
                },
                Ok(_) => return Err(ControlError::NotASocket(path.to_path_buf())),
                Err(_) => {}
            }
            let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
            let bound = UnixListener::bind(path);
            nix::sys::stat::umask(old);
            match bound {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 3 => attempts += 1,
                bound => break bound.map_err(sock_err)?,
            }
        };
        let setup = || -> io::Result<(u64, u64)> {
            listener.set_nonblocking(true)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            let meta = std::fs::symlink_metadata(path)?;
            Ok((meta.dev(), meta.ino()))
        };
        let identity = match setup() {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(sock_err(e));
            }
        };
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            identity,
            clients: Vec::new(),
            next_id: 0,
        })
    }

    /// Serves the connections until a request is complete, `wake` (the arbiter's signal pipe)
    /// is readable, or `timeout` passes. Returns the complete requests with their client.
    pub fn serve(&mut self, wake: BorrowedFd<'_>, timeout: Duration) -> Vec<(u64, Json)> {
        let end = Instant::now() + timeout;
        let mut requests = Vec::new();
        loop {
            let now = Instant::now();
            self.expire(now);
            let next = self
                .clients
                .iter()
                .map(Client::deadline)
                .fold(end, Instant::min);
            let wait = next.saturating_duration_since(now);
            let ms = u16::try_from(wait.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
            let (woken, ready) = self.wait(wake, PollTimeout::from(ms));
            let now = Instant::now();
            if ready.listener {
                self.accept(now);
            }
            for (id, revents) in ready.clients {
                self.service(id, revents, now, &mut requests);
            }
            if woken || !requests.is_empty() || now >= end {
                return requests;
            }
        }
    }

    /// One `poll(2)` over the wake-up pipe, the listener and the clients.
    fn wait(&self, wake: BorrowedFd<'_>, timeout: PollTimeout) -> (bool, Ready) {
        let mut fds = Vec::with_capacity(2 + self.clients.len());
        fds.push(PollFd::new(wake, PollFlags::POLLIN));
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        for c in &self.clients {
            let mut flags = PollFlags::empty();
            if c.wants_input() {
                flags |= PollFlags::POLLIN;
            }
            if !c.out.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.as_fd(), flags));
        }
        // EINTR: a signal handler ran and wrote to the pipe; the caller drains it.
        if poll(&mut fds, timeout).is_err() {
            return (true, Ready::default());
        }
        let revents = |fd: &PollFd<'_>| fd.revents().unwrap_or(PollFlags::empty());
        let woken = !revents(&fds[0]).is_empty();
        let listener = !revents(&fds[1]).is_empty();
        let clients = self
            .clients
            .iter()
            .zip(&fds[2..])
            .filter(|(_, fd)| !revents(fd).is_empty())
            .map(|(c, fd)| (c.id, revents(fd)))
            .collect();
        (woken, Ready { listener, clients })
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: all taken; anything else (EMFILE...): retried on the next wake-up.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.clients.len() >= MAX_CLIENTS {
                self.evict_one();
            }
            self.next_id += 1;
            self.clients.push(Client {
                id: self.next_id,
                stream,
                decoder: FrameDecoder::new(MAX_REQUEST),
                out: Vec::new(),
                unanswered: 0,
                phase: Phase::Idle,
                idle_since: now,
            });
        }
    }

    /// Makes room for a new connection: the longest idle one goes, else the oldest.
    fn evict_one(&mut self) {
        let idle = self
            .clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.phase == Phase::Idle)
            .min_by_key(|(_, c)| c.idle_since)
            .map(|(i, _)| i);
        self.clients.remove(idle.unwrap_or(0));
    }

    fn service(
        &mut self,
        id: u64,
        revents: PollFlags,
        now: Instant,
        requests: &mut Vec<(u64, Json)>,
    ) {
        let Some(i) = self.clients.iter().position(|c| c.id == id) else {
            return;
        };
        let c = &mut self.clients[i];
        let mut alive = true;
        if revents.intersects(PollFlags::POLLOUT | PollFlags::POLLERR) && !c.out.is_empty() {
            alive = c.flush().is_ok();
        }
        if alive
            && c.wants_input()
            && revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        {
            alive = c.read_some(now, requests);
        }
        if alive {
            alive = c.flush().is_ok();
        }
        c.settle(now);
        if !alive || c.is_done() {
            self.clients.remove(i);
        }
    }

    /// Closes the connections past their deadline.
    fn expire(&mut self, now: Instant) {
        self.clients.retain(|c| c.deadline() > now);
    }

    /// Queues the answer to a request of client `id` and sends what the socket takes now.
    pub fn respond(&mut self, id: u64, answer: &Json) {
        let Some(i) = self.clients.iter().position(|c| c.id == id) else {
            return;
        };
        let c = &mut self.clients[i];
        c.out.extend_from_slice(&protocol::encode(answer));
        c.unanswered = c.unanswered.saturating_sub(1);
        let alive = c.flush().is_ok();
        let now = Instant::now();
        c.settle(now);
        if !alive || c.is_done() {
            self.clients.remove(i);
        }
    }

    /// Stops serving: sends what is pending without waiting, closes every connection and
    /// removes the socket file if it is still ours.
    pub fn close(mut self) {
        for c in &mut self.clients {
            let _ = c.flush();
        }
        self.clients.clear();
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// What one `poll(2)` found ready.
#[derive(Debug, Default)]
struct Ready {
    listener: bool,
    clients: Vec<(u64, PollFlags)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn binds_with_the_mode_and_replaces_only_sockets() {
        let dir = temp_dir("bind");
        let path = dir.join("sub/g.ctl");
        let server = ControlServer::bind(&path, 0o660).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let sub = std::fs::metadata(dir.join("sub")).unwrap();
        assert_eq!(sub.permissions().mode() & 0o777, 0o700);
        // A stale socket (still on disk, nobody serving) is replaced.
        drop(server);
        let again = ControlServer::bind(&path, 0o600).unwrap();
        again.close();
        assert!(!path.exists());
        // A regular file is left alone.
        let file = dir.join("file.ctl");
        std::fs::write(&file, "keep").unwrap();
        let err = ControlServer::bind(&file, 0o600).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("exists and is not a socket: not replaced"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        let long = dir.join("x".repeat(120));
        assert!(matches!(
            ControlServer::bind(&long, 0o600),
            Err(ControlError::PathTooLong(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_servers_socket_is_not_removed_at_close() {
        let dir = temp_dir("steal");
        let path = dir.join("g.ctl");
        let first = ControlServer::bind(&path, 0o600).unwrap();
        let second = ControlServer::bind(&path, 0o600).unwrap();
        first.close();
        assert!(path.exists(), "the second server's socket must stay");
        second.close();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn requests_come_out_and_bad_ones_are_answered_then_closed() {
        let dir = temp_dir("serve");
        let path = dir.join("g.ctl");
        let mut server = ControlServer::bind(&path, 0o600).unwrap();
        let (wake_r, _wake_w) = nix::unistd::pipe().unwrap();
        let mut good = UnixStream::connect(&path).unwrap();
        let msg = protocol::request(5, "show workers", &[]);
        good.write_all(&protocol::encode(&msg)).unwrap();
        let mut got = Vec::new();
        for _ in 0..20 {
            got.extend(server.serve(wake_r.as_fd(), Duration::from_millis(50)));
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, msg);
        server.respond(got[0].0, &protocol::ok_response(&json!(5), json!({"n": 1})));
        let mut prefix = [0u8; 4];
        good.read_exact(&mut prefix).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        good.read_exact(&mut body).unwrap();
        assert_eq!(protocol::decode(&body).unwrap()["data"]["n"], 1);

        // Garbage: an error answer, then end of stream.
        let mut bad = UnixStream::connect(&path).unwrap();
        bad.write_all(&[0, 0, 0, 3, b'x', b'y', b'z']).unwrap();
        // Too large: refused from the prefix alone.
        let mut huge = UnixStream::connect(&path).unwrap();
        huge.write_all(&u32::MAX.to_be_bytes()).unwrap();
        for _ in 0..10 {
            assert!(server
                .serve(wake_r.as_fd(), Duration::from_millis(20))
                .is_empty());
        }
        for (stream, want) in [
            (&mut bad, "Invalid JSON"),
            (&mut huge, "Message too large: 4294967295"),
        ] {
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut all = Vec::new();
            stream.read_to_end(&mut all).unwrap();
            let answer = protocol::decode(&all[4..]).unwrap();
            assert_eq!(answer["status"], "error");
            assert!(
                answer["error"].as_str().unwrap().starts_with(want),
                "{answer}"
            );
        }
        server.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn connections_are_bounded() {
        let dir = temp_dir("bound");
        let path = dir.join("g.ctl");
        let mut server = ControlServer::bind(&path, 0o600).unwrap();
        let (wake_r, _wake_w) = nix::unistd::pipe().unwrap();
        let mut conns = Vec::new();
        for _ in 0..MAX_CLIENTS + 5 {
            conns.push(UnixStream::connect(&path).unwrap());
            server.serve(wake_r.as_fd(), Duration::from_millis(5));
        }
        assert_eq!(server.clients.len(), MAX_CLIENTS);
        // The newest connection is among the kept ones and is served.
        let last = conns.last_mut().unwrap();
        last.write_all(&protocol::encode(&protocol::request(1, "help", &[])))
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..20 {
            got.extend(server.serve(wake_r.as_fd(), Duration::from_millis(20)));
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got.len(), 1);
        server.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_signal_wakes_the_wait() {
        let dir = temp_dir("wake");
        let path = dir.join("g.ctl");
        let mut server = ControlServer::bind(&path, 0o600).unwrap();
        let (wake_r, wake_w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&wake_w, &[1]).unwrap();
        let t = Instant::now();
        server.serve(wake_r.as_fd(), Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
        server.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
