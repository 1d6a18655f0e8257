//! The PEP 3333 bridge: runs one request through the WSGI application.
//!
//! A worker parses the request head with gunicorn-http, wraps the connection in an
//! [`Exchange`], and calls [`Bridge::handle_request`], the one entry point. Nothing here
//! depends on how the worker schedules connections, so the sync, gthread and greenlet workers
//! share it. The GIL is released around every socket operation. By concept:
//!
//! - [`environ`]: the environ dict (constant keys, CGI variables, per-request objects);
//! - [`hooks`]: `pre_request` / `post_request` around the app;
//! - `respond`: sending what the app returned (iterables, `write()`, sendfile);
//! - `app_error`: an exception becomes gunicorn's error page and log line;
//! - [`exchange`]: the request's connection, body input and response state, shared with the
//!   request's Python objects: `input` (`wsgi.input`), `start_response`, `errors`
//!   (`wsgi.errors`), `file_wrapper`.

mod app_error;
pub mod environ;
mod errors;
pub mod exchange;
mod file_wrapper;
pub mod hooks;
mod input;
mod respond;
mod start_response;

use std::os::fd::BorrowedFd;
use std::time::Instant;

use gunicorn_core::Config;
use gunicorn_http::{
    build_environ, ConnInfo, Environ, HttpConfig, HttpError, Local, ProxyInfo, Request,
    CONTINUE_100,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use errors::Errors;
pub use exchange::{Exchange, Outcome};
pub use file_wrapper::FileWrapper;
pub use input::Input;
pub use start_response::{EarlyHints, StartResponse, WriteCallable};

use crate::app::App;
use environ::{CgiSource, EnvironTemplate};
use respond::SendError;

/// How a worker class runs requests; fixed per worker.
#[derive(Debug, Clone, Copy)]
pub struct BridgeOptions {
    /// `wsgi.multithread` (true for gthread).
    pub multithread: bool,
    /// `wsgi.multiprocess` (gunicorn: `workers > 1`).
    pub multiprocess: bool,
    /// Every response says `Connection: close` (the sync worker).
    pub always_close: bool,
    /// Send `wsgi.file_wrapper` responses with sendfile(2) (`--no-sendfile` turns it off).
    pub sendfile: bool,
}

impl BridgeOptions {
    /// The options for a worker class from the configuration.
    pub fn from_config(cfg: &Config, multithread: bool, always_close: bool) -> BridgeOptions {
        BridgeOptions {
            multithread,
            multiprocess: cfg.workers > 1,
            always_close,
            sendfile: cfg.sendfile.enabled(),
        }
    }
}

/// The per-worker WSGI bridge.
pub struct Bridge {
    app: Py<PyAny>,
    environ: EnvironTemplate,
    opts: BridgeOptions,
}

/// The CGI variables of a request for the access log, which may read any of them through
/// `{name}e` atoms: built once, before the app, only when an access line will be written.
type AccessVars = Option<Environ>;

impl Bridge {
    /// Builds the bridge for `app`. (Firing `post_worker_init` is the worker's boot's
    /// business: `worker_boot::load_app_and_bridge`.)
    pub fn new(py: Python<'_>, app: &App, opts: BridgeOptions) -> PyResult<Bridge> {
        Ok(Bridge {
            app: app.callable().clone_ref(py),
            environ: EnvironTemplate::new(py, opts.multithread, opts.multiprocess)?,
            opts,
        })
    }

    /// A `socket.socket` for a whole connection, made once and given to each of its requests
    /// with [`Exchange::set_client_socket`] (gunicorn's gthread passes the connection's socket
    /// object): it wraps a CLOEXEC duplicate of `fd`, so the app closing it does not close the
    /// connection. The worker must close it when the connection ends: a duplicate left open
    /// keeps the connection from being closed.
    pub fn connection_socket(
        &self,
        py: Python<'_>,
        fd: BorrowedFd<'_>,
        local: &Local,
    ) -> Option<Py<PyAny>> {
        self.environ.connection_socket(py, fd, local)
    }

    /// Runs the app for `req` and sends its response on `exchange`: the one entry point of
    /// every worker class.
    ///
    /// The CGI variables go straight from the parsed request into the environ dict; they are
    /// built as Rust strings first only when the access log will want them, once. Err (nothing
    /// sent, the app not called) when the request cannot have an environ (a path outside
    /// `SCRIPT_NAME`): the worker answers it like a parse error. App errors never come back as
    /// Err: they become a 500 page (when the head is not sent yet) and an `Error handling
    /// request` log line with the traceback.
    pub fn handle_request(
        &self,
        py: Python<'_>,
        req: &Request,
        conn: &ConnInfo,
        proxy: Option<&ProxyInfo>,
        http: &HttpConfig,
        exchange: &Exchange,
    ) -> Result<Outcome, HttpError> {
        // --logger-class: the class's access() gets the Python environ instead.
        let custom_logger = crate::logging::logger_class::active();
        let access: AccessVars = if !custom_logger && crate::logging::access::wanted() {
            Some(build_environ(req, conn, proxy, http)?)
        } else {
            None
        };
        // gunicorn's request_start: the head is parsed, the app is about to run. Read only
        // for an access line or metrics (a clock read per request otherwise).
        let start = (custom_logger || access.is_some()).then(Instant::now);
        let source = match &access {
            Some(vars) => CgiSource::Built(vars),
            None => CgiSource::Parsed { proxy, http },
        };
        let env = self.environ.cgi_dict(py, req, conn, source)?;
        let (outcome, client_gone, environ) = self.run(py, req, conn, env, exchange, custom_logger);
        // gunicorn writes no access line for a request whose client vanished.
        if let (Some(vars), Some(status), false, Some(start)) =
            (&access, outcome.status, client_gone, start)
        {
            log_access(py, req, vars, exchange, status, outcome.body_bytes, start);
        }
        if let (Some(environ), Some(status), false, Some(start)) =
            (&environ, outcome.status, client_gone, start)
        {
            log_access_to_class(
                py,
                req,
                environ,
                exchange,
                status,
                outcome.body_bytes,
                start,
            );
        }
        Ok(outcome)
    }

    /// Runs the app with the environ `env` (CGI part done), between the request hooks, and
    /// sends the response. Returns the outcome, whether the client vanished, and the environ
    /// when `keep_environ` (for a logger class's access()).
    fn run<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
        conn: &ConnInfo,
        env: PyResult<Bound<'py, PyDict>>,
        exchange: &Exchange,
        keep_environ: bool,
    ) -> (Outcome, bool, Option<Bound<'py, PyDict>>) {
        // gunicorn answers `Expect: 100-continue` before calling the app.
        if req.expect_continue
            && exchange
                .blocking_io(py, || exchange.lock().write_raw(CONTINUE_100))
                .is_err()
        {
            return (exchange.lock().outcome(false), false, None);
        }
        let (pre_hook, post_hook) = hooks::wanted();
        let mut req_obj = None;
        let mut socket = None;
        let mut hook_environ = None;
        let result = hooks::pre_request(py, req, pre_hook)
            .map(|r| req_obj = r)
            .and(env)
            .and_then(|env| {
                socket = self.environ.add_request_objects(py, &env, exchange, conn)?;
                if post_hook || keep_environ {
                    hook_environ = Some(env.clone());
                }
                let start_response = StartResponse {
                    exchange: exchange.clone(),
                };
                self.app.bind(py).call1((env, start_response))
            });
        let sent = match result {
            Err(e) => Err(SendError::App(e)),
            Ok(iterable) => {
                let sent = respond::send(py, &iterable, exchange, self.opts.sendfile);
                // PEP 3333: close() is called whatever happened, even on errors.
                let closed = respond::close_iterable(py, &iterable);
                match (sent, closed) {
                    (Ok(()), Err(e)) => Err(SendError::App(e)),
                    (sent, _) => sent,
                }
            }
        };
        // Close our duplicate of the client socket explicitly: the request is over, and a
        // socket left to the garbage collector formats an "unclosed socket" ResourceWarning
        // (getsockname + getpeername) even when warnings are filtered out.
        if let Some(sock) = socket {
            let _ = sock.call_method0(pyo3::intern!(py, "close"));
        }
        let ok = sent.is_ok();
        let client_gone = match sent {
            Ok(()) => false,
            Err(SendError::Client(e)) => {
                respond::log_client_gone(&e);
                true
            }
            Err(SendError::App(e)) => {
                app_error::app_error(py, req, conn, exchange, e);
                false
            }
        };
        let outcome = exchange.lock().outcome(ok);
        if post_hook {
            hooks::post_request(
                py,
                req,
                req_obj.as_ref(),
                hook_environ.as_ref(),
                exchange,
                &outcome,
            );
        }
        (outcome, client_gone, hook_environ.filter(|_| keep_environ))
    }
}

/// Writes the access line, formatted and written without the GIL (kept only by cooperative
/// greenlet workers).
fn log_access(
    py: Python<'_>,
    req: &Request,
    vars: &Environ,
    exchange: &Exchange,
    status: u16,
    body_bytes: u64,
    start: Instant,
) {
    let duration = start.elapsed();
    exchange.blocking_io(py, || {
        let st = exchange.lock();
        crate::logging::access::record(req, vars, &st.response, status, body_bytes, duration);
    });
}

/// --logger-class: the class's `access(resp, req, environ, request_time)`, with the GIL (it is
/// Python), then the StatsD metrics the Rust access path would have sent.
fn log_access_to_class(
    py: Python<'_>,
    req: &Request,
    environ: &Bound<'_, PyDict>,
    exchange: &Exchange,
    status: u16,
    body_bytes: u64,
    start: Instant,
) {
    let duration = start.elapsed();
    let (status_text, headers) = {
        let st = exchange.lock();
        let text = match (st.reply, &st.response) {
            (exchange::Reply::HeadSent, Some(r)) => r.status_line().to_string(),
            _ => crate::server_hooks::error_status_text(status),
        };
        let headers = st.response.as_ref().map(|r| r.header_pairs());
        (text, headers.unwrap_or_default())
    };
    crate::logging::logger_class::access(
        py,
        req,
        environ,
        crate::logging::logger_class::Finished {
            status: status_text,
            headers: &headers,
            sent: body_bytes,
            duration,
        },
    );
    gunicorn_core::statsd::access(status, duration);
}
