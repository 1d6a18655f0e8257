//! What every connection of an asgi worker shares: the settings, the application and how to
//! call it, the loop's methods, the lifespan state, the request budget and the worker's
//! context (heartbeat, stop requests).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gunicorn_core::{StopKind, WorkerContext};
use gunicorn_http::{ConnInfo, HttpConfig, Local, ProxyInfo, Request};
use gunicorn_serve::{Count, RequestBudget};
use pyo3::prelude::*;
use pyo3::types::PyDict;

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
    pub call_soon: Py<PyAny>,
    /// The driver's `pathsend(send, path)` coroutine function (`http.response.pathsend`).
    pub pathsend: Py<PyAny>,
}

/// Settings and state of one worker, shared by its connections.
pub struct Shared {
    /// What it was built from.
    pub s: Settings,
    pub interface: Interface,
    budget: RequestBudget,
    loop_refs: OnceLock<LoopRefs>,
    /// The lifespan state (`scope["state"]` is a shallow copy of it per request).
    state: OnceLock<Py<PyDict>>,
    /// The ppid check already asked for a stop.
    pub orphaned: AtomicBool,
}

/// The worker's settings, from the configuration and the loaded application.
pub struct Settings {
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
    /// `--max-requests` with its jitter drawn; None is unlimited.
    pub max_requests: Option<u64>,
    pub app: Py<PyAny>,
    /// `--certfile`...: TLS on every connection (loaded in the master).
    pub tls: Option<gunicorn_serve::tls::Acceptor>,
    pub ctx: WorkerContext,
}

impl Shared {
    pub fn new(s: Settings, interface: Interface) -> Shared {
        Shared {
            budget: RequestBudget::new(s.max_requests),
            s,
            interface,
            loop_refs: OnceLock::new(),
            state: OnceLock::new(),
            orphaned: AtomicBool::new(false),
        }
    }

    /// Counts a request; true when the connection must close after it (max_requests reached,
    /// which also starts a graceful stop, as gunicorn's `alive = False`).
    pub fn count_request(&self) -> bool {
        let count = self.budget.count();
        if count == Count::Last {
            gunicorn_serve::log_autorestart();
            self.s.ctx.shutdown.request(StopKind::Graceful);
        }
        count.is_final()
    }

    pub fn stopping(&self) -> bool {
        self.s.ctx.shutdown.requested().is_some()
    }

    /// How long a connection may wait for a request head: `keepalive` (gunicorn's keep-alive
    /// timer between requests, and the greenlet worker's bound on the first head), or
    /// `--timeout` for the first head when keep-alive is off.
    pub fn head_timeout(&self, first: bool) -> Duration {
        if first && self.s.keepalive.is_zero() {
            self.s.timeout
        } else {
            self.s.keepalive
        }
    }

    /// A finished response must be reported (access log, StatsD, post_request, a logger
    /// class).
    pub fn wants_finished(&self) -> bool {
        gunicorn_python::logging::access::wanted()
            || gunicorn_python::server_hooks::request_hooks().1
            || gunicorn_python::logging::logger_class::active()
    }

    /// A new asyncio Future of the worker's loop (what `receive()` or `send()` returns when it
    /// must wait).
    pub fn new_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.loop_refs()?.create_future.bind(py).call0()?.unbind())
    }

    pub fn loop_refs(&self) -> PyResult<&LoopRefs> {
        self.loop_refs
            .get()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the loop is not bound"))
    }

    /// The scope of `req` on the connection `info` (with its PROXY header's addresses).
    pub(crate) fn scope(
        &self,
        py: Python<'_>,
        kind: ScopeType,
        req: &Request,
        info: &ConnInfo,
        proxy: Option<&ProxyInfo>,
    ) -> PyResult<Py<PyDict>> {
        let state = self.state.get().map(|s| s.bind(py).clone());
        let parts = ScopeParts {
            root_path: &self.s.root_path,
            state: state.as_ref(),
        };
        scope::build(py, kind, req, info, proxy, &parts).map(Bound::unbind)
    }

    /// Binds the loop's methods and the lifespan state, before the first connection.
    pub(crate) fn bind_loop(&self, refs: LoopRefs, state: Py<PyDict>) {
        let _ = self.loop_refs.set(refs);
        let _ = self.state.set(state);
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
