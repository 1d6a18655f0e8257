//! What passes between the event loop and the pool threads: a request whose head was parsed
//! ([`Job`], to a pool thread), the connection coming back after its response ([`Done`], to
//! the event loop), and the connection's `gunicorn.socket` ([`PySocket`]) that travels with
//! both. An HTTP/2 stream's request ([`StreamJob`]) comes from the HTTP/2 thread instead, and
//! nothing of it goes back to the event loop.

use gunicorn_http::{ConnInfo, ProxyInfo, Request};
use gunicorn_serve::h2::StreamJob;
use gunicorn_serve::Transport;
use pyo3::prelude::*;

/// A Python `socket.socket` on a duplicate of a connection's descriptor.
pub type PySocket = Py<PyAny>;

/// What a pool thread runs.
pub enum Work {
    /// An HTTP/1 request, with its connection.
    Request(Job),
    /// An HTTP/2 stream's request.
    Stream(StreamJob),
}

/// A request whose head was read and parsed by the poller.
pub struct Job {
    /// The connection's slot in the poller.
    pub token: usize,
    pub io: Box<dyn Transport>,
    pub req: Box<Request>,
    pub conn: ConnInfo,
    /// What the connection's PROXY header said, if it had one.
    pub proxy: Option<ProxyInfo>,
    /// The connection's `gunicorn.socket`, once its first request made it.
    pub socket: Option<PySocket>,
    /// Bytes read past the head (body start, pipelined requests).
    pub after_head: Vec<u8>,
    /// The response must say `Connection: close` and the connection closes after it.
    pub force_close: bool,
}

/// A connection coming back from a pool thread.
pub struct Done {
    pub token: usize,
    /// None when the socket could not be recovered (closed).
    pub io: Option<Box<dyn Transport>>,
    /// The connection's `gunicorn.socket` (None once closed).
    pub socket: Option<PySocket>,
    /// What was read past this request: the next pipelined request(s).
    pub leftover: Vec<u8>,
    /// The connection may carry another request.
    pub keep_alive: bool,
    /// Close with a lingering close (unread request bytes may remain).
    pub linger: bool,
    /// The pool thread read from the socket (a request body): it may hold bytes no readiness
    /// event will announce.
    pub socket_read: bool,
    /// The request, done with: its buffers serve the connection's next request
    /// (`HeadReader::recycle`).
    pub req: Option<Box<Request>>,
}

impl Done {
    /// The connection is closed already: only its slot is left to free.
    pub fn closed(token: usize) -> Done {
        Done {
            token,
            io: None,
            socket: None,
            leftover: Vec::new(),
            keep_alive: false,
            linger: false,
            socket_read: false,
            req: None,
        }
    }
}

/// Closes a `gunicorn.socket` explicitly: a socket left to the garbage collector formats an
/// "unclosed socket" ResourceWarning even when warnings are filtered out.
pub fn close_socket(py: Python<'_>, socket: PySocket) {
    let _ = socket.bind(py).call_method0(pyo3::intern!(py, "close"));
}
