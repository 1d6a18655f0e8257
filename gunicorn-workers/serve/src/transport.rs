//! The byte stream a connection is served over.
//!
//! Every worker class reads request heads, bodies and writes responses through a
//! [`Transport`], never through a bare socket, so that a stream that transforms bytes (TLS)
//! is one more implementation of this trait rather than a change in each worker class. A
//! plain socket implements it with the defaults: non-blocking `recv`/`send` on its descriptor
//! and `shutdown(SHUT_WR)`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use gunicorn_http::TlsInfo;

use nix::errno::Errno;
use nix::sys::socket::{recv, send, MsgFlags};

/// A connection's byte stream. `Read`/`Write` may block (how long is the stream's business: a
/// socket timeout, a green socket's timeout, a pool thread's bounded wait); the `try_` forms
/// never wait. The descriptor is for waiting on readiness and for socket options.
pub trait Transport: Read + Write + AsFd + Send {
    /// One read that does not wait: `Ok(None)` when nothing can be read now, `Ok(Some(0))` at
    /// the end of input.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        recv_now(self.as_fd(), buf)
    }

    /// One write that does not wait: `Ok(None)` when the send buffer is full.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        send_now(self.as_fd(), buf)
    }

    /// Sends what the stream holds queued for the socket (a TLS stream's encrypted records),
    /// without waiting: true when nothing is left. A plain socket queues nothing.
    fn try_flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// Ends our sending side: the client sees the end of the response while we may still read
    /// what it sends (the lingering close).
    fn shutdown_write(&mut self) -> io::Result<()> {
        shutdown_write_fd(self.as_fd())
    }

    /// Whether bytes written to the descriptor reach the client as they are, so the response
    /// may bypass the stream (`sendfile(2)` for `wsgi.file_wrapper`, the timeout's error page
    /// written from another thread). False for a stream that encrypts.
    fn passthrough(&self) -> bool {
        true
    }

    /// Whether input is buffered inside the stream, readable with no new bytes on the socket
    /// (decrypted TLS records): a worker waiting for readiness must read it first.
    fn has_buffered_input(&self) -> bool {
        false
    }

    /// A TLS handshake is under way: a read that fails or ends now is a failed handshake
    /// (reported with `tls::handshake_failed`), not a client leaving between requests.
    fn in_handshake(&self) -> bool {
        false
    }

    /// What the TLS handshake established (None on a plain socket, or before the handshake).
    fn tls_info(&self) -> Option<Arc<TlsInfo>> {
        None
    }
}

impl Transport for gunicorn_core::Stream {}
impl Transport for TcpStream {}
impl Transport for UnixStream {}

/// One `recv` with `MSG_DONTWAIT`, retried on EINTR. `Ok(None)` = it would block.
pub fn recv_now(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `send` with `MSG_DONTWAIT` (and no SIGPIPE), retried on EINTR. `Ok(None)` = it would
/// block.
pub fn send_now(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<Option<usize>> {
    loop {
        match send(
            fd.as_raw_fd(),
            buf,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `shutdown(SHUT_WR)` on a socket.
pub fn shutdown_write_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
    nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Write)
        .map_err(io::Error::from)
}

/// Whether the client already sent bytes that wait unread (a pipelined request, say), without
/// waiting. Bytes it takes are dropped: it is asked only before a close. (A `poll` would also
/// report the client's FIN as readable.)
pub fn has_unread_input(io: &mut dyn Transport) -> bool {
    let mut scratch = [0u8; 512];
    matches!(io.try_read(&mut scratch), Ok(Some(n)) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_that_do_not_wait() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b): (Box<dyn Transport>, Box<dyn Transport>) = (Box::new(a), Box::new(b));
        let mut buf = [0u8; 16];
        assert_eq!(a.try_read(&mut buf).unwrap(), None);
        assert!(!has_unread_input(a.as_mut()));
        assert_eq!(b.try_write(b"hello").unwrap(), Some(5));
        assert!(has_unread_input(a.as_mut()));
        b.write_all(b"x").unwrap();
        assert_eq!(a.try_read(&mut buf).unwrap(), Some(1));
        b.shutdown_write().unwrap();
        assert_eq!(a.try_read(&mut buf).unwrap(), Some(0));
        assert!(a.passthrough());
    }
}
