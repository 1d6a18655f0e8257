//! A [`Transport`] over a cooperative Python socket (gevent's or eventlet's).
//!
//! Reads and writes call the socket's own `recv` / `sendall`, so a would-block turns into a
//! greenlet switch to the hub instead of blocking the thread: the bridge can run unchanged on
//! it. The bridge is told so ([`Exchange::set_cooperative`]) and keeps the GIL during socket
//! work; attaching here is then pyo3's cheap "already attached" path.
//!
//! [`Transport`]: gunicorn_python::wsgi::Transport
//! [`Exchange::set_cooperative`]: gunicorn_python::wsgi::Exchange::set_cooperative

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::sys;

struct Inner {
    sock: Py<PyAny>,
    recv: Py<PyAny>,
    sendall: Py<PyAny>,
    settimeout: Py<PyAny>,
    fd: RawFd,
    /// `greenlet.GreenletExit`, the exception that kills a greenlet.
    greenlet_exit: Py<PyAny>,
    /// A `GreenletExit` raised inside a socket call (the greenlet was killed): the connection
    /// stops and its greenlet re-raises it once the request has unwound, so it ends as killed.
    /// (Other exceptions, a library `Timeout` the app set around its reads included, go back
    /// to the app through the bridge with their own type.)
    fatal: Mutex<Option<PyErr>>,
    /// A read or write failed since the last `clear_failed` (the stream position is unknown:
    /// the connection cannot carry another request).
    failed: AtomicBool,
    /// When set, every read and write waits at most until then (see `set_deadline`).
    deadline: Mutex<Option<Instant>>,
}

/// A cooperative socket. Clones share the same socket.
#[derive(Clone)]
pub struct GreenSocket(Arc<Inner>);

impl GreenSocket {
    /// Wraps `sock`, a connected gevent/eventlet socket object; `greenlet_exit` is
    /// `greenlet.GreenletExit`.
    pub fn new(sock: &Bound<'_, PyAny>, greenlet_exit: &Py<PyAny>) -> PyResult<GreenSocket> {
        let fd: RawFd = sock
            .call_method0(pyo3::intern!(sock.py(), "fileno"))?
            .extract()?;
        if fd < 0 {
            return Err(pyo3::exceptions::PyOSError::new_err("socket is closed"));
        }
        Ok(GreenSocket(Arc::new(Inner {
            sock: sock.clone().unbind(),
            recv: sock.getattr(pyo3::intern!(sock.py(), "recv"))?.unbind(),
            sendall: sock.getattr(pyo3::intern!(sock.py(), "sendall"))?.unbind(),
            settimeout: sock
                .getattr(pyo3::intern!(sock.py(), "settimeout"))?
                .unbind(),
            fd,
            greenlet_exit: greenlet_exit.clone_ref(sock.py()),
            fatal: Mutex::new(None),
            failed: AtomicBool::new(false),
            deadline: Mutex::new(None),
        })))
    }

    /// The Python socket object.
    pub fn object(&self, py: Python<'_>) -> Py<PyAny> {
        self.0.sock.clone_ref(py)
    }

    /// The socket's file descriptor (owned by the Python object).
    pub fn raw_fd(&self) -> RawFd {
        self.0.fd
    }

    /// Bounds every following read and write by `timeout` (None: wait as long as it takes).
    /// A read that times out fails with `ErrorKind::TimedOut`.
    pub fn set_timeout(&self, py: Python<'_>, timeout: Option<Duration>) -> io::Result<()> {
        let arg = timeout.map(|t| t.as_secs_f64());
        self.0
            .settimeout
            .bind(py)
            .call1((arg,))
            .map(drop)
            .map_err(|e| self.failed(py, e))
    }

    /// Bounds the following reads and writes *together*: each one waits at most until
    /// `deadline`, and one started after it fails at once with `ErrorKind::TimedOut`. A
    /// per-call timeout would not bound a stream that reads several times per call (TLS reads
    /// records until it has plaintext): a client trickling bytes would renew it forever. None:
    /// back to the timeout of [`GreenSocket::set_timeout`] (which the deadline's calls changed).
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        *self.0.deadline.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
    }

    /// Sets the socket's timeout to what is left before the deadline, if one is set.
    fn apply_deadline(&self, py: Python<'_>) -> io::Result<()> {
        let Some(deadline) = *self.0.deadline.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.0.failed.store(true, Ordering::Relaxed);
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.0
            .settimeout
            .bind(py)
            .call1((left.as_secs_f64(),))
            .map(drop)
            .map_err(|e| self.failed(py, e))
    }

    /// Closes the Python socket (the library also forgets its watchers for the fd).
    pub fn close(&self, py: Python<'_>) {
        let _ = self
            .0
            .sock
            .bind(py)
            .call_method0(pyo3::intern!(py, "close"));
    }

    /// Forgets earlier failures (timeouts while waiting for a request head are expected).
    pub fn clear_failed(&self) {
        self.0.failed.store(false, Ordering::Relaxed);
    }

    /// Whether a read or write failed since `clear_failed`.
    pub fn has_failed(&self) -> bool {
        self.0.failed.load(Ordering::Relaxed)
    }

    /// The exception that killed the connection greenlet, if one came through a socket call.
    pub fn take_fatal(&self) -> Option<PyErr> {
        self.0
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Whether an exception that kills the greenlet came through a socket call (not taken).
    pub fn has_fatal(&self) -> bool {
        self.0
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Turns a Python exception from a socket call into an `io::Error` that carries it (pyo3
    /// gives the original exception back when the bridge converts the error for the app, so a
    /// `Timeout` or `GreenletExit` raised into a request keeps its type).
    fn failed(&self, py: Python<'_>, e: PyErr) -> io::Error {
        self.0.failed.store(true, Ordering::Relaxed);
        if e.is_instance(py, self.0.greenlet_exit.bind(py)) {
            let mut fatal = self.0.fatal.lock().unwrap_or_else(|p| p.into_inner());
            if fatal.is_none() {
                *fatal = Some(e.clone_ref(py));
            }
        }
        io::Error::from(e)
    }
}

impl Read for GreenSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Python::attach(|py| {
            self.apply_deadline(py)?;
            let data = self
                .0
                .recv
                .bind(py)
                .call1((buf.len(),))
                .map_err(|e| self.failed(py, e))?;
            let bytes = data
                .cast::<PyBytes>()
                .map_err(|_| io::Error::other("socket.recv() did not return bytes"))?
                .as_bytes();
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok(n)
        })
    }
}

impl Write for GreenSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Python::attach(|py| {
            self.apply_deadline(py)?;
            self.0
                .sendall
                .bind(py)
                .call1((PyBytes::new(py, buf),))
                .map_err(|e| self.failed(py, e))?;
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Its waits switch greenlets: the `try_` forms and the shutdown work on the descriptor
/// (non-blocking, as the hub keeps it) and need no Python.
impl gunicorn_serve::Transport for GreenSocket {}

impl AsFd for GreenSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        sys::borrow_socket_fd(self.0.fd, &self.0.sock)
    }
}
