//! The app's side of a WebSocket (ASGI WebSocket spec 2.4): `receive` gives
//! `websocket.connect`, then `websocket.receive` events, then `websocket.disconnect`; `send`
//! takes `websocket.accept` (the 101), `websocket.send` and `websocket.close` (a 403 before
//! accepting). The connection's WebSocket state is `ws_conn.rs`.

use std::sync::Arc;
use std::time::Instant;

use gunicorn_http::error_page;
use gunicorn_websocket::{Message, Session, SessionConfig, SessionState};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::apply::{
    drain_future, ending_of, event, header_pairs, message_type, resolve, run, Ending,
};
use crate::connection::{Connection, Phase};
use crate::effects::{After, Inbound, Resolution};
use crate::ready::Ready;
use crate::shared::log_app_error;
use crate::ws_conn::{refusal, Stage, WsConn, EVENT_BACKLOG};

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
            Some(h) => header_pairs(&h, header_bytes)?,
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
        run(py, &self.conn, after);
    }
}

/// A header name or value of websocket.accept: bytes (or a str, as its UTF-8).
fn header_bytes(o: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = o.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    Ok(o.extract::<String>()?.into_bytes())
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
        run(py, &self.conn, after);
        if let Some(ev) = now {
            return Ok(Py::new(py, Ready::with(event(py, ev)?))?.into_any());
        }
        let fut = self.conn.shared.new_future(py)?;
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
        let (msg, kind) = message_type(message)?;
        let mut after = After::default();
        let result = match kind.as_str() {
            "websocket.accept" => self.accept(py, msg, &mut after).map(|()| false),
            "websocket.send" => self.send_message(py, msg, &mut after),
            "websocket.close" => self.close(py, msg, &mut after).map(|()| false),
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?} for a websocket scope"
            ))),
        };
        run(py, &self.conn, after);
        if result? {
            return drain_future(py, &self.conn);
        }
        Ok(Py::new(py, Ready::none())?.into_any())
    }

    fn task_done(&self, py: Python<'_>, task: &Bound<'_, PyAny>) -> PyResult<()> {
        let raised = match ending_of(task)? {
            Ending::Raised(e) => Some(e),
            Ending::Returned | Ending::Cancelled => None,
        };
        self.ended(py, raised);
        Ok(())
    }
}
