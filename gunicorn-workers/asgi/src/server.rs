//! What every connection of an asgi worker shares ([`Shared`]), and the worker's server object
//! as the Python driver sees it ([`AsgiServer`]): the protocol factory, the heartbeat, the
//! stop requests and the graceful drain's view of open connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use gunicorn_core::{log_debug, log_error, log_info, log_warning, StopKind, WorkerContext};
use gunicorn_http::{HttpConfig, Local, Request};
use gunicorn_serve::{Count, RequestBudget};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::connection::{Conn, Connection};
use crate::protocol::HttpProtocol;
use crate::scope::{self, ScopeParts, ScopeType};

/// How the application is called (decided once at boot by the driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `await app(scope, receive, send)`.
    Asgi3,
    /// ASGI 2 ("double callable"): `await app(scope)(receive, send)`.
    Asgi2,
}

/// The event loop's methods the connections call, looked up once.
pub struct LoopRefs {
    pub create_future: Py<PyAny>,
    pub create_task: Py<PyAny>,
    pub call_later: Py<PyAny>,
}

/// Settings and state of one worker, shared by its connections.
pub struct Shared {
    pub http: Arc<HttpConfig>,
    /// The address of each listener, by the index the driver gives the protocol factory.
    pub locals: Vec<Local>,
    /// `--root-path`.
    pub root_path: String,
    /// `--keep-alive`; zero closes every connection after its response.
    pub keepalive: Duration,
    /// `--timeout`: the bound on a first request head when keep-alive is off.
    pub timeout: Duration,
    /// `--asgi-disconnect-grace-period`, seconds.
    pub disconnect_grace: f64,
    /// `--websocket-max-message-size`.
    pub ws_max_message: usize,
    pub graceful_timeout: f64,
    pub app: Py<PyAny>,
    pub interface: Interface,
    /// `--certfile`...: TLS on every connection (loaded in the master).
    tls: Option<gunicorn_serve::tls::Acceptor>,
    budget: RequestBudget,
    pub ctx: WorkerContext,
    loop_refs: OnceLock<LoopRefs>,
    /// The lifespan state (`scope["state"]` is a shallow copy of it per request).
    state: OnceLock<Py<PyDict>>,
    conns: Mutex<HashMap<u64, Weak<Connection>>>,
    next_id: AtomicU64,
    orphaned: AtomicBool,
}

/// What [`Shared`] is built from.
pub struct Settings {
    pub http: Arc<HttpConfig>,
    pub locals: Vec<Local>,
    pub root_path: String,
    pub keepalive: Duration,
    pub timeout: Duration,
    pub disconnect_grace: f64,
    pub ws_max_message: usize,
    pub graceful_timeout: f64,
    pub max_requests: Option<u64>,
    pub app: Py<PyAny>,
    pub tls: Option<gunicorn_serve::tls::Acceptor>,
    pub ctx: WorkerContext,
}

impl Shared {
    /// Counts a request; true when the connection must close after it (max_requests reached,
    /// which also starts a graceful stop, as gunicorn's `alive = False`).
    pub fn count_request(&self) -> bool {
        let count = self.budget.count();
        if count == Count::Last {
            gunicorn_serve::log_autorestart();
            self.ctx.shutdown.request(StopKind::Graceful);
        }
        count.is_final()
    }

    pub fn stopping(&self) -> bool {
        self.ctx.shutdown.requested().is_some()
    }

    /// How long a connection may wait for a request head: `keepalive` (gunicorn's keep-alive
    /// timer between requests, and the greenlet worker's bound on the first head), or
    /// `--timeout` for the first head when keep-alive is off.
    pub fn head_timeout(&self, first: bool) -> Duration {
        if first && self.keepalive.is_zero() {
            self.timeout
        } else {
            self.keepalive
        }
    }

    /// A finished response must be reported (access log, StatsD, post_request, a logger
    /// class).
    pub fn wants_finished(&self) -> bool {
        gunicorn_python::logging::access::wanted()
            || gunicorn_python::server_hooks::request_hooks().1
            || gunicorn_python::logging::logger_class::active()
    }

    pub fn loop_refs(&self) -> PyResult<&LoopRefs> {
        self.loop_refs
            .get()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the loop is not bound"))
    }

    /// The scope of `req` on the connection `st`.
    pub(crate) fn scope(
        &self,
        py: Python<'_>,
        kind: ScopeType,
        req: &Request,
        st: &Conn,
    ) -> PyResult<Py<PyDict>> {
        let state = self.state.get().map(|s| s.bind(py).clone());
        let parts = ScopeParts {
            root_path: &self.root_path,
            state: state.as_ref(),
        };
        scope::build(py, kind, req, &st.info, st.reader.proxy_info(), &parts).map(Bound::unbind)
    }

    fn register(&self, conn: &Arc<Connection>) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(conn.id, Arc::downgrade(conn));
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// A connection accepted with `info`; None when its TLS session cannot be set up (out of
    /// memory in rustls), and the caller closes it.
    pub(crate) fn new_connection(
        self: &Arc<Self>,
        info: gunicorn_http::ConnInfo,
    ) -> Option<Arc<Connection>> {
        let tls = match &self.tls {
            None => None,
            Some(acceptor) => match acceptor.session() {
                Ok(session) => Some(Box::new(session)),
                Err(e) => {
                    gunicorn_serve::tls::handshake_failed(&info, &e);
                    return None;
                }
            },
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection::new(id, Arc::clone(self), info, tls));
        self.register(&conn);
        Some(conn)
    }

    fn open_connections(&self) -> Vec<Arc<Connection>> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

/// Logs an exception the application (or a hook) raised, with its traceback.
pub fn log_app_error(py: Python<'_>, what: &str, err: &PyErr) {
    gunicorn_core::log::log_exception(format_args!(
        "{what}\n{}",
        format_traceback(py, err).trim_end()
    ));
}

/// The traceback of `err` as Python prints it.
pub fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        tb.getattr("format_exception")?
            .call1((err.value(py),))?
            .extract::<Vec<String>>()
    });
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}

/// The worker's server, as the driver sees it.
#[pyclass(module = "gunicorn_asgi", name = "Server", frozen)]
pub struct AsgiServer {
    pub shared: Arc<Shared>,
}

impl AsgiServer {
    pub fn new(s: Settings, interface: Interface) -> AsgiServer {
        AsgiServer {
            shared: Arc::new(Shared {
                http: s.http,
                locals: s.locals,
                root_path: s.root_path,
                keepalive: s.keepalive,
                timeout: s.timeout,
                disconnect_grace: s.disconnect_grace,
                ws_max_message: s.ws_max_message,
                graceful_timeout: s.graceful_timeout,
                app: s.app,
                interface,
                tls: s.tls,
                budget: RequestBudget::new(s.max_requests),
                ctx: s.ctx,
                loop_refs: OnceLock::new(),
                state: OnceLock::new(),
                conns: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                orphaned: AtomicBool::new(false),
            }),
        }
    }
}

#[pymethods]
impl AsgiServer {
    /// Binds the worker's event loop and the lifespan state, before the first connection.
    fn start(&self, event_loop: &Bound<'_, PyAny>, state: &Bound<'_, PyDict>) -> PyResult<()> {
        let refs = LoopRefs {
            create_future: event_loop.getattr("create_future")?.unbind(),
            create_task: event_loop.getattr("create_task")?.unbind(),
            call_later: event_loop.getattr("call_later")?.unbind(),
        };
        let _ = self.shared.loop_refs.set(refs);
        let _ = self.shared.state.set(state.clone().unbind());
        Ok(())
    }

    /// A protocol for a connection accepted on listener `index` (the factory given to
    /// `loop.create_server`).
    fn protocol(&self, index: usize) -> HttpProtocol {
        HttpProtocol::new(Arc::clone(&self.shared), index)
    }

    /// The heartbeat (about once a second): proves the worker alive to the master, closes
    /// connections idle past their limit, and notices a new parent (gunicorn's `notify()` and
    /// ppid check). False once the parent changed.
    fn tick(&self, py: Python<'_>) -> bool {
        self.shared.ctx.heartbeat.notify();
        self.close_idle_past(py, false);
        if nix::unistd::getppid().as_raw() != self.shared.ctx.ppid {
            if !self.shared.orphaned.swap(true, Ordering::AcqRel) {
                log_info!(
                    "Parent changed, shutting down: asgi worker (pid: {})",
                    std::process::id()
                );
                self.shared.ctx.shutdown.request(StopKind::Graceful);
            }
            return false;
        }
        true
    }

    /// `None`, `"graceful"` (TERM, max_requests, parent gone) or `"quick"` (INT, QUIT). Empties
    /// the wake-up pipe so the driver's reader fires again only on a new signal.
    fn stop_requested(&self) -> Option<&'static str> {
        let mut scratch = [0u8; 64];
        while matches!(
            nix::unistd::read(self.shared.ctx.shutdown.wake_fd(), &mut scratch),
            Ok(n) if n > 0
        ) {}
        match self.shared.ctx.shutdown.requested() {
            None => None,
            Some(StopKind::Graceful) => Some("graceful"),
            Some(StopKind::Quick) => Some("quick"),
        }
    }

    /// Closes the connections waiting for a request (graceful stop); busy ones close after
    /// their response.
    fn close_idle(&self, py: Python<'_>) {
        self.close_idle_past(py, true);
        for conn in self.shared.open_connections() {
            let after = conn.going_away();
            crate::protocol::run_after(py, &conn, after);
        }
    }

    /// Open connections (the graceful drain waits for none).
    fn connections(&self) -> usize {
        self.shared.open_connections().len()
    }

    /// Closes every connection's transport (the end of the drain, or a quick stop).
    fn close_all(&self, py: Python<'_>) {
        for conn in self.shared.open_connections() {
            if let Some(t) = conn.transport(py) {
                let _ = t.bind(py).call_method0("close");
            }
        }
    }

    #[getter]
    fn wake_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.shared.ctx.shutdown.wake_fd().as_raw_fd()
    }

    #[getter]
    fn graceful_timeout(&self) -> f64 {
        self.shared.graceful_timeout
    }

    #[getter]
    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn log_info(&self, msg: &str) {
        log_info!("{msg}");
    }

    fn log_warning(&self, msg: &str) {
        log_warning!("{msg}");
    }

    fn log_error(&self, msg: &str) {
        log_error!("{msg}");
    }

    fn log_debug(&self, msg: &str) {
        log_debug!("{msg}");
    }
}

impl AsgiServer {
    fn close_idle_past(&self, py: Python<'_>, stopping: bool) {
        let now = Instant::now();
        let stopping = stopping || self.shared.stopping();
        for conn in self.shared.open_connections() {
            if conn.idle_past(now, stopping) {
                if let Some(t) = conn.transport(py) {
                    let _ = t.bind(py).call_method0("close");
                }
            }
        }
    }
}
