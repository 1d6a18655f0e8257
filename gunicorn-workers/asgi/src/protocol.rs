//! The asyncio protocol of one connection, written in Rust: the event loop (asyncio's or
//! uvloop's transports) calls `connection_made`, `data_received`, `eof_received`,
//! `connection_lost`, `pause_writing` and `resume_writing` on it, as on any
//! `asyncio.Protocol`. Parsing happens inside `data_received`, synchronously, with no Python
//! object built until a request is complete; then the application runs as a task on the loop.

use std::sync::{Arc, OnceLock};

use gunicorn_http::{ConnInfo, Peer};
use nix::sys::socket::{getpeername, SockaddrStorage};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::connection::{After, Connection, Finished, Resolution, Start};
use crate::cycle::Cycle;
use crate::server::{log_app_error, Interface, Shared};

#[pyclass(module = "gunicorn_asgi", name = "HttpProtocol", frozen)]
pub struct HttpProtocol {
    shared: Arc<Shared>,
    index: usize,
    conn: OnceLock<Arc<Connection>>,
}

impl HttpProtocol {
    pub fn new(shared: Arc<Shared>, index: usize) -> HttpProtocol {
        HttpProtocol {
            shared,
            index,
            conn: OnceLock::new(),
        }
    }
}

#[pymethods]
impl HttpProtocol {
    fn connection_made(&self, py: Python<'_>, transport: &Bound<'_, PyAny>) -> PyResult<()> {
        let peer = transport
            .call_method1(intern!(py, "get_extra_info"), (intern!(py, "socket"),))
            .and_then(|s| s.call_method0(intern!(py, "fileno")))
            .and_then(|fd| fd.extract::<i32>())
            .map_or(Peer::Unix, peer_of);
        let local = self
            .shared
            .locals
            .get(self.index)
            .cloned()
            .unwrap_or(gunicorn_http::Local::Unix(String::new()));
        let info = ConnInfo {
            peer,
            local,
            tls: None,
        };
        let Some(conn) = self.shared.new_connection(info) else {
            transport.call_method0(intern!(py, "close"))?;
            return Ok(());
        };
        conn.set_transport(transport.clone().unbind());
        let _ = self.conn.set(conn);
        Ok(())
    }

    fn data_received(&self, py: Python<'_>, data: &Bound<'_, PyBytes>) {
        if let Some(conn) = self.conn.get() {
            let after = conn.received(py, data.as_bytes());
            run_after(py, conn, after);
        }
    }

    /// The peer half-closed: keep the transport open for a response in progress (True), else
    /// let asyncio close it.
    fn eof_received(&self, py: Python<'_>) -> bool {
        let Some(conn) = self.conn.get() else {
            return false;
        };
        let (keep, after) = conn.eof();
        run_after(py, conn, after);
        keep
    }

    #[pyo3(signature = (_exc=None))]
    fn connection_lost(&self, py: Python<'_>, _exc: Option<Bound<'_, PyAny>>) {
        let Some(conn) = self.conn.get() else {
            return;
        };
        let (after, task) = conn.lost();
        self.shared.unregister(conn.id);
        run_after(py, conn, after);
        if let Some(task) = task {
            cancel_later(py, &self.shared, task);
        }
    }

    fn pause_writing(&self) {
        if let Some(conn) = self.conn.get() {
            conn.pause_writing();
        }
    }

    fn resume_writing(&self, py: Python<'_>) {
        if let Some(conn) = self.conn.get() {
            let after = conn.resume_writing();
            run_after(py, conn, after);
        }
    }
}

/// `--asgi-disconnect-grace-period`: the app's task gets that long after the client left
/// before it is cancelled (at once with 0).
fn cancel_later(py: Python<'_>, shared: &Shared, task: Py<PyAny>) {
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
            .call1((shared.disconnect_grace, cancel))
    });
    if scheduled.is_err() {
        let _ = task.call_method0(intern!(py, "cancel"));
    }
}

/// Carries out what a locked step of `conn` decided, in order: write, resolve the waiting
/// Futures, pause or resume reading, report the finished response, start the next request,
/// close.
pub(crate) fn run_after(py: Python<'_>, conn: &Arc<Connection>, after: After) {
    if after.is_empty() {
        return;
    }
    let transport = conn.transport(py);
    if let Some(t) = &transport {
        let t = t.bind(py);
        let out = if after.write.is_empty() && after.wire.is_empty() && !after.close {
            Vec::new()
        } else {
            conn.seal(after.wire, after.write, after.close)
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
    if let Some(f) = after.finished {
        report_finished(py, &conn.shared, f);
    }
    if let Some(start) = after.start {
        start_app(py, conn, start);
    }
    if after.close {
        if let Some(t) = &transport {
            let _ = t.bind(py).call_method0(intern!(py, "close"));
        }
    }
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
        Resolution::WebSocket(inbound) => crate::websocket::event(py, inbound),
    }
}

/// Hands a parsed request to the application: `pre_request`, then the app's coroutine as a
/// task on the loop, whose end `Cycle::task_done` looks at.
fn start_app(py: Python<'_>, conn: &Arc<Connection>, start: Start) {
    let shared = &conn.shared;
    let cycle = if start.websocket {
        crate::websocket::WsCycle::new(py, Arc::clone(conn), start.generation).map(Py::into_any)
    } else {
        Cycle::new(py, Arc::clone(conn), start.generation).map(Py::into_any)
    };
    let cycle = match cycle {
        Ok(c) => c,
        Err(e) => return log_app_error(py, "Error in ASGI application", &e),
    };
    let run = || -> PyResult<Py<PyAny>> {
        if gunicorn_python::server_hooks::request_hooks().0 {
            let hook_req = pre_request(py, conn)?;
            conn.set_hook_request(start.generation, hook_req);
        }
        let c = cycle.bind(py);
        let receive = c.getattr(intern!(py, "receive"))?;
        let send = c.getattr(intern!(py, "send"))?;
        let app = shared.app.bind(py);
        let coro = match shared.interface {
            Interface::Asgi3 => app.call1((start.scope.bind(py), receive, send))?,
            Interface::Asgi2 => app.call1((start.scope.bind(py),))?.call1((receive, send))?,
        };
        let task = shared.loop_refs()?.create_task.bind(py).call1((coro,))?;
        task.call_method1(
            intern!(py, "add_done_callback"),
            (c.getattr(intern!(py, "task_done"))?,),
        )?;
        Ok(task.unbind())
    };
    match run() {
        Ok(task) => conn.set_task(start.generation, task),
        // The call itself failed (pre_request raised, the app is not callable this way): as
        // an exception from the application.
        Err(e) => Cycle::failed_to_start(py, conn, start.generation, &e),
    }
}

/// `pre_request(worker, req)` for the connection's current request.
fn pre_request(py: Python<'_>, conn: &Connection) -> PyResult<Py<PyAny>> {
    let req = conn.current_request();
    match req {
        Some(req) => Ok(gunicorn_python::server_hooks::pre_request(py, &req)?.unbind()),
        None => Ok(py.None()),
    }
}

/// The access log line, StatsD metrics, a logger class's `access()` and `post_request`.
fn report_finished(py: Python<'_>, shared: &Shared, f: Finished) {
    let environ = gunicorn_http::build_environ(&f.req, &f.info, f.proxy.as_ref(), &shared.http);
    let Ok(environ) = environ else {
        return;
    };
    if gunicorn_python::logging::access::wanted() {
        gunicorn_python::logging::access::record(
            &f.req, &environ, &f.headers, f.status, f.sent, f.duration,
        );
    }
    let logger_class = gunicorn_python::logging::logger_class::active();
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

/// The peer of a connected socket as the scope reports it: unix-domain peers (and a socket
/// whose peer is already gone) have no address.
fn peer_of(fd: i32) -> Peer {
    let Ok(addr) = getpeername::<SockaddrStorage>(fd) else {
        return Peer::Unix;
    };
    if let Some(v4) = addr.as_sockaddr_in() {
        return Peer::Tcp(std::net::SocketAddr::V4((*v4).into()));
    }
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Peer::Tcp(std::net::SocketAddr::V6((*v6).into()));
    }
    Peer::Unix
}
