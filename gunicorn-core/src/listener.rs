//! Listening sockets and accepted connections.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// A bound, listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP over IPv4 or IPv6.
    Tcp(TcpListener),
    /// A unix-domain stream socket bound at `path`.
    Unix {
        /// The socket.
        listener: UnixListener,
        /// The filesystem path it is bound to.
        path: PathBuf,
    },
}

/// Where a listener is bound: what `SERVER_NAME`/`SERVER_PORT` are computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

/// The peer of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A unix-socket peer (always unnamed in practice; gunicorn reports `REMOTE_ADDR = ''`).
    Unix,
}

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain.
    Unix(UnixStream),
}

impl Listener {
    /// Accepts one connection. The returned stream is blocking and CLOEXEC (std uses `accept4`).
    /// On Linux a socket from `accept4` never inherits the listener's O_NONBLOCK (accept(2),
    /// NOTES), so the `FIONBIO` ioctl that clears it elsewhere is skipped: one syscall less per
    /// connection.
    pub fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept()?;
                #[cfg(not(target_os = "linux"))]
                s.set_nonblocking(false)?;
                Ok((Stream::Tcp(s), PeerAddr::Tcp(addr)))
            }
            Listener::Unix { listener, .. } => {
                let (s, _) = listener.accept()?;
                #[cfg(not(target_os = "linux"))]
                s.set_nonblocking(false)?;
                Ok((Stream::Unix(s), PeerAddr::Unix))
            }
        }
    }

    /// Sets or clears O_NONBLOCK.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(on),
            Listener::Unix { listener, .. } => listener.set_nonblocking(on),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<LocalAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(LocalAddr::Tcp),
            Listener::Unix { path, .. } => Ok(LocalAddr::Unix(path.clone())),
        }
    }

    /// The address as gunicorn logs it in `Listening at:` (`http://127.0.0.1:8000`,
    /// `http://[::1]:8000`, `unix:/tmp/g.sock`).
    pub fn url(&self) -> String {
        match self.local_addr() {
            Ok(LocalAddr::Tcp(SocketAddr::V4(a))) => format!("http://{}:{}", a.ip(), a.port()),
            Ok(LocalAddr::Tcp(SocketAddr::V6(a))) => format!("http://[{}]:{}", a.ip(), a.port()),
            Ok(LocalAddr::Unix(p)) => format!("unix:{}", p.display()),
            Err(_) => "unknown".into(),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Stream {
    /// Shuts down the write side (used for gunicorn's graceful close).
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    /// Sets a read timeout (None = block forever).
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Sets a write timeout (None = block forever).
    pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }

    /// Sets or clears O_NONBLOCK.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
