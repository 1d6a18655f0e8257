//! The greenlet worker classes `gevent` and `eventlet`: Python's hub schedules the worker.
//!
//! After the fork the worker starts Python, monkey-patches the standard library with the chosen
//! library (before the application is imported, as gunicorn's `init_process` does), loads the
//! app, and hands the listeners to a small embedded Python driver (`driver.py`). The driver
//! accepts through the library's cooperative sockets and runs one greenlet per connection; each
//! greenlet calls `server::GreenServer::serve`, which parses, builds the environ, runs the app
//! through the WSGI bridge and encodes the response in Rust, reading and writing through the
//! cooperative socket (`green_socket::GreenSocket`), so a would-block switches greenlets
//! instead of blocking the thread. With `--certfile`, each connection is a TLS stream over that
//! socket (`handshake.rs`, the acceptor loaded in the master when the worker is built). With
//! `h2` in `--http-protocols`, HTTP/2 connections (ALPN, or h2c from trusted peers) go to the
//! worker's HTTP/2 thread and each of their streams runs in a greenlet of its own (`h2.rs`).
//! See docs/greenlet.md for the design.
#![deny(unsafe_code)]

mod green_socket;
mod h2;
mod handshake;
mod library;
mod server;
#[allow(unsafe_code)]
mod sys;

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use gunicorn_core::{
    register_worker, BuildError, Config, Worker, WorkerClass, WorkerContext, WorkerError,
};
use gunicorn_python::wsgi::BridgeOptions;
use gunicorn_python::{ensure_initialized, event_loop, worker_boot};
use gunicorn_serve::h2::{H2Mode, H2Server, H2Settings};
use gunicorn_serve::RequestBudget;
use pyo3::prelude::*;
use pyo3::types::PyModule;

pub use library::Library;
use server::GreenServer;

register_worker!(WorkerClass::new(
    "gevent",
    &[
        "egg:gunicorn#gevent",
        "gunicorn.workers.ggevent.GeventWorker"
    ],
    build_gevent
));

// gunicorn's `GeventPyWSGIWorker` (gevent's own `pywsgi` server) under its two names: served
// here by the gevent worker above (our parser, environ and access log; see docs/greenlet.md).
register_worker!(WorkerClass::new(
    "gevent_pywsgi",
    &[
        "egg:gunicorn#gevent_pywsgi",
        "gunicorn.workers.ggevent.GeventPyWSGIWorker"
    ],
    build_gevent
));

register_worker!(WorkerClass::new(
    "gevent_wsgi",
    &["egg:gunicorn#gevent_wsgi"],
    build_gevent
));

register_worker!(WorkerClass::new(
    "eventlet",
    &[
        "egg:gunicorn#eventlet",
        "gunicorn.workers.geventlet.EventletWorker"
    ],
    build_eventlet
));

/// The driver module, compiled in the worker once Python runs.
const DRIVER: &str = include_str!("driver.py");

/// A greenlet worker, built in the master before each fork.
#[derive(Debug)]
pub struct GreenletWorker {
    library: Library,
    /// Requests to serve before restarting (`max_requests` + jitter); None = unlimited.
    max_requests: Option<u64>,
    /// TLS for every connection (`--certfile`...), None for plain HTTP.
    tls: Option<gunicorn_serve::tls::Acceptor>,
    /// How HTTP/2 is served, if it is.
    h2: H2Mode,
}

fn build_gevent(cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    build(cfg, Library::Gevent)
}

fn build_eventlet(cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    build(cfg, Library::Eventlet)
}

fn build(cfg: &Config, library: Library) -> Result<Box<dyn Worker>, BuildError> {
    // Refuse bad HTTP settings (allow lists, header_map) before any fork.
    gunicorn_serve::http_config(cfg).map_err(|e| BuildError(e.to_string()))?;
    // The certificate and key files are read here, in the master before each fork: a bad
    // file stops the server before a worker runs, and workers read no key file.
    let mut tls = gunicorn_serve::tls::load(cfg).map_err(|e| BuildError(e.to_string()))?;
    let h2 = H2Mode::from_config(cfg);
    if h2 == H2Mode::Alpn {
        tls = tls.map(|t| t.offering_h2(&cfg.http_protocols));
    }
    Ok(Box::new(GreenletWorker {
        library,
        tls,
        h2,
        max_requests: gunicorn_core::worker::max_requests(cfg),
    }))
}

impl Worker for GreenletWorker {
    fn run(self: Box<Self>, mut ctx: WorkerContext) -> Result<(), WorkerError> {
        let cfg = Arc::clone(&ctx.config);
        ensure_initialized().map_err(|e| WorkerError::Boot(e.to_string()))?;
        // --spew on the hub's thread, before patching; the greenlets share its trace function.
        gunicorn_python::spew::start(&cfg).map_err(|e| WorkerError::Boot(e.to_string()))?;
        let driver = Python::attach(|py| -> Result<Py<PyModule>, WorkerError> {
            let code = CString::new(DRIVER).map_err(|e| WorkerError::Boot(e.to_string()))?;
            let driver = PyModule::from_code(
                py,
                &code,
                c"gunicorn_greenlet_driver.py",
                c"gunicorn_greenlet_driver",
            )
            .map_err(|e| WorkerError::Boot(e.to_string()))?;
            // Patching comes before the application is imported (gunicorn's init_process).
            self.library.patch(py, &driver)?;
            Ok(driver.unbind())
        })?;
        // sendfile(2) on the (non-blocking) client socket would spin instead of yielding to
        // the hub: file_wrapper bodies go through the cooperative socket in blksize chunks.
        // wsgi.multithread is True, as in gunicorn's gevent worker: greenlets run requests
        // concurrently, and apps use the flag to pick thread-safe (greenlet-safe) paths.
        let opts = BridgeOptions {
            sendfile: false,
            ..BridgeOptions::from_config(&cfg, true, false)
        };
        let (bridge, http) = worker_boot::load_app_and_bridge(&cfg, opts)?;
        let greenlet_exit = Python::attach(|py| -> PyResult<_> {
            Ok(py.import("greenlet")?.getattr("GreenletExit")?.unbind())
        })
        .map_err(|e| WorkerError::Boot(e.to_string()))?;
        // SIGABRT (timeout): the worker_abort server hook, then exit 1, as gunicorn.
        gunicorn_core::worker::set_abort_handler(Box::new(
            gunicorn_python::server_hooks::abort_and_exit,
        ));
        let mut listeners = Vec::new();
        for l in std::mem::take(&mut ctx.listeners) {
            listeners.push(event_loop::hand_over(l)?);
        }
        let worker_connections = usize::try_from(cfg.worker_connections.max(1)).unwrap_or(1000);
        // gunicorn: with several workers each accepts one connection per wake-up, spreading
        // the load; a single worker accepts in batches.
        let max_accept = if cfg.workers > 1 { 1 } else { 100 };
        let budget = Arc::new(RequestBudget::new(self.max_requests));
        let h2 = match self.h2 {
            H2Mode::Off => None,
            mode => {
                let boot = |e: std::io::Error| WorkerError::Boot(e.to_string());
                let (wakeups, dispatch) =
                    h2::GreenH2::dispatch(Arc::clone(&budget), ctx.shutdown.clone())
                        .map_err(boot)?;
                let server = H2Server::start(H2Settings::from_config(&cfg), &http, dispatch)
                    .map_err(boot)?;
                Some(h2::GreenH2::new(Arc::new(server), mode, &cfg, wakeups))
            }
        };
        let h2_server = h2.as_ref().map(|h| Arc::clone(&h.server));
        let server = GreenServer::new(server::Settings {
            bridge,
            http,
            locals: listeners.iter().map(|l| l.local.clone()).collect(),
            keepalive: Duration::from_secs(cfg.keepalive),
            // The master SIGKILLs at `graceful_timeout` after its TERM; the worker gives up
            // its own drain half a second earlier so it can log the cut-off and exit cleanly
            // instead of racing the kill.
            graceful_timeout: (cfg.graceful_timeout as f64 - 0.5).max(0.0),
            budget,
            tls: self.tls,
            h2,
            ctx,
            greenlet_exit,
        });
        let ran = Python::attach(|py| -> PyResult<()> {
            let server = Bound::new(py, server)?;
            let socks: Vec<(i32, i32)> = listeners.iter().map(|l| (l.fd, l.family)).collect();
            driver.bind(py).getattr(self.library.runner())?.call1((
                server,
                socks,
                worker_connections,
                max_accept,
            ))?;
            Ok(())
        });
        if let Some(server) = h2_server {
            // The driver's graceful stop waited for the HTTP/2 connections, or gave up at the
            // graceful timeout: whatever is left is closed now.
            server.stop(false);
            server.join();
        }
        ran.map_err(|e| {
            WorkerError::Runtime(Python::attach(|py| library::format_exception(py, &e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_under_gunicorns_names() {
        let cases = [
            ("gevent", "gevent"),
            ("egg:gunicorn#gevent", "gevent"),
            ("gunicorn.workers.ggevent.GeventWorker", "gevent"),
            ("gevent_pywsgi", "gevent_pywsgi"),
            ("egg:gunicorn#gevent_pywsgi", "gevent_pywsgi"),
            (
                "gunicorn.workers.ggevent.GeventPyWSGIWorker",
                "gevent_pywsgi",
            ),
            ("gevent_wsgi", "gevent_wsgi"),
            ("egg:gunicorn#gevent_wsgi", "gevent_wsgi"),
            ("eventlet", "eventlet"),
            ("egg:gunicorn#eventlet", "eventlet"),
            ("gunicorn.workers.geventlet.EventletWorker", "eventlet"),
        ];
        for (name, class) in cases {
            let found = gunicorn_core::registry::lookup(name).expect(name);
            assert_eq!(found.name, class, "{name}");
        }
    }

    #[test]
    fn the_driver_is_valid_python_text() {
        assert!(CString::new(DRIVER).is_ok());
        for name in [
            "def run_gevent(",
            "def run_eventlet(",
            "def patch_gevent(",
            "def patch_eventlet(",
        ] {
            assert!(DRIVER.contains(name), "{name}");
        }
    }
}
