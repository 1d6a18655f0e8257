//! What a locked step of a connection decides, as plain data: bytes to write, Futures to
//! resolve with what, a request to hand to the app, a finished response to report. Carried out
//! by `apply.rs` once the lock is released.

use gunicorn_http::{ConnInfo, Request};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A request handed to the application once the lock is released.
pub(crate) struct Start {
    pub generation: u64,
    pub scope: Py<PyDict>,
    /// A `websocket` scope (else `http`).
    pub websocket: bool,
}

/// How to resolve a waiting Future.
pub(crate) enum Resolution {
    /// `send()` may go on.
    Nothing,
    /// `receive()` gets body bytes.
    Body { bytes: Vec<u8>, more: bool },
    /// `receive()` gets `http.disconnect`.
    Disconnect,
    /// A WebSocket `receive()` gets its next event.
    WebSocket(Inbound),
}

/// An event for the app's `receive()`.
pub(crate) enum Inbound {
    Connect,
    Text(String),
    Bytes(Vec<u8>),
    Disconnect { code: u16, reason: String },
}

/// A finished response, for the access log and post_request (run without the lock).
pub(crate) struct Finished {
    pub req: Box<Request>,
    pub info: ConnInfo,
    pub proxy: Option<gunicorn_http::ProxyInfo>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub sent: u64,
    pub duration: std::time::Duration,
    pub hook_req: Option<Py<PyAny>>,
}

/// What to do in Python once the connection's lock is released, in this order.
#[derive(Default)]
pub(crate) struct After {
    /// Bytes for the socket as they are (TLS records already made).
    pub wire: Vec<u8>,
    /// Plaintext for the connection (encrypted first under TLS).
    pub write: Vec<u8>,
    pub resolve: Vec<(Py<PyAny>, Resolution)>,
    pub pause_reading: Option<bool>,
    pub finished: Option<Finished>,
    pub start: Option<Start>,
    /// Parse what already arrived past the response just completed (pipelined requests), from
    /// the protocol, at the loop's next turn.
    pub resume: bool,
    pub close: bool,
    /// Close gracefully (gunicorn's `close_graceful`): our side shut after the write, what the
    /// client still sends read and dropped until it closes or `linger::LINGER_TIME` passes.
    /// Closing at once with unread bytes (a request body the app did not read) makes the
    /// kernel answer with a RST, which can destroy the response before the client reads it.
    pub linger: bool,
    /// The app's task, to cancel after `--asgi-disconnect-grace-period`: the client left.
    pub cancel_task: Option<Py<PyAny>>,
}

impl After {
    pub fn is_empty(&self) -> bool {
        self.write.is_empty()
            && self.wire.is_empty()
            && self.resolve.is_empty()
            && self.pause_reading.is_none()
            && self.finished.is_none()
            && self.start.is_none()
            && !self.resume
            && !self.close
            && !self.linger
            && self.cancel_task.is_none()
    }
}
