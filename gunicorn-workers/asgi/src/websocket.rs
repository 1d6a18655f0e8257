//! WebSocket connections of the asgi worker (ASGI WebSocket spec 2.4, RFC 6455): the upgrade
//! request becomes a `websocket` scope; the app accepts (101) or refuses (403); frames are
//! parsed and written by `gunicorn-websocket` (sans-IO, over tungstenite's codec) and reach the
//! app as `websocket.receive` events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gunicorn_core::log_debug;
use gunicorn_http::{error_page, Request};
use gunicorn_websocket::{
    offer, Event, HandshakeError, Message, Offer, Session, SessionConfig, SessionState, WsError,
};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::connection::{After, Connection, Phase, Resolution};
use crate::protocol::{resolve, run_after};
use crate::ready::Ready;
use crate::server::log_app_error;

/// Events waiting for the app before reading from the socket pauses (gunicorn stops at 32).
pub(crate) const EVENT_BACKLOG: usize = 32;
/// Bytes that may arrive before the app accepted; more closes the connection.
const PRE_ACCEPT_LIMIT: usize = 64 * 1024;
/// After our close frame, how long the peer gets to answer with its own.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// A connection we failed (1002, 1007, 1009) closes once the peer has been silent this long
/// (or at [`CLOSE_WAIT`]).
const DRAIN_QUIET: Duration = Duration::from_secs(1);

/// An event for the app's `receive()`.
pub(crate) enum Inbound {
    Connect,
    Text(String),
    Bytes(Vec<u8>),
    Disconnect { code: u16, reason: String },
}

/// Where the WebSocket is.
enum Stage {
    /// The app has not answered the upgrade yet; bytes the client sent wait.
    Handshake { pending: Vec<u8> },
    /// Accepted: frames flow.
    Open(Box<Session>),
    /// Refused with an HTTP response, or failed before accepting.
    Refused,
    /// We failed the connection (RFC 6455 §7.1.7: a protocol error, a message over the size
    /// limit) and our close frame is written: what the peer still sends (the rest of a large
    /// message, its close frame) is read and dropped until it goes quiet. Closing at once
    /// would leave its bytes unread, and the kernel's RST could destroy our close frame
    /// before the peer reads it, so that it would see 1006 instead of the code.
    Draining { since: Instant, last_read: Instant },
}

/// One upgraded connection.
pub(crate) struct WsConn {
    pub generation: u64,
    offer: Offer,
    stage: Stage,
    events: VecDeque<Inbound>,
    waiter: Option<Py<PyAny>>,
    pub task: Option<Py<PyAny>>,
    max_message: usize,
    /// The client is gone (or the session ended): `websocket.disconnect` was queued.
    gone: bool,
    /// Our close frame went out at this time: the transport closes if the peer does not answer.
    closing_since: Option<Instant>,
    /// The whole exchange ended: the caller closes the transport.
    finished: bool,
}

/// `Some` when `req` asks for a WebSocket: the offer, or why the upgrade is malformed.
pub(crate) fn upgrade_request(req: &Request) -> Option<Result<Offer, HandshakeError>> {
    match offer(req) {
        Ok(None) => None,
        Ok(Some(o)) => Some(Ok(o)),
        Err(e) => Some(Err(e)),
    }
}

/// The HTTP refusal of a malformed upgrade (400, or 426 with the version we speak).
pub(crate) fn refusal(e: &HandshakeError) -> Vec<u8> {
    let status = e.status();
    let reason = crate::reason::phrase(status);
    let mut page = error_page(status, reason, &e.to_string());
    if let Some(end) = page.windows(4).position(|w| w == b"\r\n\r\n") {
        let mut extra = Vec::new();
        for (n, v) in e.response_headers() {
            extra.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        page.splice(end + 2..end + 2, extra);
    }
    page
}

impl WsConn {
    pub(crate) fn new(
        generation: u64,
        offer: Offer,
        after_head: Vec<u8>,
        max_message: usize,
    ) -> WsConn {
        let mut events = VecDeque::new();
        events.push_back(Inbound::Connect);
        WsConn {
            generation,
            offer,
            stage: Stage::Handshake {
                pending: after_head,
            },
            events,
            waiter: None,
            task: None,
            max_message,
            gone: false,
            closing_since: None,
            finished: false,
        }
    }

    /// Bytes from the socket.
    pub(crate) fn received(&mut self, data: &[u8], after: &mut After) {
        match &mut self.stage {
            Stage::Handshake { pending } => {
                pending.extend_from_slice(data);
                if pending.len() > PRE_ACCEPT_LIMIT {
                    self.gone(1009, String::new(), after);
                    self.finished = true;
                }
            }
            Stage::Open(session) => {
                let result = session.feed(data);
                after.write.extend_from_slice(&session.take_output());
                self.collect(result, after);
            }
            Stage::Draining { last_read, .. } => *last_read = Instant::now(),
            Stage::Refused => {}
        }
    }

    /// Moves the session's events to the app's queue; a protocol failure ends it.
    fn collect(&mut self, result: Result<(), WsError>, after: &mut After) {
        let Stage::Open(session) = &mut self.stage else {
            return;
        };
        while let Some(ev) = session.next_event() {
            match ev {
                Event::Message(Message::Text(t)) => self.events.push_back(Inbound::Text(t)),
                Event::Message(Message::Binary(b)) => self.events.push_back(Inbound::Bytes(b)),
                Event::Closed { code, reason } => {
                    self.events.push_back(Inbound::Disconnect { code, reason });
                    self.gone = true;
                }
            }
        }
        let failed = result.is_err();
        if let Err(e) = result {
            log_debug!("WebSocket closed: {e}");
            let code = e.close_code().unwrap_or(1002);
            if !self.gone {
                self.events.push_back(Inbound::Disconnect {
                    code,
                    reason: String::new(),
                });
                self.gone = true;
            }
        }
        if failed {
            let now = Instant::now();
            self.stage = Stage::Draining {
                since: now,
                last_read: now,
            };
        } else if session.state() == SessionState::Closed {
            self.finished = true;
        }
        self.wake(after);
    }

    /// Hands the next event to a waiting `receive()`.
    fn wake(&mut self, after: &mut After) {
        if self.waiter.is_some() && !self.events.is_empty() {
            let w = self.waiter.take().expect("checked");
            let ev = self.events.pop_front().expect("checked");
            after.resolve.push((w, Resolution::WebSocket(ev)));
        }
    }

    fn gone(&mut self, code: u16, reason: String, after: &mut After) {
        if !self.gone {
            self.gone = true;
            self.events.push_back(Inbound::Disconnect { code, reason });
        }
        self.wake(after);
    }

    /// The transport closed (connection_lost): 1006, abnormal closure (RFC 6455 §7.1.5).
    pub(crate) fn disconnected(&mut self, after: &mut After) {
        self.finished = true;
        self.gone(1006, String::new(), after);
    }

    /// The connection should be closed now.
    pub(crate) fn is_closed(&self) -> bool {
        self.finished
    }

    /// Reading should pause: the app has this many events it did not take.
    pub(crate) fn backlog(&self) -> usize {
        self.events.len()
    }

    /// Our close frame went out more than [`CLOSE_WAIT`] ago without an answer.
    pub(crate) fn close_overdue(&self, now: Instant) -> bool {
        if let Stage::Draining { since, last_read } = self.stage {
            return now.duration_since(last_read) >= DRAIN_QUIET
                || now.duration_since(since) >= CLOSE_WAIT;
        }
        self.closing_since
            .is_some_and(|t| now.duration_since(t) >= CLOSE_WAIT)
    }

    /// A graceful stop: close 1001 "going away" (RFC 6455 §7.4.1), or nothing before accept.
    pub(crate) fn going_away(&mut self, after: &mut After) {
        if let Stage::Open(session) = &mut self.stage {
            if session.close(1001, "").is_ok() {
                after.write.extend_from_slice(&session.take_output());
                self.closing_since = Some(Instant::now());
            }
        }
    }
}

/// The Python dict of one event.
pub(crate) fn event(py: Python<'_>, ev: Inbound) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    match ev {
        Inbound::Connect => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?;
        }
        Inbound::Text(t) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            d.set_item(intern!(py, "text"), t)?;
        }
        Inbound::Bytes(b) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            d.set_item(intern!(py, "bytes"), PyBytes::new(py, &b))?;
        }
        Inbound::Disconnect { code, reason } => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            d.set_item(intern!(py, "code"), code)?;
            d.set_item(intern!(py, "reason"), reason)?;
        }
    }
    Ok(d.into_any().unbind())
}

/// `receive` and `send` of one WebSocket.
#[pyclass(module = "gunicorn_asgi", name = "WebSocketCycle", frozen)]
pub struct WsCycle {
    conn: Arc<Connection>,
    generation: u64,
}

impl WsCycle {
    pub(crate) fn new(
        py: Python<'_>,
        conn: Arc<Connection>,
        generation: u64,
    ) -> PyResult<Py<WsCycle>> {
        Py::new(py, WsCycle { conn, generation })
    }

    /// Runs `f` on this cycle's WebSocket, if the connection still is it.
    fn with_ws<R>(
        &self,
        after: &mut After,
        f: impl FnOnce(&mut WsConn, &mut After) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut st = self.conn.lock();
        let read_paused = st.read_paused;
        let Phase::WebSocket(ws) = &mut st.phase else {
            return Err(PyOSError::new_err("the client disconnected"));
        };
        if ws.generation != self.generation {
            return Err(PyOSError::new_err("the client disconnected"));
        }
        let r = f(ws, after)?;
        let backlog = ws.backlog();
        if ws.finished {
            after.close = true;
        }
        // Reading resumes once the app took most of the backlog.
        if read_paused && backlog < EVENT_BACKLOG / 2 {
            st.read_paused = false;
            after.pause_reading = Some(false);
        }
        Ok(r)
    }

    fn accept(&self, py: Python<'_>, msg: &Bound<'_, PyDict>, after: &mut After) -> PyResult<()> {
        let subprotocol: Option<String> = match msg.get_item(intern!(py, "subprotocol"))? {
            Some(s) if !s.is_none() => Some(s.extract()?),
            _ => None,
        };
        let headers = match msg.get_item(intern!(py, "headers"))? {
            Some(h) => byte_pairs(&h)?,
            None => Vec::new(),
        };
        self.with_ws(after, |ws, after| {
            let Stage::Handshake { pending } = &mut ws.stage else {
                return Err(PyRuntimeError::new_err(
                    "websocket.accept after the handshake",
                ));
            };
            let pending = std::mem::take(pending);
            match ws.offer.accept(subprotocol.as_deref(), &headers) {
                Ok(head) => {
                    after.write.extend_from_slice(&head);
                    let mut session = Box::new(Session::new(SessionConfig {
                        max_message_size: ws.max_message,
                    }));
                    let result = session.feed(&pending);
                    after.write.extend_from_slice(&session.take_output());
                    ws.stage = Stage::Open(session);
                    ws.collect(result, after);
                    Ok(())
                }
                Err(e) => {
                    ws.stage = Stage::Refused;
                    after.write.extend_from_slice(&refusal(&e));
                    ws.finished = true;
                    Err(PyValueError::new_err(e.to_string()))
                }
            }
        })
    }

    /// `websocket.send`: True when the caller should wait for the transport to drain.
    fn send_message(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyDict>,
        after: &mut After,
    ) -> PyResult<bool> {
        let text = msg.get_item(intern!(py, "text"))?.filter(|t| !t.is_none());
        let bytes = msg.get_item(intern!(py, "bytes"))?.filter(|b| !b.is_none());
        let message = match (text, bytes) {
            (Some(t), _) => Message::Text(
                t.cast::<PyString>()
                    .map_err(|_| PyTypeError::new_err("'text' must be a str"))?
                    .to_str()?
                    .to_owned(),
            ),
            (None, Some(b)) => Message::Binary(
                b.cast::<PyBytes>()
                    .map_err(|_| PyTypeError::new_err("'bytes' must be bytes"))?
                    .as_bytes()
                    .to_vec(),
            ),
            (None, None) => {
                return Err(PyValueError::new_err(
                    "websocket.send needs 'text' or 'bytes'",
                ))
            }
        };
        let paused = self.conn.lock().write_paused;
        self.with_ws(after, |ws, after| {
            if ws.gone {
                return Err(PyOSError::new_err("the client disconnected"));
            }
            let Stage::Open(session) = &mut ws.stage else {
                return Err(PyRuntimeError::new_err(
                    "websocket.send before websocket.accept",
                ));
            };
            session
                .send(message)
                .map_err(|e| PyOSError::new_err(e.to_string()))?;
            after.write.extend_from_slice(&session.take_output());
            Ok(paused)
        })
    }

    fn close(&self, py: Python<'_>, msg: &Bound<'_, PyDict>, after: &mut After) -> PyResult<()> {
        let code: u16 = match msg.get_item(intern!(py, "code"))? {
            Some(c) if !c.is_none() => c.extract()?,
            _ => 1000,
        };
        let reason: String = match msg.get_item(intern!(py, "reason"))? {
            Some(r) if !r.is_none() => r.extract()?,
            _ => String::new(),
        };
        self.with_ws(after, |ws, after| {
            match &mut ws.stage {
                // Refused before the handshake: an HTTP 403 (ASGI: "the server must send a
                // HTTP 403 Forbidden"), and the connection closes.
                Stage::Handshake { .. } => {
                    after.write.extend_from_slice(&error_page(
                        403,
                        "Forbidden",
                        "WebSocket connection refused",
                    ));
                    ws.stage = Stage::Refused;
                    ws.finished = true;
                    ws.gone(1000, String::new(), after);
                }
                Stage::Open(session) => {
                    if ws.gone {
                        return Err(PyOSError::new_err("the client disconnected"));
                    }
                    session
                        .close(code, &reason)
                        .map_err(|e| PyValueError::new_err(e.to_string()))?;
                    after.write.extend_from_slice(&session.take_output());
                    ws.closing_since = Some(Instant::now());
                }
                // We failed the connection: the client is gone for the app.
                Stage::Draining { .. } => {
                    return Err(PyOSError::new_err("the client disconnected"));
                }
                Stage::Refused => {}
            }
            Ok(())
        })
    }

    /// The task ended: before accepting, an HTTP 500 (an exception) or 403 (it returned);
    /// after, close 1011 (an exception) or 1000 (it returned without closing).
    fn ended(&self, py: Python<'_>, raised: Option<PyErr>) {
        if let Some(e) = &raised {
            log_app_error(py, "Error in ASGI application", e);
        }
        let mut after = After::default();
        let _ = self.with_ws(&mut after, |ws, after| {
            ws.task = None;
            match &mut ws.stage {
                Stage::Handshake { .. } => {
                    let page = if raised.is_some() {
                        error_page(500, "Internal Server Error", "Internal Server Error")
                    } else {
                        error_page(403, "Forbidden", "WebSocket connection refused")
                    };
                    after.write.extend_from_slice(&page);
                    ws.stage = Stage::Refused;
                }
                Stage::Open(session) => {
                    if session.state() == SessionState::Open {
                        let code = if raised.is_some() { 1011 } else { 1000 };
                        let _ = session.close(code, "");
                        after.write.extend_from_slice(&session.take_output());
                    }
                }
                Stage::Refused => {}
                // The drain goes on after the app ended; the heartbeat closes it.
                Stage::Draining { .. } => return Ok(()),
            }
            ws.finished = true;
            Ok(())
        });
        if !after.write.is_empty() {
            after.close = true;
        }
        run_after(py, &self.conn, after);
    }
}

/// `headers` of websocket.accept: `[name, value]` byte pairs.
fn byte_pairs(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in headers.try_iter()? {
        let item = item?;
        let mut pair = item.try_iter()?;
        let (Some(n), Some(v), None) = (pair.next(), pair.next(), pair.next()) else {
            return Err(PyValueError::new_err(
                "each header must be a [name, value] pair",
            ));
        };
        let bytes = |o: PyResult<Bound<'_, PyAny>>| -> PyResult<Vec<u8>> {
            let o = o?;
            if let Ok(b) = o.cast::<PyBytes>() {
                return Ok(b.as_bytes().to_vec());
            }
            Ok(o.extract::<String>()?.into_bytes())
        };
        out.push((bytes(n)?, bytes(v)?));
    }
    Ok(out)
}

#[pymethods]
impl WsCycle {
    /// `await receive()`: `websocket.connect`, then `websocket.receive` events, then
    /// `websocket.disconnect`.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut after = After::default();
        let now = {
            let mut st = self.conn.lock();
            let read_paused = st.read_paused;
            match &mut st.phase {
                Phase::WebSocket(ws) if ws.generation == self.generation => {
                    match ws.events.pop_front() {
                        Some(ev) => {
                            if read_paused && ws.events.len() < EVENT_BACKLOG / 2 {
                                st.read_paused = false;
                                after.pause_reading = Some(false);
                            }
                            Some(ev)
                        }
                        None if ws.gone => Some(Inbound::Disconnect {
                            code: 1006,
                            reason: String::new(),
                        }),
                        None => None,
                    }
                }
                _ => Some(Inbound::Disconnect {
                    code: 1006,
                    reason: String::new(),
                }),
            }
        };
        run_after(py, &self.conn, after);
        if let Some(ev) = now {
            return Ok(Py::new(py, Ready::with(event(py, ev)?))?.into_any());
        }
        let fut = self
            .conn
            .shared
            .loop_refs()?
            .create_future
            .bind(py)
            .call0()?
            .unbind();
        let mut st = self.conn.lock();
        match &mut st.phase {
            Phase::WebSocket(ws) if ws.generation == self.generation && !ws.gone => {
                ws.waiter = Some(fut.clone_ref(py));
            }
            _ => {
                drop(st);
                resolve(
                    py,
                    &fut,
                    Resolution::WebSocket(Inbound::Disconnect {
                        code: 1006,
                        reason: String::new(),
                    }),
                );
            }
        }
        Ok(fut)
    }

    /// `await send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let msg = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        let kind = match msg.get_item(intern!(py, "type"))? {
            Some(k) => k.cast::<PyString>()?.to_str()?.to_owned(),
            None => return Err(PyValueError::new_err("an ASGI message needs a 'type'")),
        };
        let mut after = After::default();
        let result = match kind.as_str() {
            "websocket.accept" => self.accept(py, msg, &mut after).map(|()| false),
            "websocket.send" => self.send_message(py, msg, &mut after),
            "websocket.close" => self.close(py, msg, &mut after).map(|()| false),
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?} for a websocket scope"
            ))),
        };
        run_after(py, &self.conn, after);
        if result? {
            return crate::cycle::drain_future(py, &self.conn);
        }
        Ok(Py::new(py, Ready::none())?.into_any())
    }

    fn task_done(&self, py: Python<'_>, task: &Bound<'_, PyAny>) -> PyResult<()> {
        if task.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
            self.ended(py, None);
            return Ok(());
        }
        let exc = task.call_method0(intern!(py, "exception"))?;
        let raised = (!exc.is_none()).then(|| PyErr::from_value(exc));
        self.ended(py, raised);
        Ok(())
    }
}
