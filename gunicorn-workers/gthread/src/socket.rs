//! Client sockets as the gthread worker uses them.
//!
//! Accepted sockets stay in blocking mode for their whole life (so the bridge's `sendfile(2)`
//! just blocks), and every read and write of ours is the transport's non-blocking form
//! (`MSG_DONTWAIT` on a plain socket, gunicorn-serve's `Transport`): the poller gets
//! non-blocking reads without an `fcntl` per hand-over, and a pool thread that meets `EAGAIN`
//! waits in `poll(2)` with a bound instead of blocking forever on a stalled client.
//!
//! The transport may be a TLS stream (gunicorn-serve's `tls::TlsStream`): its non-blocking
//! forms drive the handshake and the records, and a blocking write here also pushes out the
//! records it leaves queued, so that a response never ends inside the TLS layer.

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
    /// The transport encrypts (TLS): a write may leave records queued inside it.
    encrypts: bool,
}

impl ClientSocket {
    pub fn new(inner: Box<dyn Transport>) -> ClientSocket {
        let encrypts = !inner.passthrough();
        ClientSocket { inner, encrypts }
    }

    /// Waits (within this thread's I/O limit) until the records a TLS stream holds are in the
    /// socket (`Transport::try_flush`).
    fn flush_records(&mut self) -> io::Result<()> {
        loop {
            if self.inner.try_flush()? {
                return Ok(());
            }
            wait_ready(self.inner.as_fd(), PollFlags::POLLOUT)?;
        }
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
    /// Returns once the bytes are in the socket, as a blocking `send` does: over TLS, the
    /// records the write made are pushed out too (nobody flushes after a response, and bytes
    /// left inside the TLS stream would never reach the client).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.inner.try_write(buf)? {
                if self.encrypts {
                    self.flush_records()?;
                }
                return Ok(n);
            }
            wait_ready(self.inner.as_fd(), PollFlags::POLLOUT)?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.encrypts {
            self.flush_records()?;
        }
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

    fn try_flush(&mut self) -> io::Result<bool> {
        self.inner.try_flush()
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn passthrough(&self) -> bool {
        !self.encrypts
    }

    fn has_buffered_input(&self) -> bool {
        self.inner.has_buffered_input()
    }

    fn in_handshake(&self) -> bool {
        self.inner.in_handshake()
    }

    fn tls_info(&self) -> Option<std::sync::Arc<gunicorn_http::TlsInfo>> {
        self.inner.tls_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gunicorn_serve::transport::send_now;
    use std::os::unix::net::UnixStream;

    /// A transport that queues what it is given, as a TLS stream queues its records: a write
    /// takes up to 64 KiB, sends what the socket takes now and keeps the rest, which goes out
    /// before the next write's bytes (and on an empty write).
    struct Queued {
        sock: UnixStream,
        pending: Vec<u8>,
    }

    impl Queued {
        /// Sends what is queued; true when all of it went.
        fn push(&mut self) -> io::Result<bool> {
            while !self.pending.is_empty() {
                match send_now(self.sock.as_fd(), &self.pending)? {
                    Some(n) => drop(self.pending.drain(..n)),
                    None => return Ok(false),
                }
            }
            Ok(true)
        }
    }

    impl Read for Queued {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            unreachable!("reads are try_read")
        }
    }

    impl Write for Queued {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            unreachable!("writes are try_write")
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl AsFd for Queued {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.sock.as_fd()
        }
    }

    impl Transport for Queued {
        fn try_write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
            if !self.push()? {
                return Ok(None);
            }
            let n = buf.len().min(64 * 1024);
            self.pending.extend_from_slice(&buf[..n]);
            self.push()?;
            Ok(Some(n))
        }

        fn try_flush(&mut self) -> io::Result<bool> {
            self.push()
        }

        fn passthrough(&self) -> bool {
            false
        }
    }

    /// Every byte written to an encrypting transport reaches the client by the time the write
    /// returns, without a later write or flush (nobody flushes after a response), while the
    /// connection stays open: here one write that the socket cannot take at once, to a client
    /// that starts reading late.
    #[test]
    fn writes_push_out_what_the_transport_queued() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::SndBuf, &4096).unwrap();
        let size = 48 * 1024;
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            theirs
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            let mut got = 0;
            let mut buf = vec![0u8; 64 * 1024];
            while got < size {
                match (&theirs).read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            got
        });
        set_io_limit(IoLimit {
            per_wait: Some(Duration::from_secs(5)),
            deadline: None,
        });
        let mut sock = ClientSocket::new(Box::new(Queued {
            sock: ours,
            pending: Vec::new(),
        }));
        assert!(!sock.passthrough());
        sock.write_all(&vec![7u8; size]).unwrap();
        // The connection stays open (a keep-alive response) until the client has it all.
        assert_eq!(reader.join().unwrap(), size);
        drop(sock);
    }
}
