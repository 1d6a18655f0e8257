//! Client sockets as the gthread worker uses them.
//!
//! Accepted sockets stay in blocking mode for their whole life (so the bridge's `sendfile(2)`
//! just blocks), and every read and write of ours is the transport's non-blocking form
//! (`MSG_DONTWAIT` on a plain socket, gunicorn-serve's `Transport`): the poller gets
//! non-blocking reads without an `fcntl` per hand-over, and a pool thread that meets `EAGAIN`
//! waits in `poll(2)` with a bound instead of blocking forever on a stalled client.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use gunicorn_serve::Transport;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How long a pool thread waits for a stalled client.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoLimit {
    /// Each wait for readiness (`--timeout`; None = no bound).
    pub per_wait: Option<Duration>,
    /// An overall deadline (draining an unread body).
    pub deadline: Option<Instant>,
}

thread_local! {
    /// The limit for the socket I/O of the request this pool thread is running. A thread-local
    /// because the bridge owns the socket during the request; it runs on this thread.
    static IO_LIMIT: Cell<IoLimit> = const { Cell::new(IoLimit { per_wait: None, deadline: None }) };
}

thread_local! {
    /// This pool thread's current request waited for its client (see `pool::Queue::slow`).
    static WAITED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread's current request waited for its client: the request is slow.
///
/// (Waking another thread to run the event loop at the moment a request starts waiting was
/// tried: with 1 MiB uploads it cost more context switches than it saved, 25 % more CPU per
/// request.)
pub fn waited() -> bool {
    WAITED.with(Cell::get)
}

/// Forgets that the previous request waited (a new request starts on this thread).
pub fn clear_waited() {
    WAITED.with(|w| w.set(false));
}

/// Sets this thread's I/O limit; returns the previous one.
pub fn set_io_limit(limit: IoLimit) -> IoLimit {
    IO_LIMIT.with(|l| l.replace(limit))
}

/// An accepted client connection: its transport's non-blocking reads and writes, with a
/// bounded wait in `poll(2)` when a pool thread must block ([`IoLimit`]).
pub struct ClientSocket {
    inner: Box<dyn Transport>,
}

impl ClientSocket {
    pub fn new(inner: Box<dyn Transport>) -> ClientSocket {
        ClientSocket { inner }
    }
}

/// Waits until `fd` is ready for `flags`, within this thread's I/O limit.
fn wait_ready(fd: BorrowedFd<'_>, flags: PollFlags) -> io::Result<()> {
    WAITED.with(|w| w.set(true));
    let limit = IO_LIMIT.with(Cell::get);
    let now = Instant::now();
    let mut wait = limit.per_wait;
    if let Some(deadline) = limit.deadline {
        let left = deadline.saturating_duration_since(now);
        wait = Some(wait.map_or(left, |w| w.min(left)));
    }
    let timeout = match wait {
        None => PollTimeout::NONE,
        Some(w) => PollTimeout::try_from(w.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX),
    };
    loop {
        let mut fds = [PollFd::new(fd, flags)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for the client",
                ))
            }
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl Read for ClientSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.inner.try_read(buf)? {
                return Ok(n);
            }
            wait_ready(self.inner.as_fd(), PollFlags::POLLIN)?;
        }
    }
}

impl Write for ClientSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.inner.try_write(buf)? {
                return Ok(n);
            }
            wait_ready(self.inner.as_fd(), PollFlags::POLLOUT)?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for ClientSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl Transport for ClientSocket {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.inner.try_read(buf)
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        self.inner.try_write(buf)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn passthrough(&self) -> bool {
        self.inner.passthrough()
    }
}
