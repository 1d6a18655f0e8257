//! The `asgi` worker class: ASGI 3.0 applications (FastAPI, Starlette, Django's `asgi.py`,
//! Quart...) on an asyncio or uvloop event loop, with HTTP/1.1 and WebSockets.
//!
//! After the fork the worker starts Python, loads the application and hands the listeners to a
//! small embedded Python driver (`driver.py`), which creates the event loop, runs the lifespan
//! protocol, and serves each listener with `loop.create_server`. The protocol of every
//! connection is written in Rust ([`protocol::HttpProtocol`]): the loop calls its
//! `data_received` with the bytes read, and the request head and body are parsed there by
//! gunicorn-http (the parser and limits of every other worker class), the scope is built in
//! Rust, and `send()` frames and writes the response in Rust. Only the application's
//! coroutines, and the loop itself, run Python. See docs/asgi.md.
#![deny(unsafe_code)]

mod apply;
mod connection;
mod cycle;
mod effects;
mod protocol;
mod ready;
mod reason;
mod registry;
mod scope;
mod server;
mod shared;
mod websocket;
mod ws_conn;

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use gunicorn_core::config::SettingType;
use gunicorn_core::{
    log_info, log_warning, register_worker, BuildError, Config, Worker, WorkerClass, WorkerContext,
    WorkerError,
};
use gunicorn_python::ensure_initialized;
use pyo3::prelude::*;
use pyo3::types::PyModule;

use server::AsgiServer;
use shared::{Interface, Settings};

// gunicorn's names, and the uvicorn worker classes people deploy FastAPI with (served by this
// worker instead: uvicorn is not needed).
register_worker!(WorkerClass::new(
    "asgi",
    &[
        "egg:gunicorn#asgi",
        "gunicorn.workers.gasgi.ASGIWorker",
        "uvicorn.workers.UvicornWorker",
        "uvicorn.workers.UvicornH11Worker",
        "uvicorn_worker.UvicornWorker",
        "uvicorn_worker.UvicornH11Worker",
    ],
    build
));

/// The driver module, compiled in the worker once Python runs.
const DRIVER: &str = include_str!("driver.py");

/// An asgi worker, built in the master before each fork.
#[derive(Debug)]
pub struct AsgiWorker {
    max_requests: Option<u64>,
    /// TLS for every connection (`--certfile`...), None for plain HTTP.
    tls: Option<gunicorn_serve::tls::Acceptor>,
}

fn build(cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    gunicorn_serve::http_config(cfg).map_err(|e| BuildError(e.to_string()))?;
    // The certificate and key files are read here, in the master before each fork (as for
    // every class): a bad file stops the server before a worker runs.
    let tls = gunicorn_serve::tls::load(cfg).map_err(|e| BuildError(e.to_string()))?;
    Ok(Box::new(AsgiWorker {
        max_requests: gunicorn_core::worker::max_requests(cfg),
        tls,
    }))
}

/// Turns the driver's answer about the app (`asgi3` or `asgi2`) into how it is called.
fn interface_of(kind: &str) -> Interface {
    match kind {
        "asgi2" => Interface::Asgi2,
        _ => Interface::Asgi3,
    }
}

/// Starts Python, loads the application and the driver, and asks the driver how to call the
/// app: an object that is not an ASGI callable (a WSGI app given to -k asgi) is refused here
/// with one line, gunicorn's exit 4, instead of failing on every request.
fn boot(cfg: &Config) -> Result<(Py<PyModule>, gunicorn_python::App, String), WorkerError> {
    ensure_initialized().map_err(|e| WorkerError::Boot(e.to_string()))?;
    let app = gunicorn_python::app::load(cfg).map_err(|e| match e {
        gunicorn_python::AppLoadError::Exception { message, traceback } => {
            WorkerError::Boot(format!("{}\n{message}", traceback.trim_end()))
        }
        gunicorn_python::AppLoadError::Interpreter(e) => WorkerError::Boot(e.to_string()),
        other => WorkerError::AppLoad(other.to_string()),
    })?;
    let driver = Python::attach(|py| -> Result<Py<PyModule>, WorkerError> {
        let code = CString::new(DRIVER).map_err(|e| WorkerError::Boot(e.to_string()))?;
        let driver = PyModule::from_code(
            py,
            &code,
            c"gunicorn_asgi_driver.py",
            c"gunicorn_asgi_driver",
        )
        .map_err(|e| WorkerError::Boot(e.to_string()))?;
        Ok(driver.unbind())
    })?;
    // --reload serves a SyntaxError as a 500 page: the loader gives the WSGI form of it, which
    // becomes the ASGI form here.
    let app = Python::attach(|py| -> Result<gunicorn_python::App, WorkerError> {
        let callable = app.callable().bind(py);
        match callable.getattr("gunicorn_fail_text") {
            Ok(text) => driver
                .bind(py)
                .getattr("fail_app")
                .and_then(|f| f.call1((text,)))
                .map(|a| gunicorn_python::App::from_callable(a.unbind()))
                .map_err(|e| WorkerError::Boot(e.to_string())),
            Err(_) => Ok(app.clone_ref(py)),
        }
    })?;
    let kind = Python::attach(|py| -> Result<String, WorkerError> {
        driver
            .bind(py)
            .getattr("asgi_interface")
            .and_then(|f| f.call1((app.callable().bind(py),)))
            .and_then(|k| k.extract::<String>())
            .map_err(|e| WorkerError::AppLoad(e.value(py).to_string()))
    })?;
    Ok((driver, app, kind))
}

/// Runs the driver: the loop, the lifespan and the servers, until a stop.
fn serve(
    cfg: &Config,
    driver: &Py<PyModule>,
    server: AsgiServer,
    listeners: &[gunicorn_python::event_loop::HandedListener],
    kind: &str,
) -> Result<(), WorkerError> {
    let loop_name = cfg.asgi_loop.render();
    let lifespan = cfg.asgi_lifespan.render();
    let backlog = i32::try_from(cfg.backlog).unwrap_or(2048);
    let outcome = Python::attach(|py| -> PyResult<Option<i32>> {
        let app = server.shared.s.app.clone_ref(py);
        let server = Bound::new(py, server)?;
        let socks: Vec<(i32, i32)> = listeners.iter().map(|l| (l.fd, l.family)).collect();
        driver
            .bind(py)
            .getattr("run")?
            .call1((server, app, kind, socks, loop_name, lifespan, backlog))?
            .extract::<Option<i32>>()
    });
    match outcome {
        Ok(None) => Ok(()),
        // The lifespan startup failed: gunicorn's WORKER_BOOT_ERROR.
        Ok(Some(_)) => Err(WorkerError::Boot("ASGI lifespan startup failed".into())),
        Err(e) => Err(WorkerError::Runtime(Python::attach(|py| {
            shared::format_traceback(py, &e)
        }))),
    }
}

impl Worker for AsgiWorker {
    fn run(self: Box<Self>, mut ctx: WorkerContext) -> Result<(), WorkerError> {
        let cfg = Arc::clone(&ctx.config);
        // Looked up among this class's names: a uvicorn one is served here instead.
        if cfg.worker_class.starts_with("uvicorn") {
            log_info!(
                "Worker class {} is served by the native asgi worker",
                cfg.worker_class
            );
        }
        if cfg.threads > 1 {
            // gunicorn's check_config line.
            log_warning!(
                "ASGI worker does not use threads configuration. Use worker_connections instead."
            );
        }
        if cfg.http_protocols.h2() {
            // Not gunicorn's sync text, which names this class as one that serves HTTP/2.
            log_warning!(
                "HTTP/2 is not supported by the asgi worker yet. Use gthread or gevent workers \
                 for HTTP/2 support. Falling back to HTTP/1.1 only."
            );
        }
        let (driver, app, kind) = boot(&cfg)?;
        let http = Arc::new(
            gunicorn_serve::http_config(&cfg).map_err(|e| WorkerError::Boot(e.to_string()))?,
        );
        Python::attach(|py| {
            gunicorn_python::reload::mark_app_loaded();
            gunicorn_python::server_hooks::post_worker_init(py);
        });
        gunicorn_core::worker::set_abort_handler(Box::new(
            gunicorn_python::server_hooks::abort_and_exit,
        ));
        let mut listeners = Vec::new();
        let mut locals = Vec::new();
        for l in std::mem::take(&mut ctx.listeners) {
            let handed = gunicorn_python::event_loop::hand_over(l)?;
            locals.push(handed.local.clone());
            listeners.push(handed);
        }
        let settings = Settings {
            http,
            locals,
            root_path: cfg.root_path.clone(),
            keepalive: Duration::from_secs(cfg.keepalive),
            timeout: Duration::from_secs(cfg.timeout.max(1)),
            disconnect_grace: cfg.asgi_disconnect_grace_period as f64,
            ws_max_message: usize::try_from(cfg.websocket_max_message_size).unwrap_or(usize::MAX),
            // The master SIGKILLs at graceful_timeout after its TERM; the drain ends half a
            // second earlier so the worker can log the cut-off and exit cleanly.
            graceful_timeout: (cfg.graceful_timeout as f64 - 0.5).max(0.0),
            max_requests: self.max_requests,
            tls: self.tls,
            app: Python::attach(|py| app.callable().clone_ref(py)),
            ctx,
        };
        let worker_connections = usize::try_from(cfg.worker_connections).unwrap_or(usize::MAX);
        let server = AsgiServer::new(settings, interface_of(&kind), worker_connections);
        serve(&cfg, &driver, server, &listeners, &kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_under_gunicorn_and_uvicorn_names() {
        for name in [
            "asgi",
            "egg:gunicorn#asgi",
            "gunicorn.workers.gasgi.ASGIWorker",
            "uvicorn.workers.UvicornWorker",
            "uvicorn_worker.UvicornWorker",
        ] {
            let found = gunicorn_core::registry::lookup(name).expect(name);
            assert_eq!(found.name, "asgi", "{name}");
        }
    }

    #[test]
    fn the_driver_is_valid_python_text() {
        assert!(CString::new(DRIVER).is_ok());
        for name in ["def run(", "def asgi_interface("] {
            assert!(DRIVER.contains(name), "{name}");
        }
    }
}
