//! One HTTP request's `receive` and `send` (ASGI HTTP spec 2.4), and what happens when the
//! application's task ends.
//!
//! `send()` validates and frames the response in Rust (the same encoder as the WSGI workers:
//! hop-by-hop headers dropped, Content-Length never exceeded, chunked when the length is
//! unknown on HTTP/1.1) and writes it straight to the transport. Both calls return a completed
//! awaitable ([`Ready`]) unless they must wait: for body bytes not yet received, or for the
//! transport's buffer to drain (asyncio's write flow control).

use std::sync::Arc;

use gunicorn_core::{log_debug, log_error};
use gunicorn_http::{error_page, HttpError, Response};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString};

use crate::apply::{
    drain_future, ending_of, header_pairs, message, message_type, resolve, run, Ending,
};
use crate::connection::{Connection, Phase, Reply};
use crate::effects::{After, Resolution};
use crate::ready::Ready;
use crate::shared::log_app_error;

/// `receive` and `send` of one request on one connection.
#[pyclass(module = "gunicorn_asgi", name = "Cycle", frozen)]
pub struct Cycle {
    conn: Arc<Connection>,
    generation: u64,
}

impl Cycle {
    pub(crate) fn new(
        py: Python<'_>,
        conn: Arc<Connection>,
        generation: u64,
    ) -> PyResult<Py<Cycle>> {
        Py::new(py, Cycle { conn, generation })
    }

    /// The application could not even be started (pre_request raised, or calling it did):
    /// handled as an exception from the application.
    pub(crate) fn failed_to_start(
        py: Python<'_>,
        conn: &Arc<Connection>,
        generation: u64,
        e: &PyErr,
    ) {
        let cycle = Cycle {
            conn: Arc::clone(conn),
            generation,
        };
        cycle.ended(py, Ending::Raised(e.clone_ref(py)));
    }

    /// The task ended: an exception before the response was complete gives a 500 (or a
    /// closed connection once the head went out), and is logged with its traceback.
    fn ended(&self, py: Python<'_>, ending: Ending) {
        let mut after = After::default();
        {
            let mut st = self.conn.lock();
            let current = st.generation == self.generation && !matches!(st.phase, Phase::Closed);
            let ex = st
                .exchange
                .as_mut()
                .filter(|e| e.generation == self.generation);
            let (reply, disconnected) = match ex {
                Some(ex) => {
                    ex.task = None;
                    let reply = match ex.reply {
                        Reply::Pending => Stage::NotStarted,
                        Reply::Started { .. } | Reply::Trailers { .. } => Stage::Started,
                        Reply::Done => Stage::Done,
                    };
                    (reply, ex.disconnected)
                }
                None => (Stage::Done, false),
            };
            match (&ending, reply) {
                (Ending::Raised(e), _) if disconnected => {
                    log_debug!("Exception after the client disconnected: {e}");
                }
                (Ending::Raised(e), Stage::Done) => {
                    // After the response (a background task): the client got its answer, but
                    // the error is the app's and is logged as such.
                    log_app_error(py, "Exception in ASGI application after the response", e);
                }
                (Ending::Raised(e), stage) => {
                    log_app_error(py, "Error in ASGI application", e);
                    if current {
                        if stage == Stage::NotStarted {
                            self.conn.error_response(
                                &mut st,
                                500,
                                internal_error_page(),
                                &mut after,
                            );
                        }
                        self.conn.disconnect_exchange(&mut st, &mut after);
                        st.phase = Phase::Closed;
                        after.close = true;
                    }
                }
                (Ending::Cancelled, Stage::Done) => {}
                (Ending::Cancelled, _) => {
                    log_debug!("Request cancelled (client disconnected)");
                    if current {
                        st.phase = Phase::Closed;
                        after.close = true;
                    }
                }
                (Ending::Returned, Stage::NotStarted) if current && !disconnected => {
                    log_error!("ASGI application returned without starting a response");
                    self.conn
                        .error_response(&mut st, 500, internal_error_page(), &mut after);
                    st.phase = Phase::Closed;
                    after.close = true;
                }
                (Ending::Returned, Stage::Started) if current && !disconnected => {
                    log_error!(
                        "ASGI application returned without completing the response; closing the connection"
                    );
                    st.phase = Phase::Closed;
                    after.close = true;
                }
                (Ending::Returned, _) => {}
            }
        }
        run(py, &self.conn, after);
    }

    fn start_response(&self, py: Python<'_>, msg: &Bound<'_, PyDict>) -> PyResult<()> {
        let status: u16 = match msg.get_item(intern!(py, "status"))? {
            Some(s) => s.extract().map_err(|_| {
                PyTypeError::new_err("'status' of http.response.start must be an int")
            })?,
            None => {
                return Err(PyValueError::new_err(
                    "http.response.start needs a 'status'",
                ))
            }
        };
        if !(200..=999).contains(&status) {
            return Err(PyValueError::new_err(format!(
                "invalid status {status} in http.response.start"
            )));
        }
        let headers = match msg.get_item(intern!(py, "headers"))? {
            Some(h) => header_pairs(&h, latin1_text)?,
            None => Vec::new(),
        };
        let trailers = match msg.get_item(intern!(py, "trailers"))? {
            Some(t) => t.is_truthy()?,
            None => false,
        };
        let mut st = self.conn.lock();
        let keep_headers = self.conn.shared.wants_finished();
        let stopping = self.conn.shared.stopping() || self.conn.shared.s.keepalive.is_zero();
        let ex = self.current(&mut st)?;
        if !matches!(ex.reply, Reply::Pending) {
            return Err(PyRuntimeError::new_err("Response already started"));
        }
        let meta_close = ex.last || stopping;
        let meta = self.conn.req_meta(ex);
        let log_headers = if keep_headers {
            headers.clone()
        } else {
            Vec::new()
        };
        let mut resp = Response::new(&meta, crate::reason::status_text(status), headers)
            .map_err(|e: HttpError| PyValueError::new_err(e.to_string()))?;
        if meta_close {
            resp.force_close();
        }
        let mut head = Vec::with_capacity(256);
        resp.encode_head(&mut head);
        ex.response_headers = log_headers;
        ex.reply = Reply::Started {
            resp: Box::new(resp),
            unsent_head: head,
            trailers,
        };
        Ok(())
    }

    /// `http.response.body`: frames and writes `body`; on the last one, completes the
    /// response. True when the caller should wait for the transport to drain.
    fn body(&self, body: &[u8], more: bool, after: &mut After) -> PyResult<bool> {
        let mut st = self.conn.lock();
        let ex = self.current(&mut st)?;
        // Taken out and put back in its next state (a response moves from Started to
        // Trailers or Done here).
        let (mut resp, mut out, trailers) = match std::mem::replace(&mut ex.reply, Reply::Done) {
            Reply::Started {
                resp,
                unsent_head,
                trailers,
            } => (resp, unsent_head, trailers),
            other => {
                let err = match other {
                    Reply::Pending => "Response not started",
                    _ => "Response already complete",
                };
                ex.reply = other;
                return Err(PyRuntimeError::new_err(err));
            }
        };
        resp.encode_body(body, &mut out);
        after.write = out;
        if more {
            ex.reply = Reply::Started {
                resp,
                unsent_head: Vec::new(),
                trailers,
            };
            return Ok(st.write_paused);
        }
        if trailers {
            // The last chunk goes out with the trailer fields.
            ex.reply = Reply::Trailers {
                resp,
                fields: Vec::new(),
            };
            return Ok(false);
        }
        resp.finish(&mut after.write);
        // A body shorter than its Content-Length: the client would wait for the rest; the
        // connection closes instead of being reused. Not so for a response that never has a
        // body (HEAD, 304): its Content-Length is the GET's, and it stays kept alive as it
        // says.
        let short = !resp.discards_body() && resp.remaining_length().is_some_and(|r| r > 0);
        let close = resp.should_close() || short;
        self.conn
            .response_done(&mut st, resp.status, close, resp.body_bytes_sent(), after);
        Ok(false)
    }

    /// `http.response.trailers` (ASGI HTTP Trailers extension): gathers the fields; the last
    /// message writes the last chunk with them (RFC 9112 §7.1.2) and completes the response.
    fn trailers(
        &self,
        fields: Vec<(String, String)>,
        more: bool,
        after: &mut After,
    ) -> PyResult<()> {
        let mut st = self.conn.lock();
        let ex = self.current(&mut st)?;
        let Reply::Trailers { resp, fields: kept } = &mut ex.reply else {
            return Err(PyRuntimeError::new_err(
                "http.response.trailers without trailers: True in http.response.start, \
                 or before the last http.response.body",
            ));
        };
        kept.extend(fields);
        if more {
            return Ok(());
        }
        let mut out = Vec::new();
        resp.finish_with_trailers(kept, &mut out)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let close = resp.should_close();
        let (status, sent) = (resp.status, resp.body_bytes_sent());
        after.write = out;
        self.conn.response_done(&mut st, status, close, sent, after);
        Ok(())
    }

    /// The current exchange of this cycle, or the error a send gets: the response is complete
    /// (a later request is being served), or the client is gone (an OSError, ASGI 2.4).
    fn current<'a>(
        &self,
        st: &'a mut crate::connection::Conn,
    ) -> PyResult<&'a mut crate::connection::Exchange> {
        let closed = matches!(st.phase, Phase::Closed);
        match st.exchange.as_mut() {
            Some(ex) if ex.generation == self.generation => {
                if ex.disconnected || (closed && !matches!(ex.reply, Reply::Done)) {
                    return Err(PyOSError::new_err("the client disconnected"));
                }
                Ok(ex)
            }
            _ => Err(PyRuntimeError::new_err("Response already complete")),
        }
    }
}

/// Where the response was when the task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    NotStarted,
    Started,
    Done,
}

/// gunicorn's 500 page (the WSGI workers' text), closing the connection.
fn internal_error_page() -> Vec<u8> {
    error_page(500, "Internal Server Error", "Internal Server Error")
}

/// Bytes (or a str) as the latin-1 text the response encoder validates.
fn latin1_text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = v.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        return Ok(match std::str::from_utf8(bytes) {
            Ok(s) if s.is_ascii() => s.to_string(),
            _ => bytes.iter().map(|&b| char::from(b)).collect(),
        });
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.to_str()?.to_string());
    }
    Err(PyTypeError::new_err(
        "response header names and values must be bytes",
    ))
}

/// The bytes of a body value: bytes, bytearray or memoryview.
fn with_body<R>(v: Option<Bound<'_, PyAny>>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    let Some(v) = v else { return Ok(f(b"")) };
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(f(&b.to_vec()));
    }
    if v.is_none() {
        return Ok(f(b""));
    }
    // memoryview and other buffers: copied through bytes().
    let bytes = v
        .py()
        .get_type::<PyBytes>()
        .call1((v,))
        .map_err(|_| PyTypeError::new_err("'body' must be bytes"))?;
    let bytes = bytes.cast::<PyBytes>()?;
    Ok(f(bytes.as_bytes()))
}

#[pymethods]
impl Cycle {
    /// `await receive()`: `http.request` with body bytes, or `http.disconnect`.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut after = After::default();
        let now = self.conn.receive_now(self.generation, &mut after);
        run(py, &self.conn, after);
        if let Some(res) = now {
            let value = message(py, res)?;
            return Ok(Py::new(py, Ready::with(value))?.into_any());
        }
        let fut = self.conn.shared.new_future(py)?;
        if let Some(fut) = self.conn.wait_receive(self.generation, fut.clone_ref(py)) {
            resolve(py, &fut, Resolution::Disconnect);
        }
        Ok(fut)
    }

    /// `await send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let (msg, kind) = message_type(message)?;
        match kind.as_str() {
            "http.response.start" => {
                self.start_response(py, msg)?;
                Ok(Py::new(py, Ready::none())?.into_any())
            }
            "http.response.body" => {
                let more = match msg.get_item(intern!(py, "more_body"))? {
                    Some(m) => m.is_truthy()?,
                    None => false,
                };
                let mut after = After::default();
                let wait = with_body(msg.get_item(intern!(py, "body"))?, |body| {
                    self.body(body, more, &mut after)
                })??;
                run(py, &self.conn, after);
                if wait {
                    return drain_future(py, &self.conn);
                }
                Ok(Py::new(py, Ready::none())?.into_any())
            }
            "http.response.informational" => {
                self.informational(py, msg)?;
                Ok(Py::new(py, Ready::none())?.into_any())
            }
            "http.response.pathsend" => {
                // The file's bytes go through this cycle's own `send`, as body messages.
                let path = match msg.get_item(intern!(py, "path"))? {
                    Some(p) => p,
                    None => {
                        return Err(PyValueError::new_err(
                            "http.response.pathsend needs a 'path'",
                        ))
                    }
                };
                // A second handle on the same request (its state is the connection's).
                let send = Cycle::new(py, Arc::clone(&self.conn), self.generation)?
                    .bind(py)
                    .getattr(intern!(py, "send"))?;
                let refs = self.conn.shared.loop_refs()?;
                Ok(refs.pathsend.bind(py).call1((send, path))?.unbind())
            }
            "http.response.trailers" => {
                let fields = match msg.get_item(intern!(py, "headers"))? {
                    Some(h) => header_pairs(&h, latin1_text)?,
                    None => Vec::new(),
                };
                let more = match msg.get_item(intern!(py, "more_trailers"))? {
                    Some(m) => m.is_truthy()?,
                    None => false,
                };
                let mut after = After::default();
                self.trailers(fields, more, &mut after)?;
                run(py, &self.conn, after);
                Ok(Py::new(py, Ready::none())?.into_any())
            }
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?} for an http scope"
            ))),
        }
    }

    /// The task's done callback.
    fn task_done(&self, py: Python<'_>, task: &Bound<'_, PyAny>) -> PyResult<()> {
        self.ended(py, ending_of(task)?);
        Ok(())
    }
}

impl Cycle {
    /// gunicorn's `http.response.informational` (103 Early Hints, RFC 8297): written before
    /// the response, to HTTP/1.1 clients only.
    fn informational(&self, py: Python<'_>, msg: &Bound<'_, PyDict>) -> PyResult<()> {
        let status: u16 = msg
            .get_item(intern!(py, "status"))?
            .map(|s| s.extract())
            .transpose()?
            .unwrap_or(0);
        let headers = match msg.get_item(intern!(py, "headers"))? {
            Some(h) => header_pairs(&h, latin1_text)?,
            None => Vec::new(),
        };
        let mut after = After::default();
        {
            let mut st = self.conn.lock();
            let ex = self.current(&mut st)?;
            if !matches!(ex.reply, Reply::Pending) {
                return Err(PyRuntimeError::new_err(
                    "Informational response after response start",
                ));
            }
            if status != 103 {
                return Err(PyValueError::new_err(format!(
                    "only 103 Early Hints can be sent as an informational response, not {status}"
                )));
            }
            if let Some(bytes) = gunicorn_http::early_hints(ex.req.version, &headers)
                .map_err(|e| PyValueError::new_err(e.to_string()))?
            {
                after.write = bytes;
            }
        }
        run(py, &self.conn, after);
        Ok(())
    }
}
