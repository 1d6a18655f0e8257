//! The Rust half of a greenlet worker: what the Python driver calls.
//!
//! One [`GreenServer`] per worker process, shared by every connection greenlet of the hub's
//! thread. Its state is immutable or atomic (no `RefCell`, no lock held across a call into
//! Python), because a greenlet can switch away inside any socket call and another greenlet then
//! enters `serve` on the same object.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gunicorn_core::{log_error, log_warning, StopKind, WorkerContext};
use gunicorn_http::{ConnInfo, HttpConfig, HttpError, Local, Request, RequestParser};
use gunicorn_python::event_loop;
use gunicorn_python::wsgi::{Bridge, Exchange};
use gunicorn_serve::h2::preface::{self, Preface};
use gunicorn_serve::h2::{upgrade, Incoming, StreamJob};
use gunicorn_serve::linger::{self, DRAIN_LIMIT, DRAIN_TIME, LINGER_TIME};
use gunicorn_serve::tls::Acceptor;
use gunicorn_serve::{read_head, Awaiting, Count, HeadRead, HeadReader, RequestBudget, Transport};
use pyo3::prelude::*;

use crate::green_socket::GreenSocket;
use crate::h2::GreenH2;
use crate::handshake::handshake;

/// What a worker's server is built from.
pub struct Settings {
    pub bridge: Bridge,
    pub http: Arc<HttpConfig>,
    /// The address of each listener, by the index the driver passes to `serve`.
    pub locals: Vec<Local>,
    /// `--keep-alive`: how long to wait for the next request; zero = one request per connection.
    pub keepalive: Duration,
    pub graceful_timeout: f64,
    /// `max_requests`: the request that reaches it starts a graceful stop (HTTP/2 streams are
    /// counted by the HTTP/2 thread, in the same budget).
    pub budget: Arc<RequestBudget>,
    /// `--certfile`...: TLS on every connection (loaded in the master).
    pub tls: Option<Acceptor>,
    /// HTTP/2, when `http_protocols` has `h2` (ALPN with TLS, h2c as `http2_cleartext` says).
    pub h2: Option<GreenH2>,
    pub ctx: WorkerContext,
    /// `greenlet.GreenletExit`.
    pub greenlet_exit: Py<PyAny>,
}

/// The worker's server object, as seen by the driver.
#[pyclass(module = "gunicorn_greenlet_driver", name = "Server", frozen)]
pub struct GreenServer {
    s: Settings,
    /// The ppid check already asked for a stop.
    orphaned: AtomicBool,
    /// Keep-alive connections waiting for their next request (their descriptors), so a
    /// graceful stop can end those waits at once instead of after `keepalive`.
    idle: Mutex<HashSet<RawFd>>,
}

impl GreenServer {
    pub fn new(s: Settings) -> GreenServer {
        GreenServer {
            s,
            orphaned: AtomicBool::new(false),
            idle: Mutex::new(HashSet::new()),
        }
    }

    fn idle_set(&self) -> std::sync::MutexGuard<'_, HashSet<RawFd>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.s.ctx.shutdown.requested().is_some()
    }

    /// Counts a request; true when it is the last one (max_requests reached), which also
    /// starts a graceful stop like gunicorn's `alive = False`.
    fn count_request(&self) -> bool {
        let count = self.s.budget.count();
        if count == Count::Last {
            gunicorn_serve::log_autorestart();
            self.s.ctx.shutdown.request(StopKind::Graceful);
        }
        count.is_final()
    }

    /// Serves requests on one connection until it closes, keep-alive ends, or the worker
    /// stops. Errors only to re-raise an exception that kills the greenlet.
    ///
    /// The connection is one owned [`Transport`] (the green socket itself, or a TLS stream
    /// over it): request heads are read from it, each [`Exchange`] borrows it and gives it back
    /// for the next request. `sock` (a handle on the same Python socket) is kept for what is
    /// about the socket itself: timeouts, the greenlet-killing exception, the idle set, close.
    fn serve_connection(
        &self,
        py: Python<'_>,
        sock: &GreenSocket,
        conn: &mut ConnInfo,
    ) -> PyResult<()> {
        // With keep-alive on, the first head must arrive within `keepalive` of the accept, the
        // TLS handshake before it included (gunicorn's gevent worker: its `Timeout(keepalive)`
        // covers the first read, which runs the handshake).
        let first_deadline =
            (!self.s.keepalive.is_zero()).then(|| Instant::now() + self.s.keepalive);
        let mut io: Box<dyn Transport> = match &self.s.tls {
            None => Box::new(sock.clone()),
            Some(acceptor) => match handshake(sock, acceptor, conn, first_deadline) {
                Some(stream) => stream,
                None => return sock.take_fatal().map_or(Ok(()), Err),
            },
        };
        if let Some(h2) = &self.s.h2 {
            if conn.tls.as_ref().is_some_and(|t| t.alpn == Some("h2")) {
                return self.serve_h2(py, h2, io, Vec::new(), conn, None);
            }
        }
        let mut leftover = Vec::new();
        if let Some(h2) = self.probes_preface(conn) {
            match self.probe_preface(py, sock, io.as_mut(), first_deadline, h2) {
                Probe::Http2(prefix) => return self.serve_h2(py, h2, io, prefix, conn, None),
                Probe::Http1(first) => leftover = first,
                Probe::Refused(first) => {
                    self.reject(py, sock, io.as_mut(), conn, &HttpError::h2c_preface(&first));
                    return sock.take_fatal().map_or(Ok(()), Err);
                }
                Probe::Closed => return sock.take_fatal().map_or(Ok(()), Err),
            }
        }
        let mut reader =
            HeadReader::new(RequestParser::new(Arc::clone(&self.s.http), conn.clone()));
        let mut first = true;
        let mut deadline = first_deadline;
        loop {
            let head = self.read_head(
                py,
                sock,
                io.as_mut(),
                &mut reader,
                leftover,
                first,
                deadline,
            );
            if let Some(e) = sock.take_fatal() {
                return Err(e);
            }
            let (req, after_head) = match head {
                HeadRead::Ready { req, after_head } => (req, after_head),
                HeadRead::Closed => {
                    self.close_notify(io.as_mut());
                    return Ok(());
                }
                HeadRead::Invalid(e) => {
                    self.reject(py, sock, io.as_mut(), conn, &e);
                    return sock.take_fatal().map_or(Ok(()), Err);
                }
            };
            first = false;
            if let Some((h2, frames)) = self.upgrade_to_h2(&req, &after_head, conn) {
                // 101, then HTTP/2 (RFC 7540 §3.2): the request becomes stream 1.
                if io.write_all(upgrade::SWITCHING_PROTOCOLS).is_err() || io.flush().is_err() {
                    return sock.take_fatal().map_or(Ok(()), Err);
                }
                return self.serve_h2(py, h2, io, Vec::new(), conn, Some(frames));
            }
            match self.serve_request(py, sock, io, &req, after_head, &reader, conn)? {
                Some((back, rest)) => (io, leftover) = (back, rest),
                None => return Ok(()),
            }
            deadline = (!self.s.keepalive.is_zero()).then(|| Instant::now() + self.s.keepalive);
        }
    }

    /// Runs the app for one request read from `io` and writes its response. Gives the
    /// transport back with the bytes read past the request when the connection carries another
    /// request; None when it is done (close_notify sent on TLS, the caller closes). Errors only
    /// to re-raise an exception that kills the greenlet.
    #[allow(clippy::too_many_arguments)]
    fn serve_request(
        &self,
        py: Python<'_>,
        sock: &GreenSocket,
        io: Box<dyn Transport>,
        req: &Request,
        after_head: Vec<u8>,
        reader: &HeadReader,
        conn: &ConnInfo,
    ) -> PyResult<Option<KeptAlive>> {
        // The app may take as long as it needs (gunicorn's gevent worker has no timeout
        // around the application either).
        if sock.set_timeout(py, None).is_err() {
            return sock.take_fatal().map_or(Ok(None), Err);
        }
        sock.clear_failed();
        let last = self.count_request();
        let must_close = last || self.s.keepalive.is_zero() || self.stopping();
        let mut exchange = Exchange::new(io, after_head, req, Arc::clone(&self.s.http), must_close);
        exchange.set_cooperative();
        // gunicorn's environ carries the connection's own socket object.
        exchange.set_client_socket(sock.object(py));
        let handled = self.s.bridge.handle_request(
            py,
            req,
            conn,
            reader.proxy_info(),
            &self.s.http,
            &exchange,
        );
        let outcome = match handled {
            Ok(outcome) => outcome,
            // No environ for this request (a path outside SCRIPT_NAME): the app never ran.
            Err(e) => {
                if let Some((mut io, _)) = exchange.take_transport() {
                    self.reject(py, sock, io.as_mut(), conn, &e);
                }
                return sock.take_fatal().map_or(Ok(None), Err);
            }
        };
        // A socket error inside the request (e.g. a read the app gave up on with its own
        // timeout) leaves the stream at an unknown position: no further request on it.
        let mut reusable =
            outcome.reusable && !must_close && !self.stopping() && !sock.has_failed();
        if reusable && !exchange.request_fully_read() {
            // One deadline for the whole drain, not per read: a client trickling the body (or
            // TLS records) cannot stretch it.
            sock.set_deadline(Some(Instant::now() + DRAIN_TIME));
            reusable = exchange.drain_body(DRAIN_LIMIT);
            sock.set_deadline(None);
        }
        let taken = exchange.take_transport();
        if let Some(e) = sock.take_fatal() {
            return Err(e);
        }
        match taken {
            Some(next) if reusable => Ok(Some(next)),
            Some((mut io, _)) => {
                self.close_notify(io.as_mut());
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Reads until `reader` has a complete request head, starting with `leftover` (bytes read
    /// past the previous request), from `io`. With keep-alive on, the whole head must arrive
    /// by `deadline` (gunicorn's gevent worker: `Timeout(keepalive)` around reading each
    /// request); with it off (`deadline` None), the first request may take as long as it
    /// needs and there is no second one.
    #[allow(clippy::too_many_arguments)]
    fn read_head(
        &self,
        py: Python<'_>,
        sock: &GreenSocket,
        io: &mut dyn Transport,
        reader: &mut HeadReader,
        leftover: Vec<u8>,
        first: bool,
        deadline: Option<Instant>,
    ) -> HeadRead {
        match deadline {
            Some(d) => sock.set_deadline(Some(d)),
            None if first => {
                if sock.set_timeout(py, None).is_err() {
                    return HeadRead::Closed;
                }
            }
            None => return HeadRead::Closed,
        }
        let head = read_head(reader, leftover, |buf, awaiting| {
            // Idle: waiting for the next request with none of it at hand (a TLS stream may
            // hold decrypted bytes of a pipelined request: those are served, not cut off).
            let idle = awaiting == Awaiting::Request && !first && !io.has_buffered_input();
            if idle {
                // Registered, then the stop checked: a stop requested before this point is
                // seen here; one requested later runs the driver's `close_idle`, which can only
                // happen while this greenlet waits inside `read`, registered.
                self.idle_set().insert(sock.raw_fd());
                if self.stopping() {
                    self.idle_set().remove(&sock.raw_fd());
                    return Ok(0);
                }
            }
            let read = io.read(buf);
            if idle {
                self.idle_set().remove(&sock.raw_fd());
            }
            read
        });
        sock.set_deadline(None);
        head
    }

    // ---- HTTP/2 -----------------------------------------------------------------------------

    /// The HTTP/2 side when this plain connection's first bytes are to be looked at for the
    /// preface: h2c with prior knowledge, from a trusted peer only.
    fn probes_preface(&self, conn: &ConnInfo) -> Option<&GreenH2> {
        self.s.h2.as_ref().filter(|h2| {
            h2.mode.prior_knowledge()
                && self.s.tls.is_none()
                && self.s.http.forwarded_allow_ips.allows(&conn.peer)
        })
    }

    /// Reads a connection's first bytes until they are the HTTP/2 preface or cannot be, within
    /// the first request's deadline (as a head would be read).
    fn probe_preface(
        &self,
        py: Python<'_>,
        sock: &GreenSocket,
        io: &mut dyn Transport,
        deadline: Option<Instant>,
        h2: &GreenH2,
    ) -> Probe {
        match deadline {
            Some(d) => sock.set_deadline(Some(d)),
            None => {
                if sock.set_timeout(py, None).is_err() {
                    return Probe::Closed;
                }
            }
        }
        let mut first = Vec::new();
        let mut chunk = [0u8; 4096];
        let probe = loop {
            match preface::detect(&first) {
                Preface::Complete => break Probe::Http2(first),
                Preface::Absent if h2.mode.preface_required() => break Probe::Refused(first),
                Preface::Absent => break Probe::Http1(first),
                Preface::Partial => {}
            }
            match io.read(&mut chunk) {
                Ok(0) => break Probe::Closed,
                Ok(n) => first.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break Probe::Closed,
            }
        };
        sock.set_deadline(None);
        probe
    }

    /// `Upgrade: h2c` (`http2_cleartext` `upgrade` or `both`): a plain connection of a trusted
    /// peer whose request asks for it, with its whole body (if any) already read and within
    /// one frame and the first window, and nothing after it, goes to HTTP/2 with the request
    /// as stream 1 (its HEADERS and DATA frames, `gunicorn_serve::h2::upgrade`). Otherwise
    /// the request is served as HTTP/1.1, the upgrade ignored (RFC 7540 §3.2 allows it).
    fn upgrade_to_h2(
        &self,
        req: &Request,
        after: &[u8],
        conn: &ConnInfo,
    ) -> Option<(&GreenH2, Vec<u8>)> {
        let h2 = self.s.h2.as_ref().filter(|h2| h2.mode.upgrade())?;
        // Within the stream's and the connection's first window (65 535 bytes, RFC 9113 §6.9.2).
        let max_body = h2.max_frame.min(h2.first_window).min(65_535);
        let whole_body =
            matches!(req.body, gunicorn_http::BodyKind::Length(n) if n as usize == after.len());
        if self.s.tls.is_some()
            || !whole_body
            || after.len() > max_body
            || !self.s.http.forwarded_allow_ips.allows(&conn.peer)
            || !upgrade::asks_for_h2c(req)
        {
            return None;
        }
        let frames = upgrade::request_frames(req, after, h2.max_frame)?;
        Some((h2, frames))
    }

    /// Hands the connection to the HTTP/2 thread, then waits (parked, the hub free) until the
    /// thread is done with it, holding its `worker_connections` slot meanwhile: the caller
    /// closes the socket only then. Its streams run in greenlets of their own
    /// ([`GreenServer::serve_stream`]).
    fn serve_h2(
        &self,
        py: Python<'_>,
        h2: &GreenH2,
        io: Box<dyn Transport>,
        prefix: Vec<u8>,
        conn: &ConnInfo,
        upgraded: Option<Vec<u8>>,
    ) -> PyResult<()> {
        let park = h2.park(py)?;
        let incoming = Incoming {
            io,
            prefix,
            conn: conn.clone(),
            upgraded,
        };
        let mut closed = match h2.server.serve_watched(incoming) {
            Ok(closed) => closed,
            Err(_) => {
                log_error!("the HTTP/2 thread is gone: a connection was closed");
                return Ok(());
            }
        };
        // A kill (GreenletExit) while the thread still uses the socket is re-raised once the
        // thread let go of it: closing the socket under it could hand its descriptor number
        // to another connection while the thread still reads it. A quick stop closes every
        // HTTP/2 connection within a moment.
        let mut fatal: Option<PyErr> = None;
        for _ in 0..KILLS_BEFORE_LEAVING {
            match closed.wait(park.as_ref()) {
                Ok(()) => return fatal.map_or(Ok(()), Err),
                Err(e) => {
                    fatal.get_or_insert_with(|| PyErr::from(e));
                }
            }
        }
        Err(fatal.unwrap_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("HTTP/2 connection wait interrupted")
        }))
    }

    /// Sends TLS's close_notify before the connection closes (a client reading a response
    /// delimited by the close can tell it from a truncation). Nothing on a plain connection.
    fn close_notify(&self, io: &mut dyn Transport) {
        if self.s.tls.is_some() {
            let _ = io.shutdown_write();
        }
    }

    /// Answers a request that failed before the app ran (gunicorn's error page and log line)
    /// through the connection's transport, then closes gracefully.
    fn reject(
        &self,
        py: Python<'_>,
        sock: &GreenSocket,
        io: &mut dyn Transport,
        conn: &ConnInfo,
        err: &HttpError,
    ) {
        let Some(page) = gunicorn_serve::reject::request_error(conn, err) else {
            return;
        };
        if sock.set_timeout(py, Some(LINGER_TIME)).is_err()
            || io.write_all(&page).is_err()
            || io.flush().is_err()
        {
            return;
        }
        // Closing after the page: a FIN (after close_notify on TLS), not a RST that could
        // destroy the page in flight.
        if io.shutdown_write().is_err() {
            return;
        }
        // discard_input bounds each read; the deadline bounds them all (a TLS read may take
        // several socket reads).
        sock.set_deadline(Some(Instant::now() + LINGER_TIME));
        linger::discard_input(|buf, _left| io.read(buf));
        sock.set_deadline(None);
    }
}

/// How many times a connection greenlet waiting for its HTTP/2 connection to end is
/// interrupted before it stops waiting (see [`GreenServer::serve_h2`]).
const KILLS_BEFORE_LEAVING: usize = 16;

/// What a plain connection's first bytes said (h2c with prior knowledge).
enum Probe {
    /// The HTTP/2 preface (and whatever came with it).
    Http2(Vec<u8>),
    /// The beginning of an HTTP/1 request.
    Http1(Vec<u8>),
    /// Not the preface, from a peer that must send it (`prior-knowledge` alone): 400.
    Refused(Vec<u8>),
    /// Closed, failed or silent past the deadline.
    Closed,
}

/// A connection kept for its next request: its transport and the bytes read past the last one.
type KeptAlive = (Box<dyn Transport>, Vec<u8>);

#[pymethods]
impl GreenServer {
    /// Serves one accepted connection (the body of a connection greenlet), then closes it.
    fn serve(&self, py: Python<'_>, index: usize, sock: &Bound<'_, PyAny>) -> PyResult<()> {
        let green = GreenSocket::new(sock, &self.s.greenlet_exit)?;
        let local = match self.s.locals.get(index) {
            Some(l) => l.clone(),
            None => {
                green.close(py);
                return Ok(());
            }
        };
        let mut conn = ConnInfo {
            peer: gunicorn_serve::addr::peer_of_socket(green.raw_fd()),
            local,
            tls: None,
        };
        let result = self.serve_connection(py, &green, &mut conn);
        green.close(py);
        result
    }

    /// The HTTP/2 thread's pipe, for the hub to watch (None without HTTP/2).
    #[getter]
    fn h2_fd(&self) -> Option<i32> {
        self.s.h2.as_ref().map(GreenH2::fd)
    }

    /// Gives the driver's `wait(token)`, which parks the calling greenlet until the hub's
    /// callback wakes that token.
    fn h2_start(&self, wait: Py<PyAny>) {
        if let Some(h2) = &self.s.h2 {
            h2.set_wait(wait);
        }
    }

    /// The hub's callback when the pipe is readable: (new streams, each wanting a greenlet
    /// that calls `serve_stream`; tokens of parked greenlets to wake).
    fn h2_ready(&self) -> (usize, Vec<u64>) {
        self.s
            .h2
            .as_ref()
            .map_or((0, Vec::new()), GreenH2::take_ready)
    }

    /// Runs the next HTTP/2 stream's request in the calling greenlet (a stream runner of the
    /// driver): the app through the same bridge as HTTP/1, its body and response over the
    /// stream's channels, each wait a park. A stream the client reset while it waited is
    /// skipped, not run for nobody (rapid reset, CVE-2023-44487). False when no stream waits.
    fn serve_stream(&self, py: Python<'_>) -> PyResult<bool> {
        let Some((mut job, _running)) = self.s.h2.as_ref().and_then(GreenH2::next_stream) else {
            return Ok(false);
        };
        let Some(h2) = &self.s.h2 else {
            return Ok(false);
        };
        if job.reply.is_cancelled() {
            return Ok(true);
        }
        job.park_with(h2.park(py)?);
        let StreamJob {
            req,
            conn,
            body,
            reply,
        } = job;
        let mut exchange = Exchange::for_stream(body, reply, &req, Arc::clone(&self.s.http));
        exchange.set_cooperative();
        let handled = self
            .s
            .bridge
            .handle_request(py, &req, &conn, None, &self.s.http, &exchange);
        if let Err(e) = handled {
            // No environ for this request (a path outside SCRIPT_NAME): the app never ran.
            if let Some(page) = gunicorn_serve::reject::request_error(&conn, &e) {
                exchange.try_send_error_page(&page);
            }
        }
        Ok(true)
    }

    /// HTTP/2 streams waiting for a greenlet or running in one (a graceful stop waits for
    /// them).
    #[getter]
    fn h2_streams(&self) -> usize {
        self.s.h2.as_ref().map_or(0, GreenH2::running)
    }

    /// Stops the HTTP/2 thread's connections: graceful sends GOAWAY and lets the streams in
    /// flight finish; quick closes them.
    fn h2_stop(&self, graceful: bool) {
        if let Some(h2) = &self.s.h2 {
            h2.server.stop(graceful);
        }
    }

    /// The heartbeat (called about once a second from its own greenlet): proves the worker
    /// alive to the master. False once the parent changed (the master is gone), after asking
    /// for a graceful stop like gunicorn's `notify()`.
    fn tick(&self) -> bool {
        event_loop::tick(&self.s.ctx, &self.orphaned, "greenlet")
    }

    /// `None`, `"graceful"` or `"quick"` (see [`event_loop::stop_requested`]).
    fn stop_requested(&self) -> Option<&'static str> {
        event_loop::stop_requested(&self.s.ctx)
    }

    /// Ends the waits of idle keep-alive connections (graceful stop): shutting down their
    /// receiving side makes the pending read see end-of-file, and the connection closes. Bytes
    /// already received are still read first, so a request that just arrived is answered.
    fn close_idle(&self) {
        for fd in self.idle_set().drain() {
            let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Read);
        }
    }

    /// The read end of the shutdown pipe, readable once a stop was requested.
    #[getter]
    fn wake_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.s.ctx.shutdown.wake_fd().as_raw_fd()
    }

    #[getter]
    fn graceful_timeout(&self) -> f64 {
        self.s.graceful_timeout
    }

    #[getter]
    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn log_warning(&self, msg: &str) {
        log_warning!("{msg}");
    }

    fn log_error(&self, msg: &str) {
        log_error!("{msg}");
    }
}
