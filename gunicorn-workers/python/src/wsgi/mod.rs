//! The PEP 3333 bridge: runs one request through the WSGI application.
//!
//! A worker parses the request head with gunicorn-http, wraps the connection in an
//! [`Exchange`], and calls [`Bridge::handle`]. The bridge builds the environ dict (the CGI part
//! comes ready-made from gunicorn-http; the `wsgi.*` objects are added here), calls the app,
//! sends what it returns (iterables, the `write()` callable, `wsgi.file_wrapper` with sendfile),
//! always calls the iterable's `close()`, and turns errors into gunicorn's responses and log
//! lines. Nothing here depends on how the worker schedules connections, so the sync, gthread
//! and greenlet workers share it. The GIL is released around every socket operation.

mod errors;
mod exchange;
mod file_wrapper;
mod input;
mod start_response;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;

use gunicorn_core::{log_debug, log_error, log_exception, log_warning, Config};
use gunicorn_http::{
    build_environ, error_page, for_each_environ, ConnInfo, Environ, HttpConfig, HttpError, Local,
    ProxyInfo, Request, CONTINUE_100, SERVER_SOFTWARE,
};
use pyo3::exceptions::{PyAssertionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

pub use errors::Errors;
pub use exchange::Exchange;
pub use file_wrapper::FileWrapper;
pub use input::Input;
pub use start_response::{EarlyHints, StartResponse, WriteCallable};

use crate::app::App;
use crate::pyerr::format_exception;
use gunicorn_serve::reject::peer_ip;

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

/// What happened to one request, for the worker (keep-alive decision, access log, counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The status sent, if a response (or an error page) went out.
    pub status: Option<u16>,
    /// Body bytes sent.
    pub body_bytes: u64,
    /// The response was complete and the connection may carry another request.
    pub reusable: bool,
}

/// Python-side keys are cached as interned strings; this bounds the cache against clients
/// sending many distinct header names.
const MAX_CACHED_KEYS: usize = 512;

/// The environ key cache, looked up ~20 times per request. Keyed with FNV-1a rather than the
/// default SipHash (which showed as ~2 % of a hello-world worker): the keys are short, and a
/// client crafting colliding header names can at worst make lookups scan the at most
/// [`MAX_CACHED_KEYS`] entries.
type KeyCache = HashMap<String, Py<PyString>, BuildHasherDefault<Fnv1a>>;

/// The 64-bit FNV-1a hash.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The per-worker WSGI bridge.
pub struct Bridge {
    app: Py<PyAny>,
    /// The constant part of every environ; copied per request.
    base: Py<PyDict>,
    keys: Mutex<KeyCache>,
    opts: BridgeOptions,
    socket_class: Py<PyAny>,
    key_input: Py<PyString>,
    key_hints: Py<PyString>,
    key_socket: Py<PyString>,
}

/// The CGI variables of a request, for the access log (which may read any of them through
/// `{name}e` atoms).
enum Vars<'a> {
    /// Built by the worker before the request reached the bridge.
    Built(Environ),
    /// Written straight into the environ dict; rebuilt as Rust strings only if an access
    /// line is actually wanted.
    Deferred {
        proxy: Option<&'a ProxyInfo>,
        http: &'a HttpConfig,
    },
}

/// Whether body bytes may be sent now: the client is still there and the app called
/// `start_response` (PEP 3333: no body before the status).
fn sendable(exchange: &Exchange) -> Result<(), SendError> {
    let st = exchange.lock();
    if st.write_failed {
        return Err(SendError::Client(io::ErrorKind::BrokenPipe.into()));
    }
    if st.response.is_none() {
        return Err(SendError::App(PyAssertionError::new_err(
            "Response headers not set!",
        )));
    }
    Ok(())
}

/// Why sending the response stopped.
enum SendError {
    /// The app (or its iterable) raised, or broke the WSGI rules.
    App(PyErr),
    /// The client is gone.
    Client(io::Error),
}

impl Bridge {
    /// Builds the bridge for `app`.
    pub fn new(py: Python<'_>, app: &App, opts: BridgeOptions) -> PyResult<Bridge> {
        let base = PyDict::new(py);
        base.set_item("wsgi.version", (1, 0))?;
        base.set_item("wsgi.errors", Bound::new(py, Errors)?)?;
        base.set_item("wsgi.multithread", opts.multithread)?;
        base.set_item("wsgi.multiprocess", opts.multiprocess)?;
        base.set_item("wsgi.run_once", false)?;
        base.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        base.set_item("wsgi.input_terminated", true)?;
        base.set_item("SERVER_SOFTWARE", SERVER_SOFTWARE)?;
        let socket_class = py.import("socket")?.getattr("socket")?.unbind();
        // gunicorn runs post_worker_init once the worker's application is loaded; every worker
        // class builds its bridge right after loading it.
        crate::reload::mark_app_loaded();
        crate::server_hooks::post_worker_init(py);
        Ok(Bridge {
            app: app.callable().clone_ref(py),
            base: base.unbind(),
            keys: Mutex::new(KeyCache::default()),
            opts,
            socket_class,
            key_input: PyString::intern(py, "wsgi.input").unbind(),
            key_hints: PyString::intern(py, "wsgi.early_hints").unbind(),
            key_socket: PyString::intern(py, "gunicorn.socket").unbind(),
        })
    }

    /// A copy of the constant keys with the CGI variables of `req` written straight into it,
    /// without the owned strings of [`build_environ`] (the key cache is locked once per
    /// request, not once per key). Err(HttpError) before anything was sent when the request
    /// cannot have an environ (a path outside `SCRIPT_NAME`).
    fn cgi_dict<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
        conn: &ConnInfo,
        proxy: Option<&ProxyInfo>,
        http: &HttpConfig,
    ) -> Result<PyResult<Bound<'py, PyDict>>, HttpError> {
        let env = match self.base.bind(py).copy() {
            Ok(env) => env,
            Err(e) => return Ok(Err(e)),
        };
        let mut failed = None;
        {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            for_each_environ(req, conn, proxy, http, |k, v| {
                if failed.is_none() {
                    let key = cached_key(&mut keys, py, k.as_str());
                    if let Err(e) = env.set_item(key, PyString::new(py, v)) {
                        failed = Some(e);
                    }
                }
            })?;
        }
        Ok(match failed {
            Some(e) => Err(e),
            None => Ok(env),
        })
    }

    /// Adds this request's `wsgi.input`, `wsgi.early_hints` and `gunicorn.socket` to `env`;
    /// returns the socket when the bridge made it (and must close it).
    fn add_request_objects<'py>(
        &self,
        py: Python<'py>,
        env: &Bound<'py, PyDict>,
        exchange: &Exchange,
        conn: &ConnInfo,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let input = Input {
            exchange: exchange.clone(),
        };
        env.set_item(self.key_input.bind(py), Bound::new(py, input)?)?;
        let hints = EarlyHints {
            exchange: exchange.clone(),
        };
        env.set_item(self.key_hints.bind(py), Bound::new(py, hints)?)?;
        let own = exchange
            .lock()
            .client_socket
            .as_ref()
            .map(|s| s.clone_ref(py));
        if let Some(own) = own {
            // The connection's own socket (`Exchange::set_client_socket`): in the environ, but
            // not the bridge's to close.
            env.set_item(self.key_socket.bind(py), own)?;
            return Ok(None);
        }
        let sock = self.client_socket(py, exchange, conn);
        if let Some(sock) = &sock {
            env.set_item(self.key_socket.bind(py), sock)?;
        }
        Ok(sock)
    }
}

/// `k` as an interned Python string from the bridge's cache (added while the cache is small).
fn cached_key<'py>(keys: &mut KeyCache, py: Python<'py>, k: &str) -> Bound<'py, PyString> {
    if let Some(s) = keys.get(k) {
        return s.bind(py).clone();
    }
    let s = PyString::intern(py, k);
    if keys.len() < MAX_CACHED_KEYS {
        keys.insert(k.to_owned(), s.clone().unbind());
    }
    s
}

impl Bridge {
    /// Builds the environ dict: the constant keys, the CGI variables, and this request's
    /// `wsgi.input`, `wsgi.early_hints` and `gunicorn.socket` (also returned: the bridge closes
    /// it when the request is over).
    pub fn environ<'py>(
        &self,
        py: Python<'py>,
        vars: Environ,
        exchange: &Exchange,
        conn: &ConnInfo,
    ) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyAny>>)> {
        self.environ_from(py, &vars, exchange, conn)
    }

    /// [`Bridge::environ`] leaving `vars` to the caller (the access log reads them after the
    /// request).
    fn environ_from<'py>(
        &self,
        py: Python<'py>,
        vars: &Environ,
        exchange: &Exchange,
        conn: &ConnInfo,
    ) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyAny>>)> {
        let env = self.base.bind(py).copy()?;
        {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in &vars.vars {
                env.set_item(cached_key(&mut keys, py, k), PyString::new(py, v))?;
            }
        }
        let sock = self.add_request_objects(py, &env, exchange, conn)?;
        Ok((env, sock))
    }

    /// `gunicorn.socket`: a `socket.socket` on a CLOEXEC duplicate of the client fd (closing
    /// it does not close the connection).
    fn client_socket<'py>(
        &self,
        py: Python<'py>,
        exchange: &Exchange,
        conn: &ConnInfo,
    ) -> Option<Bound<'py, PyAny>> {
        let fd = {
            let mut st = exchange.lock();
            st.transport().ok()?.as_fd().try_clone_to_owned().ok()?
        };
        self.socket_on(py, fd, &conn.local)
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
        let fd = fd.try_clone_to_owned().ok()?;
        self.socket_on(py, fd, local).map(Bound::unbind)
    }

    fn socket_on<'py>(
        &self,
        py: Python<'py>,
        fd: OwnedFd,
        local: &Local,
    ) -> Option<Bound<'py, PyAny>> {
        let family = match local {
            Local::Tcp(a) if a.is_ipv4() => libc::AF_INET,
            Local::Tcp(_) => libc::AF_INET6,
            Local::Unix(_) => libc::AF_UNIX,
        };
        let sock = self
            .socket_class
            .bind(py)
            .call1((family, libc::SOCK_STREAM, 0, fd.as_raw_fd()))
            .ok()?;
        // The Python socket object owns the duplicate now.
        let _ = fd.into_raw_fd();
        Some(sock)
    }

    /// Runs the app for `req` and sends its response on `exchange`. Never raises: app errors
    /// become a 500 page (when the head is not sent yet) and an `Error handling request` log
    /// with the traceback.
    pub fn handle(
        &self,
        py: Python<'_>,
        req: &Request,
        conn: &ConnInfo,
        vars: Environ,
        exchange: &Exchange,
    ) -> Outcome {
        let start = std::time::Instant::now();
        let env = self.base.bind(py).copy().and_then(|env| {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in &vars.vars {
                env.set_item(cached_key(&mut keys, py, k), PyString::new(py, v))?;
            }
            Ok(env)
        });
        self.run(py, req, conn, env, Vars::Built(vars), exchange, start)
    }

    /// [`Bridge::handle`] for a worker that has not built the [`Environ`]: the CGI variables
    /// go straight from the parsed request into the dict (`for_each_environ`), and are made
    /// into Rust strings again only when an access line needs them. Err (nothing sent, the app
    /// not called) when the request cannot have an environ, as `build_environ` would say.
    pub fn handle_request(
        &self,
        py: Python<'_>,
        req: &Request,
        conn: &ConnInfo,
        proxy: Option<&ProxyInfo>,
        http: &HttpConfig,
        exchange: &Exchange,
    ) -> Result<Outcome, HttpError> {
        let start = std::time::Instant::now();
        let env = self.cgi_dict(py, req, conn, proxy, http)?;
        let vars = Vars::Deferred { proxy, http };
        Ok(self.run(py, req, conn, env, vars, exchange, start))
    }

    /// Runs the app with the environ `env` (CGI part done) and sends the response.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        req: &Request,
        conn: &ConnInfo,
        env: PyResult<Bound<'_, PyDict>>,
        vars: Vars<'_>,
        exchange: &Exchange,
        // gunicorn's request_start: the head is parsed, the app is about to run.
        start: std::time::Instant,
    ) -> Outcome {
        // gunicorn answers `Expect: 100-continue` before calling the app.
        if req.expect_continue
            && exchange
                .blocking_io(py, || exchange.lock().write_raw(CONTINUE_100))
                .is_err()
        {
            return self.outcome(exchange, false);
        }
        let mut socket = None;
        // Server hooks: gunicorn's default pre_request logs "METHOD PATH" at debug level; a
        // pre_request that raises is handled like an app error. post_request sees the environ.
        let (pre_hook, post_hook) = crate::server_hooks::request_hooks();
        let mut req_obj = None;
        let mut hook_environ = None;
        let pre = if pre_hook {
            crate::server_hooks::pre_request(py, req).map(|r| req_obj = Some(r))
        } else {
            log_debug!("{} {}", req.method, req.path);
            Ok(())
        };
        let result = pre
            .and(env)
            .and_then(|env| {
                let sock = self.add_request_objects(py, &env, exchange, conn)?;
                Ok((env, sock))
            })
            .and_then(|(env, sock)| {
                socket = sock;
                if post_hook {
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
                let sent = self.send(py, &iterable, exchange);
                // PEP 3333: close() is called whatever happened, even on errors.
                let closed = close_iterable(py, &iterable);
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
        let (outcome, client_gone) = match sent {
            Ok(()) => (self.outcome(exchange, true), false),
            Err(SendError::Client(e)) => {
                log_client_gone(&e);
                (self.outcome(exchange, false), true)
            }
            Err(SendError::App(e)) => {
                self.app_error(py, req, conn, exchange, e);
                (self.outcome(exchange, false), false)
            }
        };
        if post_hook {
            self.post_request_hook(
                py,
                req,
                req_obj.as_ref(),
                hook_environ.as_ref(),
                exchange,
                &outcome,
            );
        }
        if client_gone {
            // gunicorn writes no access line for a request whose client vanished.
            return outcome;
        }
        if let Some(status) = outcome.status.filter(|_| crate::logging::access::wanted()) {
            let duration = start.elapsed();
            let rebuilt;
            let vars = match &vars {
                Vars::Built(vars) => vars,
                Vars::Deferred { proxy, http } => {
                    // Cannot fail here: the same call succeeded before the app ran.
                    rebuilt = build_environ(req, conn, *proxy, http).unwrap_or_default();
                    &rebuilt
                }
            };
            // Formatted and written without the GIL (kept only by cooperative greenlet workers).
            exchange.blocking_io(py, || {
                let st = exchange.lock();
                let headers = st.response.as_ref().map_or(&[][..], |r| &r.headers[..]);
                crate::logging::access::record(
                    req,
                    vars,
                    headers,
                    status,
                    outcome.body_bytes,
                    duration,
                );
            });
        }
        outcome
    }

    /// Runs the `post_request` server hook with what was sent.
    fn post_request_hook(
        &self,
        py: Python<'_>,
        req: &Request,
        req_obj: Option<&Bound<'_, PyAny>>,
        environ: Option<&Bound<'_, PyDict>>,
        exchange: &Exchange,
        outcome: &Outcome,
    ) {
        let (status, headers) = {
            let st = exchange.lock();
            let status = match (st.error_status, &st.status_text) {
                (Some(code), _) => Some(crate::server_hooks::error_status_text(code)),
                (None, Some(text)) if st.head_sent => Some(text.clone()),
                _ => None,
            };
            let headers = match (&st.response, st.error_status) {
                (Some(r), None) => r.headers.clone(),
                _ => Vec::new(),
            };
            (status, headers)
        };
        let resp = crate::server_hooks::ResponseInfo {
            status,
            headers: &headers,
            sent: outcome.body_bytes,
        };
        crate::server_hooks::post_request(py, req, req_obj, environ, resp);
    }

    fn outcome(&self, exchange: &Exchange, ok: bool) -> Outcome {
        let st = exchange.lock();
        let resp = st.response.as_ref();
        Outcome {
            status: st
                .error_status
                .or(resp.filter(|_| st.head_sent).map(|r| r.status)),
            body_bytes: resp.map_or(0, |r| r.body_bytes_sent()) + st.file_bytes,
            reusable: ok
                && st.head_sent
                && !st.write_failed
                && st.error_status.is_none()
                && resp.is_some_and(|r| !r.should_close()),
        }
    }

    /// An exception from the app or while sending its response.
    fn app_error(
        &self,
        py: Python<'_>,
        req: &Request,
        conn: &ConnInfo,
        exchange: &Exchange,
        err: PyErr,
    ) {
        let (head_sent, write_failed, body_error) = {
            let st = exchange.lock();
            (st.head_sent, st.write_failed, st.body_error.clone())
        };
        if write_failed {
            log_debug!("Ignoring EPIPE");
            return;
        }
        if let Some(body_error) = body_error {
            // The request body was malformed or cut short and the app did not catch it:
            // answered like a parse error (gunicorn's handle_error), or just closed when the
            // client went away mid-body.
            if matches!(body_error, HttpError::NoMoreData) {
                log_debug!(
                    "Ignoring premature end of request body from ip={}",
                    peer_ip(conn)
                );
                return;
            }
            log_warning!("Invalid request from ip={}: {}", peer_ip(conn), body_error);
            if body_error.sends_response() && !head_sent {
                let page = error_page(
                    body_error.status(),
                    body_error.reason(),
                    &body_error.message(),
                );
                self.write_error_page(py, exchange, body_error.status(), &page);
            }
            return;
        }
        let traceback = format_exception(py, &err);
        if head_sent {
            // Too late for an error page: log it, the worker closes the connection.
            log_exception!("Error handling request\n{}", traceback.trim_end());
            return;
        }
        log_exception!(
            "Error handling request {}\n{}",
            req.uri,
            traceback.trim_end()
        );
        let page = error_page(500, "Internal Server Error", "");
        self.write_error_page(py, exchange, 500, &page);
    }

    fn write_error_page(&self, py: Python<'_>, exchange: &Exchange, status: u16, page: &[u8]) {
        let r = exchange.blocking_io(py, || {
            let mut st = exchange.lock();
            st.error_status = Some(status);
            st.write_raw(page)
        });
        if let Err(e) = r {
            log_client_gone(&e);
        }
    }

    /// Sends the `n` items of a list or tuple, telling `send_chunk` which one is last so a
    /// one-chunk response leaves in a single write with its head.
    fn send_sequence<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        item: impl Fn(usize) -> PyResult<Bound<'py, PyAny>>,
        exchange: &Exchange,
    ) -> Result<(), SendError> {
        for i in 0..n {
            let chunk = item(i).map_err(SendError::App)?;
            self.send_chunk(py, &chunk, exchange, i + 1 == n)?;
        }
        if n == 0 {
            self.finish(py, exchange)?;
        }
        Ok(())
    }

    /// Sends what the app returned.
    fn send(
        &self,
        py: Python<'_>,
        iterable: &Bound<'_, PyAny>,
        exchange: &Exchange,
    ) -> Result<(), SendError> {
        if let Ok(wrapper) = iterable.cast::<FileWrapper>() {
            if self.opts.sendfile && self.sendfile(py, wrapper.get(), exchange)? {
                return Ok(());
            }
        }
        // A list or tuple (the common case): the last chunk and the end of the body go out in
        // the same write as the head for one-chunk responses.
        if let Ok(list) = iterable.cast::<PyList>() {
            return self.send_sequence(py, list.len(), |i| list.get_item(i), exchange);
        }
        if let Ok(tuple) = iterable.cast::<PyTuple>() {
            return self.send_sequence(py, tuple.len(), |i| tuple.get_item(i), exchange);
        }
        for item in iterable.try_iter().map_err(SendError::App)? {
            let item = item.map_err(SendError::App)?;
            self.send_chunk(py, &item, exchange, false)?;
        }
        self.finish(py, exchange)
    }

    /// Sends one body chunk; `last` also ends the response.
    fn send_chunk(
        &self,
        py: Python<'_>,
        item: &Bound<'_, PyAny>,
        exchange: &Exchange,
        last: bool,
    ) -> Result<(), SendError> {
        let bytes = item.cast::<PyBytes>().map_err(|_| {
            SendError::App(PyTypeError::new_err(format!(
                "response body items must be bytes, not {}",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            )))
        })?;
        let data = bytes.as_bytes();
        sendable(exchange)?;
        // Nothing to send: an empty chunk would end a chunked body early.
        if data.is_empty() && !last {
            return Ok(());
        }
        exchange
            .blocking_io(py, || exchange.lock().write_body(data, last))
            .map_err(SendError::Client)
    }

    /// Ends the response (head if not yet sent, chunked terminator).
    fn finish(&self, py: Python<'_>, exchange: &Exchange) -> Result<(), SendError> {
        sendable(exchange)?;
        exchange
            .blocking_io(py, || exchange.lock().finish())
            .map_err(SendError::Client)
    }

    /// Sends a `wsgi.file_wrapper` with sendfile(2). False when the wrapped object has no
    /// real file descriptor or the transport encrypts (the caller then iterates it).
    fn sendfile(
        &self,
        py: Python<'_>,
        wrapper: &FileWrapper,
        exchange: &Exchange,
    ) -> Result<bool, SendError> {
        if !exchange.lock().passthrough() {
            return Ok(false);
        }
        let file = wrapper.filelike.bind(py);
        let fd: i32 = match file
            .call_method0(pyo3::intern!(py, "fileno"))
            .and_then(|r| r.extract())
        {
            Ok(fd) if fd >= 0 => fd,
            _ => return Ok(false),
        };
        let os = py.import("os").map_err(SendError::App)?;
        let stat = os.call_method1("fstat", (fd,));
        let size: i64 = match stat.and_then(|s| s.getattr("st_size")?.extract()) {
            Ok(size) => size,
            Err(_) => return Ok(false),
        };
        // The position of the Python file object (tell() accounts for its read buffer).
        let offset: i64 = match file.call_method0(pyo3::intern!(py, "tell")) {
            Ok(pos) => pos.extract().map_err(SendError::App)?,
            Err(_) => os
                .call_method1("lseek", (fd, 0, 1))
                .and_then(|p| p.extract())
                .map_err(SendError::App)?,
        };
        let (count, no_body) = {
            let st = exchange.lock();
            let Some(resp) = st.response.as_ref() else {
                return Err(SendError::App(PyAssertionError::new_err(
                    "Response headers not set!",
                )));
            };
            let available = (size - offset).max(0) as u64;
            let count = resp
                .remaining_length()
                .map_or(available, |n| n.min(available));
            let no_body = st.meta.is_head || matches!(resp.status, 100..=199 | 204 | 304);
            (count, no_body)
        };
        let count = if no_body { 0 } else { count };
        exchange
            .blocking_io(py, || exchange.lock().send_file(fd, offset, count))
            .map_err(SendError::Client)?;
        Ok(true)
    }
}

/// Calls `iterable.close()` if it has one.
fn close_iterable(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    let close = pyo3::intern!(py, "close");
    // Lists and tuples (the common case) have no close().
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    if iterable.hasattr(close)? {
        iterable.call_method0(close)?;
    }
    Ok(())
}

/// gunicorn logs a vanished client at debug level only.
fn log_client_gone(e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionReset => log_debug!("Ignoring connection reset"),
        io::ErrorKind::NotConnected => log_debug!("Ignoring socket not connected"),
        io::ErrorKind::BrokenPipe => log_debug!("Ignoring EPIPE"),
        _ => log_error!("Socket error processing request: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (64-bit FNV-1a).
        let cases: &[(&[u8], u64)] = &[
            (b"", 0xcbf2_9ce4_8422_2325),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ];
        for (input, want) in cases {
            let mut h = Fnv1a::default();
            h.write(input);
            assert_eq!(h.finish(), *want, "{input:?}");
        }
    }
}
