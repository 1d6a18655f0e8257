//! The asyncio protocol of one connection, written in Rust: the event loop (asyncio's or
//! uvloop's transports) calls `connection_made`, `data_received`, `eof_received`,
//! `connection_lost`, `pause_writing` and `resume_writing` on it, as on any
//! `asyncio.Protocol`. Parsing happens inside `data_received`, synchronously, with no Python
//! object built until a request is complete; then the application runs as a task on the loop.

use std::sync::{Arc, OnceLock};

use gunicorn_http::{ConnInfo, Peer};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::apply::{cancel_later, run, run_then_start};
use crate::connection::Connection;
use crate::cycle::Cycle;
use crate::effects::{After, Start};
use crate::registry::{Admission, Registry};
use crate::shared::{log_app_error, Interface, Shared};
use crate::websocket::WsCycle;

#[pyclass(module = "gunicorn_asgi", name = "HttpProtocol", frozen)]
pub struct HttpProtocol {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    index: usize,
    conn: OnceLock<Arc<Connection>>,
}

impl HttpProtocol {
    pub fn new(shared: Arc<Shared>, registry: Arc<Registry>, index: usize) -> HttpProtocol {
        HttpProtocol {
            shared,
            registry,
            index,
            conn: OnceLock::new(),
        }
    }

    /// Carries out a step of the connection; a request it completed goes to the app.
    fn apply(&self, py: Python<'_>, conn: &Arc<Connection>, after: After) {
        if let Some(start) = run_then_start(py, conn, after) {
            start_app(py, conn, start);
        }
    }
}

#[pymethods]
impl HttpProtocol {
    fn connection_made(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        transport: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let this = slf.get();
        let peer = transport
            .call_method1(intern!(py, "get_extra_info"), (intern!(py, "socket"),))
            .and_then(|s| s.call_method0(intern!(py, "fileno")))
            .and_then(|fd| fd.extract::<i32>())
            .map_or(Peer::Unix, gunicorn_serve::addr::peer_of_socket);
        let local = this
            .shared
            .s
            .locals
            .get(this.index)
            .cloned()
            .unwrap_or(gunicorn_http::Local::Unix(String::new()));
        let info = ConnInfo {
            peer,
            local,
            tls: None,
        };
        let Some((conn, admission)) = this.registry.open(&this.shared, info) else {
            transport.call_method0(intern!(py, "close"))?;
            return Ok(());
        };
        conn.set_transport(transport.clone().unbind(), slf.clone().into_any().unbind());
        if admission == Admission::Waiting {
            let after = conn.wait_for_slot();
            run(py, &conn, after);
        }
        let _ = this.conn.set(conn);
        Ok(())
    }

    fn data_received(&self, py: Python<'_>, data: &Bound<'_, PyBytes>) {
        if let Some(conn) = self.conn.get() {
            let after = conn.received(py, data.as_bytes());
            self.apply(py, conn, after);
        }
    }

    /// The peer half-closed: keep the transport open for a response in progress (True), else
    /// let asyncio close it.
    fn eof_received(&self, py: Python<'_>) -> bool {
        let Some(conn) = self.conn.get() else {
            return false;
        };
        let (keep, after) = conn.eof();
        run(py, conn, after);
        keep
    }

    #[pyo3(signature = (_exc=None))]
    fn connection_lost(&self, py: Python<'_>, _exc: Option<Bound<'_, PyAny>>) {
        let Some(conn) = self.conn.get() else {
            return;
        };
        let (after, task) = conn.lost();
        for next in self.registry.close(conn.id) {
            let after = next.admit();
            run(py, &next, after);
        }
        run(py, conn, after);
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
            run(py, conn, after);
        }
    }

    /// Parses pipelined bytes left past the last response (scheduled by the connection with
    /// `call_soon` when that response completed).
    fn resume(&self, py: Python<'_>) {
        if let Some(conn) = self.conn.get() {
            let after = conn.resume(py);
            self.apply(py, conn, after);
        }
    }
}

/// Hands a parsed request to the application: `pre_request`, then the app's coroutine as a
/// task on the loop, whose end `Cycle::task_done` looks at.
fn start_app(py: Python<'_>, conn: &Arc<Connection>, start: Start) {
    let shared = &conn.shared;
    let cycle = if start.websocket {
        WsCycle::new(py, Arc::clone(conn), start.generation).map(Py::into_any)
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
        let app = shared.s.app.bind(py);
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
