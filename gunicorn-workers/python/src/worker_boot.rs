//! The part of a Python worker's boot that the sync, gthread and greenlet classes share: load
//! the application, read the HTTP settings and build the WSGI bridge (gunicorn's
//! `Worker.init_process` up to `load_wsgi`), and turn the inherited listeners into non-blocking
//! ones with the address each reports in the environ.

use std::sync::Arc;

use gunicorn_core::{Config, Listener, LocalAddr, WorkerError};
use gunicorn_http::{HttpConfig, Local};
use pyo3::Python;

use crate::app;
use crate::wsgi::{self, Bridge, BridgeOptions};

/// Loads the application (Python starts here unless it was inherited, preloaded; `raw_env`,
/// `chdir` and `pythonpath` are applied by the loader), then reads the HTTP settings (after
/// `raw_env`, so `SCRIPT_NAME` from `-e` counts) and builds the bridge, which runs the
/// `post_worker_init` hook.
///
/// A load failure logs its traceback and is `WorkerError::AppLoad` (gunicorn's exit 4); the
/// arbiter prints the one-line message. Anything else failing is `WorkerError::Boot` (exit 3).
pub fn load_app_and_bridge(
    cfg: &Config,
    opts: BridgeOptions,
) -> Result<(Bridge, Arc<HttpConfig>), WorkerError> {
    let app = app::load(cfg).map_err(|e| {
        e.log_traceback();
        WorkerError::AppLoad(e.to_string())
    })?;
    let http = Arc::new(wsgi::http_config(cfg).map_err(WorkerError::Boot)?);
    let bridge = Python::attach(|py| Bridge::new(py, &app, opts))
        .map_err(|e| WorkerError::Boot(e.to_string()))?;
    Ok((bridge, http))
}

/// The listeners made non-blocking, each with the address the environ reports for it
/// (`SERVER_NAME`/`SERVER_PORT`, or the socket path for a unix listener).
pub fn nonblocking_listeners(
    listeners: Vec<Listener>,
) -> Result<Vec<(Listener, Local)>, WorkerError> {
    let boot = |e: std::io::Error| WorkerError::Boot(e.to_string());
    let mut out = Vec::with_capacity(listeners.len());
    for l in listeners {
        l.set_nonblocking(true).map_err(boot)?;
        let local = match l.local_addr().map_err(boot)? {
            LocalAddr::Tcp(a) => Local::Tcp(a),
            LocalAddr::Unix(p) => Local::Unix(p.to_string_lossy().into_owned()),
        };
        out.push((l, local));
    }
    Ok(out)
}
