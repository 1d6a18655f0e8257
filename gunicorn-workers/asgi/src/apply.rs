//! Carrying out, with the GIL and no lock held, what a connection's locked step decided
//! ([`After`]): writes (through TLS when the connection has it), Futures resolved with ASGI
//! event dicts, reading paused or resumed, the finished response reported (access log, StatsD,
//! a logger class, `post_request`), the transport closed.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::connection::{Connection, Phase};
use crate::effects::{After, Finished, Inbound, Resolution, Start};
use crate::shared::{log_app_error, Shared};

/// Carries out what a locked step of `conn` decided, in order: write, resolve the waiting
/// Futures, pause or resume reading, report the finished response, schedule the parsing of
/// pipelined bytes, close. A request to start is returned: only the protocol starts
/// applications (`protocol.rs`), and only its steps produce one.
#[must_use]
pub(crate) fn run_then_start(
    py: Python<'_>,
    conn: &Arc<Connection>,
    after: After,
) -> Option<Start> {
    if after.is_empty() {
        return None;
    }
    let transport = conn.transport(py);
    if let Some(t) = &transport {
        let t = t.bind(py);
        let closing = after.close || after.linger;
        let out = if after.write.is_empty() && after.wire.is_empty() && !closing {
            Vec::new()
        } else {
            conn.seal(after.wire, after.write, closing)
        };
        if !out.is_empty() {
            if let Err(e) = t.call_method1(intern!(py, "write"), (PyBytes::new(py, &out),)) {
                log_app_error(py, "Socket error writing response.", &e);
            }
        }
        match after.pause_reading {
            Some(true) => {
                let _ = t.call_method0(intern!(py, "pause_reading"));
            }
            Some(false) => {
                let _ = t.call_method0(intern!(py, "resume_reading"));
            }
            None => {}
        }
    }
    for (fut, res) in after.resolve {
        resolve(py, &fut, res);
    }
    if let Some(task) = after.cancel_task {
        cancel_later(py, &conn.shared, task);
    }
    if let Some(f) = after.finished {
        report_finished(py, &conn.shared, f);
    }
    if after.resume {
        conn.schedule_resume(py);
    }
    if after.close {
        if let Some(t) = &transport {
            let _ = t.bind(py).call_method0(intern!(py, "close"));
        }
    } else if after.linger {
        if let Some(t) = &transport {
            linger(py, &conn.shared, t.bind(py));
        }
    }
    after.start
}

/// The lingering close: FIN after what was written, reading resumed (the connection is
/// `Closed`, so what comes is dropped; the client's own FIN closes the transport through
/// `eof_received`), and the transport closed after `LINGER_TIME` at the latest.
fn linger(py: Python<'_>, shared: &Shared, t: &Bound<'_, PyAny>) {
    let can = t
        .call_method0(intern!(py, "can_write_eof"))
        .and_then(|c| c.is_truthy())
        .unwrap_or(false);
    let bounded = can
        && t.call_method0(intern!(py, "write_eof")).is_ok()
        && t.call_method0(intern!(py, "resume_reading")).is_ok()
        && t.getattr(intern!(py, "close")).is_ok_and(|close| {
            shared.loop_refs().is_ok_and(|l| {
                l.call_later
                    .bind(py)
                    .call1((gunicorn_serve::linger::LINGER_TIME.as_secs_f64(), close))
                    .is_ok()
            })
        });
    if !bounded {
        let _ = t.call_method0(intern!(py, "close"));
    }
}

/// `--asgi-disconnect-grace-period`: the app's task gets that long after the client left
/// before it is cancelled (at once with 0).
pub(crate) fn cancel_later(py: Python<'_>, shared: &Shared, task: Py<PyAny>) {
    let task = task.bind(py);
    if task
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    let Ok(cancel) = task.getattr(intern!(py, "cancel")) else {
        return;
    };
    let scheduled = shared.loop_refs().and_then(|l| {
        l.call_later
            .bind(py)
            .call1((shared.s.disconnect_grace, cancel))
    });
    let released = scheduled.and_then(|handle| {
        let timer = Py::new(
            py,
            GraceTimer {
                handle: handle.unbind(),
            },
        )?;
        task.call_method1(intern!(py, "add_done_callback"), (timer,))
    });
    if released.is_err() {
        let _ = task.call_method0(intern!(py, "cancel"));
    }
}

/// The done callback of a task waiting out its disconnect grace period: a task that ends
/// first cancels its timer, which held it (through `task.cancel`) and so everything the task
/// references, such as an async generator whose cleanup only runs once it is released, for
/// the rest of the period.
#[pyclass(module = "gunicorn_asgi", name = "GraceTimer", frozen)]
struct GraceTimer {
    handle: Py<PyAny>,
}

#[pymethods]
impl GraceTimer {
    fn __call__(&self, py: Python<'_>, _task: &Bound<'_, PyAny>) {
        let _ = self.handle.bind(py).call_method0(intern!(py, "cancel"));
    }
}

/// [`run_then_start`] for the steps that never start a request (everything but the protocol's
/// callbacks).
pub(crate) fn run(py: Python<'_>, conn: &Arc<Connection>, after: After) {
    let start = run_then_start(py, conn, after);
    debug_assert!(start.is_none(), "only the protocol's steps start a request");
}

/// Sets a waiting Future's result, unless it was cancelled meanwhile (a task cancelled while
/// it awaited `receive()`).
pub(crate) fn resolve(py: Python<'_>, fut: &Py<PyAny>, res: Resolution) {
    let fut = fut.bind(py);
    if fut
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    let value = match message(py, res) {
        Ok(v) => v,
        Err(e) => {
            let _ = fut.call_method1(intern!(py, "set_exception"), (e.value(py),));
            return;
        }
    };
    let _ = fut.call_method1(intern!(py, "set_result"), (value,));
}

/// The Python value of a resolution: None, or an ASGI event dict.
pub(crate) fn message(py: Python<'_>, res: Resolution) -> PyResult<Py<PyAny>> {
    match res {
        Resolution::Nothing => Ok(py.None()),
        Resolution::Body { bytes, more } => {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
            d.set_item(intern!(py, "body"), PyBytes::new(py, &bytes))?;
            d.set_item(intern!(py, "more_body"), more)?;
            Ok(d.into_any().unbind())
        }
        Resolution::Disconnect => {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
            Ok(d.into_any().unbind())
        }
        Resolution::WebSocket(inbound) => event(py, inbound),
    }
}

/// How an application's task ended.
pub(crate) enum Ending {
    Returned,
    Raised(PyErr),
    Cancelled,
}

/// What the task's done callback finds.
pub(crate) fn ending_of(task: &Bound<'_, PyAny>) -> PyResult<Ending> {
    let py = task.py();
    if task.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
        return Ok(Ending::Cancelled);
    }
    let exc = task.call_method0(intern!(py, "exception"))?;
    Ok(if exc.is_none() {
        Ending::Returned
    } else {
        Ending::Raised(PyErr::from_value(exc))
    })
}

/// `headers` of a message from the app: an iterable of `[name, value]` pairs, each side
/// converted by `convert`.
pub(crate) fn header_pairs<T>(
    headers: &Bound<'_, PyAny>,
    convert: impl Fn(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Vec<(T, T)>> {
    let mut out = Vec::new();
    for item in headers.try_iter()? {
        let item = item?;
        let mut pair = item.try_iter()?;
        let (Some(name), Some(value), None) = (pair.next(), pair.next(), pair.next()) else {
            return Err(PyValueError::new_err(
                "each header must be a [name, value] pair",
            ));
        };
        out.push((convert(&name?)?, convert(&value?)?));
    }
    Ok(out)
}

/// An ASGI message sent by the app: the dict and its `type`.
pub(crate) fn message_type<'a, 'py>(
    message: &'a Bound<'py, PyAny>,
) -> PyResult<(&'a Bound<'py, PyDict>, String)> {
    let py = message.py();
    let msg = message
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
    let kind = match msg.get_item(intern!(py, "type"))? {
        Some(k) => k.cast::<PyString>()?.to_str()?.to_owned(),
        None => return Err(PyValueError::new_err("an ASGI message needs a 'type'")),
    };
    Ok((msg, kind))
}

/// Waits for the transport to drain: a Future that `resume_writing` (or the disconnect)
/// resolves.
pub(crate) fn drain_future(py: Python<'_>, conn: &Connection) -> PyResult<Py<PyAny>> {
    let fut = conn.shared.new_future(py)?;
    let mut st = conn.lock();
    if st.write_paused && !matches!(st.phase, Phase::Closed) {
        st.drain_waiters.push(fut.clone_ref(py));
    } else {
        drop(st);
        resolve(py, &fut, Resolution::Nothing);
    }
    Ok(fut)
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

/// The access log line, StatsD metrics, a logger class's `access()` and `post_request`.
fn report_finished(py: Python<'_>, shared: &Shared, f: Finished) {
    let environ = gunicorn_http::build_environ(&f.req, &f.info, f.proxy.as_ref(), &shared.s.http);
    let Ok(environ) = environ else {
        return;
    };
    // A --logger-class class takes over the access line (its access() below); the StatsD
    // metrics are sent either way, as the WSGI workers do.
    let logger_class = gunicorn_python::logging::logger_class::active();
    if logger_class {
        gunicorn_core::statsd::access(f.status, f.duration);
    } else if gunicorn_python::logging::access::wanted() {
        gunicorn_python::logging::access::record(
            &f.req, &environ, &f.headers, f.status, f.sent, f.duration,
        );
    }
    let post = gunicorn_python::server_hooks::request_hooks().1;
    if !logger_class && !post {
        return;
    }
    let dict = PyDict::new(py);
    for (k, v) in &environ.vars {
        let _ = dict.set_item(k.as_ref(), v.as_str());
    }
    let status = crate::reason::status_text(f.status);
    if logger_class {
        gunicorn_python::logging::logger_class::access(
            py,
            &f.req,
            &dict,
            gunicorn_python::logging::logger_class::Finished {
                status: status.clone(),
                headers: &f.headers,
                sent: f.sent,
                duration: f.duration,
            },
        );
    }
    if post {
        gunicorn_python::server_hooks::post_request(
            py,
            &f.req,
            f.hook_req.as_ref().map(|r| r.bind(py)),
            Some(&dict),
            gunicorn_python::server_hooks::ResponseInfo {
                status: Some(status),
                headers: &f.headers,
                sent: f.sent,
            },
        );
    }
}
