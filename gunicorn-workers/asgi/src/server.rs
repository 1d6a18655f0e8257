//! The worker's server object as the Python driver sees it ([`AsgiServer`]): the protocol
//! factory, the heartbeat, the stop requests and the graceful drain's view of the open
//! connections.

use std::sync::Arc;
use std::time::Instant;

use gunicorn_core::{log_debug, log_error, log_info, log_warning};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::protocol::HttpProtocol;
use crate::registry::Registry;
use crate::shared::{Interface, LoopRefs, Settings, Shared};
use gunicorn_python::event_loop;

/// The worker's server, as the driver sees it.
#[pyclass(module = "gunicorn_asgi", name = "Server", frozen)]
pub struct AsgiServer {
    pub shared: Arc<Shared>,
    registry: Arc<Registry>,
}

impl AsgiServer {
    pub fn new(s: Settings, interface: Interface, worker_connections: usize) -> AsgiServer {
        AsgiServer {
            shared: Arc::new(Shared::new(s, interface)),
            registry: Arc::new(Registry::new(worker_connections)),
        }
    }
}

#[pymethods]
impl AsgiServer {
    /// Binds the worker's event loop and the lifespan state, before the first connection.
    fn start(
        &self,
        event_loop: &Bound<'_, PyAny>,
        state: &Bound<'_, PyDict>,
        pathsend: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let refs = LoopRefs {
            create_future: event_loop.getattr("create_future")?.unbind(),
            create_task: event_loop.getattr("create_task")?.unbind(),
            call_later: event_loop.getattr("call_later")?.unbind(),
            call_soon: event_loop.getattr("call_soon")?.unbind(),
            pathsend: pathsend.clone().unbind(),
        };
        self.shared.bind_loop(refs, state.clone().unbind());
        Ok(())
    }

    /// A protocol for a connection accepted on listener `index` (the factory given to
    /// `loop.create_server`).
    fn protocol(&self, index: usize) -> HttpProtocol {
        HttpProtocol::new(Arc::clone(&self.shared), Arc::clone(&self.registry), index)
    }

    /// The heartbeat (about once a second): proves the worker alive to the master, closes
    /// connections idle past their limit, and notices a new parent (gunicorn's `notify()` and
    /// ppid check). False once the parent changed.
    fn tick(&self, py: Python<'_>) -> bool {
        self.close_idle_past(py, false);
        event_loop::tick(&self.shared.s.ctx, &self.shared.orphaned, "asgi")
    }

    /// `None`, `"graceful"` (TERM, max_requests, parent gone) or `"quick"` (INT, QUIT). Empties
    /// the wake-up pipe so the driver's reader fires again only on a new signal.
    fn stop_requested(&self) -> Option<&'static str> {
        event_loop::stop_requested(&self.shared.s.ctx)
    }

    /// Closes the connections waiting for a request (graceful stop); busy ones close after
    /// their response.
    fn close_idle(&self, py: Python<'_>) {
        for conn in self.registry.admit_all() {
            let after = conn.admit();
            crate::apply::run(py, &conn, after);
        }
        self.close_idle_past(py, true);
        for conn in self.registry.open_connections() {
            let after = conn.going_away();
            crate::apply::run(py, &conn, after);
        }
    }

    /// Open connections (the graceful drain waits for none).
    fn connections(&self) -> usize {
        self.registry.open_connections().len()
    }

    /// Closes every connection's transport (the end of the drain, or a quick stop).
    fn close_all(&self, py: Python<'_>) {
        for conn in self.registry.open_connections() {
            if let Some(t) = conn.transport(py) {
                let _ = t.bind(py).call_method0("close");
            }
        }
    }

    #[getter]
    fn wake_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.shared.s.ctx.shutdown.wake_fd().as_raw_fd()
    }

    #[getter]
    fn graceful_timeout(&self) -> f64 {
        self.shared.s.graceful_timeout
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
        for conn in self.registry.open_connections() {
            if conn.idle_past(now, stopping) {
                if let Some(t) = conn.transport(py) {
                    let _ = t.bind(py).call_method0("close");
                }
            }
        }
    }
}
