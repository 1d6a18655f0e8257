//! One request/response exchange on a connection: the socket, the bytes read past the request
//! head, the request-body decoder and the response being written. Shared (behind a mutex) by
//! the Python objects of the request (`wsgi.input`, `start_response`, `write`, early hints) and
//! the bridge. Everything here is plain Rust and blocking I/O; callers release the GIL around it.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::{Py, PyAny, Python};

use gunicorn_http::{AppHead, BodyDecoder, HttpConfig, HttpError, ReqMeta, Request, Response};

use gunicorn_serve::h2::{split_page, Page, StreamBody, StreamReply};
use gunicorn_serve::Transport;

/// How much raw body input is read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The largest response (head and body) that [`Exchange::hold_end`] keeps back: one that the
/// kernel's initial TCP send buffer (16 KiB, `tcp_wmem`) takes in one non-blocking write.
pub const HOLD_LIMIT: usize = 16 * 1024;

/// Why reading the request body failed.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is malformed (chunk framing, trailers) or the peer closed inside a chunked body.
    Http(HttpError),
    /// The socket failed.
    Io(io::Error),
    /// The exchange is over (the app kept `wsgi.input` past its request).
    Closed,
}

/// What an exchange's bytes travel over.
pub(crate) enum Wire {
    /// An HTTP/1 connection: the response is framed here, as bytes.
    Http1(Box<dyn Transport>),
    /// An HTTP/2 stream: the head and body go to the stream's task as messages, which frames
    /// them (gunicorn_serve::h2).
    Http2 {
        body: StreamBody,
        reply: StreamReply,
    },
}

/// The response buffer's first size: room for a usual head and a small body. Below 1 KiB on
/// purpose: glibc serves a request of 1 KiB or more from its large bins, and when its
/// per-thread cache of that size runs out (several exchanges alive at once, as with held
/// responses) each such request first consolidates the fast bins (`malloc_consolidate` was
/// 0.5 % of a hello-world worker with 1024 here).
const OUT_CAPACITY: usize = 1000;

/// The most finished exchanges a thread keeps for reuse ([`Exchange::recycle`]): as many as
/// a gthread pool thread has alive at once (its held responses and the one it runs).
const MAX_SPARE: usize = 8;

/// A recycled exchange keeps a response buffer up to this size (a larger one was grown by a
/// large response and is given back).
const OUT_CAPACITY_KEPT: usize = HOLD_LIMIT;

/// A recycled exchange keeps its response head's buffer up to this size.
const HEAD_CAPACITY_KEPT: usize = 1024;

thread_local! {
    /// This thread's finished exchanges, ready to be reused ([`Exchange::recycle`]).
    static SPARE: RefCell<Vec<Arc<Mutex<State>>>> = const { RefCell::new(Vec::new()) };
}

/// What the request's Python objects and the bridge share.
pub(crate) struct State {
    io: Option<Wire>,
    /// Raw bytes read from the socket and not yet decoded (they start with what followed the
    /// request head).
    raw: Vec<u8>,
    raw_pos: usize,
    decoder: BodyDecoder,
    /// Decoded body bytes not yet handed to the app.
    body: Vec<u8>,
    body_pos: usize,
    body_done: bool,
    /// The Content-Length of the body (None for chunked), and how much of it was handed out:
    /// `read()` of the whole rest can then fill one Python bytes object of the right size.
    length: Option<u64>,
    handed: u64,
    /// The first body error, kept so the bridge answers it instead of with a generic 500.
    pub(crate) body_error: Option<HttpError>,
    pub(crate) meta: ReqMeta,
    always_close: bool,
    pub(crate) response: Option<Response>,
    /// The buffer of a previous request's response head, for `start_response` to write this
    /// one's into (see [`Exchange::recycle`]).
    pub(crate) spare_head: String,
    /// Where the response is: nothing sent, the app's head out, or an error page instead.
    pub(crate) reply: Reply,
    out: Vec<u8>,
    /// A write to the client failed: the client is gone, stop producing the body.
    pub(crate) write_failed: bool,
    /// Body bytes sent with sendfile(2), outside the response's own framing.
    pub(crate) file_bytes: u64,
    /// The transport yields to a Python event loop instead of blocking (see
    /// [`Exchange::set_cooperative`]).
    cooperative: bool,
    /// `environ["gunicorn.socket"]` when the connection already is a Python socket object
    /// (see [`Exchange::set_client_socket`]).
    pub(crate) client_socket: Option<Py<PyAny>>,
    /// The worker closes the connection as soon as the bridge returns: the last write of the
    /// response may wait in the kernel for the FIN (see [`Exchange::set_closing_after`]).
    closing_after: bool,
    /// The worker sends a complete small response itself, a little later
    /// ([`Exchange::hold_end`]).
    hold_end: bool,
    /// Shared with [`Exchange`] when abortable: `head_started` follows `reply`.
    progress: Option<Arc<Progress>>,
}

/// What another thread may learn about an exchange without its lock, which the serving thread
/// holds while it blocks on the socket (reading the body for `wsgi.input`, writing the
/// response): see [`Exchange::abort_with_error_page`].
#[derive(Debug)]
pub(crate) struct Progress {
    /// The response head went out, or is going out: no error page may follow.
    head_started: AtomicBool,
    /// The connection's descriptor, owned by the exchange's transport.
    fd: RawFd,
}

/// A request exchange on one connection. Cloning shares it.
#[derive(Clone)]
pub struct Exchange {
    state: Arc<Mutex<State>>,
    progress: Option<Arc<Progress>>,
    /// A copy of `State::cooperative`, set before the exchange is first cloned, so that
    /// [`Exchange::blocking_io`] needs no lock to read it (twice per response).
    cooperative: bool,
}

impl Exchange {
    /// Starts the exchange for `req`, whose head was parsed from a buffer; `after_head` is what
    /// followed the head in that buffer (body bytes, or the next pipelined request).
    /// `always_close` makes every response say `Connection: close` (the sync worker).
    pub fn new(
        io: Box<dyn Transport>,
        after_head: Vec<u8>,
        req: &Request,
        http: Arc<HttpConfig>,
        always_close: bool,
    ) -> Exchange {
        Exchange::with_wire(Wire::Http1(io), after_head, req, http, always_close)
    }

    /// Starts the exchange of an HTTP/2 stream's request `req`: its body comes from the
    /// stream, its response goes to it.
    pub fn for_stream(
        body: StreamBody,
        reply: StreamReply,
        req: &Request,
        http: Arc<HttpConfig>,
    ) -> Exchange {
        let ex = Exchange::with_wire(Wire::Http2 { body, reply }, Vec::new(), req, http, false);
        // The body is the stream's DATA up to END_STREAM (its Content-Length, if any, is
        // enforced by the h2 crate): read as it comes, not through an HTTP/1 decoder.
        {
            let mut st = ex.lock();
            st.body_done = false;
            if req.header("CONTENT-LENGTH").is_none() {
                st.length = None;
            }
        }
        ex
    }

    fn with_wire(
        wire: Wire,
        after_head: Vec<u8>,
        req: &Request,
        http: Arc<HttpConfig>,
        always_close: bool,
    ) -> Exchange {
        let protocol = http.protocol;
        let decoder = BodyDecoder::new(&req.body, http);
        let body_done = decoder.is_done();
        let fresh = |out: Vec<u8>, spare_head: String| State {
            io: Some(wire),
            raw: after_head,
            raw_pos: 0,
            decoder,
            body: Vec::new(),
            body_pos: 0,
            body_done,
            length: match req.body {
                gunicorn_http::BodyKind::Length(n) => Some(n),
                gunicorn_http::BodyKind::Chunked => None,
            },
            handed: 0,
            body_error: None,
            meta: ReqMeta {
                version: req.version,
                is_head: req.method.eq_ignore_ascii_case("HEAD"),
                should_close: always_close || req.should_close(),
                protocol,
            },
            always_close,
            response: None,
            spare_head,
            reply: Reply::Unsent,
            out,
            write_failed: false,
            file_bytes: 0,
            cooperative: false,
            client_socket: None,
            closing_after: false,
            hold_end: false,
            progress: None,
        };
        let state = match SPARE.with(|s| s.borrow_mut().pop()) {
            Some(mut spare) => {
                // Only this thread's spare list holds it (see `Exchange::recycle`).
                if let Some(st) = Arc::get_mut(&mut spare) {
                    let st = st.get_mut().unwrap_or_else(|e| e.into_inner());
                    let mut out = std::mem::take(&mut st.out);
                    out.clear();
                    let head = std::mem::take(&mut st.spare_head);
                    *st = fresh(out, head);
                    spare
                } else {
                    Arc::new(Mutex::new(fresh(
                        Vec::with_capacity(OUT_CAPACITY),
                        String::new(),
                    )))
                }
            }
            None => Arc::new(Mutex::new(fresh(
                Vec::with_capacity(OUT_CAPACITY),
                String::new(),
            ))),
        };
        Exchange {
            state,
            progress: None,
            cooperative: false,
        }
    }

    /// Ends this handle of a finished exchange. When it is the exchange's last handle (no
    /// Python object of the request is alive), its transport was taken and its socket object
    /// dropped, the exchange's state (its allocation and the response buffer in it) is kept
    /// for the next exchange this thread starts, with the response head's buffer: three
    /// allocations per request fewer on a worker that calls this (gthread). Otherwise it is
    /// simply dropped.
    pub fn recycle(self) {
        let Exchange { mut state, .. } = self;
        let Some(st) = Arc::get_mut(&mut state) else {
            return;
        };
        let st = st.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.io.is_some() || st.client_socket.is_some() {
            return;
        }
        if st.out.capacity() > OUT_CAPACITY_KEPT {
            st.out = Vec::new();
        }
        // What the request left is not kept alive meanwhile, but for the response head's
        // buffer when it is small.
        st.raw = Vec::new();
        st.body = Vec::new();
        if let Some(resp) = st.response.take() {
            let head = resp.into_app_head().into_buffer();
            if head.capacity() <= HEAD_CAPACITY_KEPT {
                st.spare_head = head;
            }
        }
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < MAX_SPARE {
                s.push(state);
            }
        });
    }

    /// Lets a worker's timeout handler answer beside a blocked read
    /// ([`Exchange::abort_with_error_page`]): the sync worker calls it on each new exchange.
    /// Other workers skip this shared progress record, an allocation per request.
    /// (Not on a transport that encrypts: a page written to its descriptor would be garbage.)
    pub fn abortable(self) -> Exchange {
        let progress = {
            let mut st = self.lock();
            let plain_fd = match &st.io {
                Some(Wire::Http1(io)) if io.passthrough() => Some(io.as_fd().as_raw_fd()),
                _ => None,
            };
            let Some(fd) = plain_fd else {
                drop(st);
                return self;
            };
            let progress = Arc::new(Progress {
                head_started: AtomicBool::new(st.reply.started()),
                fd,
            });
            st.progress = Some(Arc::clone(&progress));
            progress
        };
        Exchange {
            progress: Some(progress),
            ..self
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the exchange as cooperative: its transport waits by switching greenlets on a
    /// Python hub (gevent, eventlet) rather than by blocking the thread, so the bridge does its
    /// socket work with the GIL held instead of inside `Python::detach`. (pyo3 keeps a per-thread
    /// attach count that `detach` zeroes and then restores as an absolute value; other greenlets
    /// running while one is suspended inside a `detach` would leave that count wrong, and a
    /// negative count makes pyo3 panic.)
    pub fn set_cooperative(&mut self) {
        self.lock().cooperative = true;
        self.cooperative = true;
    }

    /// Makes `environ["gunicorn.socket"]` the connection's own Python socket object `sock`
    /// (as gunicorn's environ has it) instead of a `socket.socket` built over a duplicate of the
    /// descriptor for each request. For workers whose connections are Python sockets already
    /// (the greenlet workers).
    pub fn set_client_socket(&self, sock: Py<PyAny>) {
        self.lock().client_socket = Some(sock);
    }

    /// Takes back the socket object of [`Exchange::set_client_socket`] once the bridge
    /// returned, for the caller to drop while it holds the GIL: an exchange dropped without
    /// the GIL would leave its reference to pyo3's deferred pool (a lock and a list push per
    /// request, drained later).
    pub fn take_client_socket(&self) -> Option<Py<PyAny>> {
        self.lock().client_socket.take()
    }

    /// Promises that the worker closes (or shuts down) the connection right after the
    /// bridge returns, every response having said `Connection: close` (the sync worker). The
    /// end of the response is then sent with `MSG_MORE`: the kernel holds it until the close
    /// and sends it in the same TCP segment as the FIN (tcp_send_fin joins a FIN to an unsent
    /// tail), one packet less for both ends of every connection. Earlier writes of a streamed
    /// response go out at once as before.
    pub fn set_closing_after(&self) {
        self.lock().closing_after = true;
    }

    /// Keeps the bytes of the response in the exchange, unsent, once it is complete (its
    /// last write, or the write that reaches its Content-Length) and if it is at most
    /// [`HOLD_LIMIT`] bytes in all: the worker sends them with [`Exchange::send_held`] (or
    /// [`Exchange::try_send_held`]) after running the requests queued behind this one, so
    /// that several responses leave together (see the gthread worker's `pool.rs`). No body
    /// byte is held while the app may still produce another (PEP 3333: no delay between the
    /// blocks of a response), and only plain connections hold (not TLS, not HTTP/2).
    pub fn hold_end(&self) {
        self.lock().hold_end = true;
    }

    /// Sends what [`Exchange::hold_end`] kept (blocking, without the GIL); Err if the client
    /// is gone, also when an earlier [`Exchange::try_send_held`] found it gone.
    pub fn send_held(&self) -> io::Result<()> {
        let mut st = self.lock();
        if st.write_failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        st.flush()
    }

    /// Sends what [`Exchange::hold_end`] kept as far as the socket takes it now, never
    /// waiting: for another thread than the one that holds it (the gthread worker's main
    /// thread, when the requests run meanwhile are slow). Nothing happens while another
    /// thread uses the exchange; what the socket does not take stays for
    /// [`Exchange::send_held`].
    pub fn try_send_held(&self) {
        use nix::sys::socket::{send, MsgFlags};
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        if st.out.is_empty() || !st.passthrough() {
            return;
        }
        let Some(Wire::Http1(io)) = st.io.as_ref() else {
            return;
        };
        let fd = io.as_fd().as_raw_fd();
        let flags = MsgFlags::from_bits_retain(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
        let mut pos = 0;
        while pos < st.out.len() {
            match send(fd, &st.out[pos..], flags) {
                Ok(n) if n > 0 => pos += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Ok(_) | Err(_) => {
                    st.write_failed = true;
                    pos = st.out.len();
                }
            }
        }
        st.out.drain(..pos);
    }

    /// Whether `other` is this same exchange.
    pub fn same_as(&self, other: &Exchange) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Runs socket work `f` for this exchange: without the GIL, or with it when cooperative.
    pub(crate) fn blocking_io<R: Send>(&self, py: Python<'_>, f: impl FnOnce() -> R + Send) -> R {
        if self.cooperative {
            f()
        } else {
            py.detach(f)
        }
    }

    /// Reads and discards the rest of the request body, at most `limit` decoded bytes.
    /// True when the body was read completely (the connection can carry another request).
    pub fn drain_body(&self, limit: usize) -> bool {
        let mut st = self.lock();
        let mut drained = 0;
        loop {
            let avail = st.body.len() - st.body_pos;
            drained += avail;
            st.consume(avail);
            if st.body_done {
                return st.body_error.is_none();
            }
            if drained > limit || st.fill(1).is_err() {
                return false;
            }
        }
    }

    /// True when the request was read to its end and nothing more came with it: no body bytes
    /// left unread by the app, no body error, no bytes of a following request buffered.
    pub fn request_fully_read(&self) -> bool {
        let st = self.lock();
        st.body_done
            && st.body_error.is_none()
            && st.body_pos >= st.body.len()
            && st.raw_pos >= st.raw.len()
    }

    /// For a worker being killed mid-request (the master's timeout): sends `page` if the
    /// response head has not gone out yet. Never blocks on the exchange: when the serving
    /// thread is inside a socket operation right now, nothing is sent. True if sent.
    pub fn try_send_error_page(&self, page: &[u8]) -> bool {
        let Ok(mut st) = self.state.try_lock() else {
            return false;
        };
        if st.reply.started() || st.io.is_none() {
            return false;
        }
        st.mark_head_sent();
        st.write_raw(page).is_ok()
    }

    /// For a worker being killed mid-request (the master's timeout, sync worker): sends `page`
    /// if the response head has not gone out yet, also while the serving thread is blocked
    /// inside a socket read holding the exchange (the app reading a slow request body), as
    /// gunicorn answers a timeout during a body read with a 500. The page is then written to the
    /// connection's descriptor beside the blocked read; the process must exit right after.
    ///
    /// The caller guarantees that the transport is not taken (and so the descriptor not closed)
    /// meanwhile: the sync worker holds its current-request lock, which the serving thread
    /// needs before it takes the transport. True if the page was sent.
    pub fn abort_with_error_page(&self, page: &[u8]) -> bool {
        if let Ok(mut st) = self.state.try_lock() {
            if st.reply.started() || st.io.is_none() {
                return false;
            }
            st.mark_head_sent();
            return st.write_raw(page).is_ok();
        }
        let Some(progress) = &self.progress else {
            return false;
        };
        if progress.head_started.swap(true, Ordering::AcqRel) {
            return false;
        }
        crate::sys::write_to_borrowed_fd(progress.fd, page).is_ok()
    }

    /// Ends the exchange and returns the socket with the bytes read past the request (a
    /// pipelined next request), or None if already taken. Python objects of the request that
    /// are still alive raise `OSError` from then on.
    pub fn take_transport(&self) -> Option<(Box<dyn Transport>, Vec<u8>)> {
        let mut st = self.lock();
        let Wire::Http1(io) = st.io.take()? else {
            return None;
        };
        let pos = st.raw_pos;
        let rest = st.raw.split_off(pos);
        Some((io, rest))
    }
}

impl State {
    /// The response head goes out now (also seen by [`Exchange::abort_with_error_page`]).
    fn mark_head_sent(&mut self) {
        mark_head_sent(&mut self.reply, self.progress.as_deref());
    }

    /// An error page with `status` goes out instead of the app's response.
    pub(crate) fn mark_error_page(&mut self, status: u16) {
        self.reply = Reply::ErrorPage(status);
        if let Some(p) = &self.progress {
            p.head_started.store(true, Ordering::Release);
        }
    }

    /// Decoded body bytes available without I/O.
    pub(crate) fn available(&self) -> &[u8] {
        &self.body[self.body_pos..]
    }

    pub(crate) fn body_done(&self) -> bool {
        self.body_done
    }

    /// How many body bytes are still to come by the Content-Length (None when chunked or
    /// after a body error). The client may still send fewer.
    pub(crate) fn length_left(&self) -> Option<u64> {
        if self.body_error.is_some() {
            return None;
        }
        self.length.map(|n| n.saturating_sub(self.handed))
    }

    /// Marks `n` available body bytes as handed out.
    pub(crate) fn consume(&mut self, n: usize) {
        self.body_pos += n;
        self.handed += n as u64;
        if self.body_pos >= self.body.len() {
            self.body.clear();
            self.body_pos = 0;
        }
    }

    /// Drops the decoded bytes already handed out from the front of the buffer, so an app
    /// reading the body in pieces keeps at most one read's worth in Rust, not the whole body.
    pub(crate) fn compact_body(&mut self) {
        if self.body_pos > 0 {
            self.body.drain(..self.body_pos);
            self.body_pos = 0;
        }
    }

    /// Hands out every available decoded byte as an owned buffer, moved out without a copy
    /// when nothing of it was handed out yet; the next decode (if the body goes on) goes into
    /// a fresh buffer of one read's size.
    pub(crate) fn take_available(&mut self) -> Vec<u8> {
        self.compact_body();
        if self.body.is_empty() {
            return Vec::new();
        }
        let next = if self.body_done {
            Vec::new()
        } else {
            Vec::with_capacity(READ_CHUNK)
        };
        let piece = std::mem::replace(&mut self.body, next);
        self.handed += piece.len() as u64;
        piece
    }

    /// Decodes until at least `want` body bytes are available or the body is complete.
    pub(crate) fn fill(&mut self, want: usize) -> Result<(), BodyError> {
        loop {
            if self.body.len() - self.body_pos >= want || self.body_done {
                return Ok(());
            }
            if matches!(self.io, Some(Wire::Http2 { .. })) {
                self.read_more()?;
                continue;
            }
            if self.raw_pos < self.raw.len() {
                let used = self
                    .decoder
                    .decode(&self.raw[self.raw_pos..], &mut self.body)
                    .map_err(|e| self.fail(e))?;
                self.raw_pos += used;
                if self.decoder.is_done() {
                    self.body_done = true;
                    continue;
                }
                if used > 0 {
                    continue;
                }
            } else if self.decoder.is_done() {
                self.body_done = true;
                continue;
            }
            self.read_more()?;
        }
    }

    fn fail(&mut self, e: HttpError) -> BodyError {
        self.body_error.get_or_insert(e.clone());
        self.body_done = true;
        BodyError::Http(e)
    }

    /// Reads more raw bytes from the socket (blocking).
    fn read_more(&mut self) -> Result<(), BodyError> {
        if self.raw_pos > 0 {
            self.raw.drain(..self.raw_pos);
            self.raw_pos = 0;
        }
        let io = match self.io.as_mut().ok_or(BodyError::Closed)? {
            Wire::Http1(io) => io,
            Wire::Http2 { body, .. } => {
                return read_stream(body, &mut self.body, &mut self.body_done)
            }
        };
        let len = self.raw.len();
        self.raw.resize(len + READ_CHUNK, 0);
        let n = loop {
            match io.read(&mut self.raw[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.raw.truncate(len);
                    self.body_done = true;
                    return Err(BodyError::Io(e));
                }
            }
        };
        self.raw.truncate(len + n);
        if n == 0 {
            // The peer closed: fine for a short Content-Length body (gunicorn returns what
            // came), an error inside a chunked body.
            self.decoder.eof().map_err(|e| self.fail(e))?;
            self.body_done = true;
        }
        Ok(())
    }

    /// Records the response from `start_response`.
    pub(crate) fn set_response(&mut self, head: AppHead) {
        let mut resp = Response::from_app_head(&self.meta, head);
        if self.always_close {
            resp.force_close();
        }
        self.response = Some(resp);
    }

    /// Writes `raw` bytes as they are (100 Continue, 103 Early Hints, error pages).
    pub(crate) fn write_raw(&mut self, raw: &[u8]) -> io::Result<()> {
        let r = match self.io.as_mut().ok_or_else(closed)? {
            Wire::Http1(io) => io.write_all(raw),
            Wire::Http2 { reply, .. } => send_page(reply, raw),
        };
        if r.is_err() {
            self.write_failed = true;
        }
        r
    }

    /// Sends body bytes (the head first if not sent yet, in the same write); with `last`, also
    /// ends the body (chunked terminator). Errors if `start_response` was not called.
    pub(crate) fn write_body(&mut self, data: &[u8], last: bool) -> io::Result<()> {
        if matches!(self.io, Some(Wire::Http2 { .. })) {
            return self.write_stream_body(data, last);
        }
        let resp = self.response.as_mut().ok_or_else(no_response)?;
        if !self.reply.started() {
            resp.encode_head(&mut self.out);
            // Not `self.mark_head_sent()`: `resp` borrows `self.response`.
            mark_head_sent(&mut self.reply, self.progress.as_deref());
        }
        resp.encode_body(data, &mut self.out);
        let complete = last || resp.remaining_length() == Some(0);
        if last {
            resp.finish(&mut self.out);
            if self.closing_after && !self.cooperative && self.passthrough() {
                return self.flush_before_close();
            }
        }
        if complete
            && self.hold_end
            && self.out.len() <= HOLD_LIMIT
            && !self.cooperative
            && self.passthrough()
        {
            return Ok(());
        }
        self.flush()
    }

    /// [`State::flush`] with `MSG_MORE` (see [`Exchange::set_closing_after`]).
    fn flush_before_close(&mut self) -> io::Result<()> {
        use nix::sys::socket::{send, MsgFlags};
        let Some(Wire::Http1(io)) = self.io.as_ref() else {
            self.out.clear();
            self.write_failed = true;
            return Err(closed());
        };
        let fd = io.as_fd();
        // nix has no MSG_MORE constant.
        let flags = MsgFlags::from_bits_retain(libc::MSG_MORE | libc::MSG_NOSIGNAL);
        let mut pos = 0;
        let mut result = Ok(());
        while pos < self.out.len() {
            match send(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &self.out[pos..],
                flags,
            ) {
                Ok(0) => {
                    result = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => pos += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        self.out.clear();
        if result.is_err() {
            self.write_failed = true;
        }
        result
    }

    /// Ends the response: sends the head if the body was empty, and the chunked terminator.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.write_body(&[], true)
    }

    /// Sends the head now (before a `sendfile`), unless already sent.
    pub(crate) fn send_head(&mut self) -> io::Result<()> {
        if matches!(self.io, Some(Wire::Http2 { .. })) {
            return self.write_stream_body(&[], false);
        }
        let resp = self.response.as_mut().ok_or_else(no_response)?;
        if !self.reply.started() {
            resp.encode_head(&mut self.out);
            // Not `self.mark_head_sent()`: `resp` borrows `self.response`.
            mark_head_sent(&mut self.reply, self.progress.as_deref());
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = match self.io.as_mut() {
            Some(Wire::Http1(io)) => io.write_all(&self.out),
            Some(Wire::Http2 { reply, .. }) => reply.data(std::mem::take(&mut self.out), false),
            None => Err(closed()),
        };
        self.out.clear();
        if r.is_err() {
            self.write_failed = true;
        }
        r
    }

    /// Whether the response may bypass the transport and go to its descriptor
    /// ([`Transport::passthrough`]).
    pub(crate) fn passthrough(&self) -> bool {
        matches!(&self.io, Some(Wire::Http1(io)) if io.passthrough())
    }

    /// The connection's transport; Err on an HTTP/2 stream, which has none of its own.
    pub(crate) fn transport(&mut self) -> io::Result<&mut Box<dyn Transport>> {
        match self.io.as_mut() {
            Some(Wire::Http1(io)) => Ok(io),
            Some(Wire::Http2 { .. }) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an HTTP/2 stream has no socket of its own",
            )),
            None => Err(closed()),
        }
    }

    /// [`State::write_body`] on an HTTP/2 stream: the head as a message when it goes out, the
    /// body bytes (counted and bounded by the response, never chunked) as DATA.
    fn write_stream_body(&mut self, data: &[u8], last: bool) -> io::Result<()> {
        let resp = self.response.as_mut().ok_or_else(no_response)?;
        let head = if self.reply.started() {
            None
        } else {
            mark_head_sent(&mut self.reply, self.progress.as_deref());
            Some((resp.status, resp.header_pairs()))
        };
        resp.encode_body(data, &mut self.out);
        let body = std::mem::take(&mut self.out);
        let Some(Wire::Http2 { reply, .. }) = self.io.as_mut() else {
            return Err(closed());
        };
        let mut r = Ok(());
        if let Some((status, fields)) = head {
            if last {
                // The whole response in one message (the usual small response).
                let r = reply.whole(status, fields, body);
                return self.failed_if(r);
            }
            r = reply.head(status, fields);
            if r.is_err() {
                return self.failed_if(r);
            }
        }
        if !body.is_empty() || last {
            r = reply.data(body, last);
        }
        self.failed_if(r)
    }

    fn failed_if(&mut self, r: io::Result<()>) -> io::Result<()> {
        if r.is_err() {
            self.write_failed = true;
        }
        r
    }

    /// Sends the head, then `count` bytes of the file `fd` from `offset` with sendfile(2)
    /// (framed as one chunk when the response is chunked), then ends the response. The file's
    /// own position is left unchanged. Stops early if the file is shorter than expected.
    pub(crate) fn send_file(
        &mut self,
        fd: std::os::fd::RawFd,
        mut offset: i64,
        count: u64,
    ) -> io::Result<()> {
        self.send_head()?;
        let chunked = self.response.as_ref().is_some_and(|r| r.is_chunked());
        if count > 0 {
            if chunked {
                self.out
                    .extend_from_slice(format!("{count:X}\r\n").as_bytes());
                self.flush()?;
            }
            let mut sent = 0u64;
            while sent < count {
                let io = self.transport()?;
                let want = (count - sent).min(1 << 30) as usize;
                match crate::sys::sendfile_from_python_fd(io.as_fd(), fd, &mut offset, want) {
                    Ok(0) => break,
                    Ok(n) => sent += n as u64,
                    Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                    Err(e) => {
                        self.write_failed = true;
                        return Err(e.into());
                    }
                }
            }
            self.file_bytes += sent;
            if sent < count {
                // The file shrank: the framing promised more bytes than exist; the connection
                // cannot be reused (gunicorn does not detect this either).
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than the response length",
                ));
            }
            if chunked {
                self.out.extend_from_slice(b"\r\n");
            }
        }
        self.finish()
    }
}

/// Where an exchange's response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Nothing sent: the app may still call `start_response` (again, with `exc_info`), and
    /// an error page may still replace its response.
    Unsent,
    /// The response head is out (or going out): the app's body follows. (Also after a
    /// timeout's error page, written from another thread just before the worker exits.)
    HeadSent,
    /// An error page with this status went out instead of the app's response.
    ErrorPage(u16),
}

impl Reply {
    /// Something went out: no other head may follow.
    pub(crate) fn started(self) -> bool {
        self != Reply::Unsent
    }
}

/// The response head goes out now (also seen by [`Exchange::abort_with_error_page`]).
fn mark_head_sent(reply: &mut Reply, progress: Option<&Progress>) {
    *reply = Reply::HeadSent;
    if let Some(p) = progress {
        p.head_started.store(true, Ordering::Release);
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

impl State {
    /// The request's outcome; `ok` when the app's response was sent without error.
    pub(crate) fn outcome(&self, ok: bool) -> Outcome {
        let resp = self.response.as_ref();
        let status = match self.reply {
            Reply::ErrorPage(code) => Some(code),
            Reply::HeadSent => resp.map(|r| r.status),
            Reply::Unsent => None,
        };
        Outcome {
            status,
            body_bytes: resp.map_or(0, |r| r.body_bytes_sent()) + self.file_bytes,
            reusable: ok
                && self.reply == Reply::HeadSent
                && !self.write_failed
                && resp.is_some_and(|r| !r.should_close()),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the request is over")
}

fn no_response() -> io::Error {
    io::Error::other("start_response() was not called before the response body")
}

/// Reads the next piece of an HTTP/2 stream's body into `into`; the end of the stream ends the
/// body.
fn read_stream(
    body: &mut StreamBody,
    into: &mut Vec<u8>,
    done: &mut bool,
) -> Result<(), BodyError> {
    let len = into.len();
    into.resize(len + READ_CHUNK, 0);
    let r = body.read(&mut into[len..]);
    match r {
        Ok(n) => {
            into.truncate(len + n);
            if n == 0 {
                *done = true;
            }
            Ok(())
        }
        Err(e) => {
            into.truncate(len);
            *done = true;
            Err(BodyError::Io(e))
        }
    }
}

/// Sends one of this server's HTTP/1 pages (an error page, 103 Early Hints) on an HTTP/2
/// stream, as the frames of the same response.
fn send_page(reply: &mut StreamReply, page: &[u8]) -> io::Result<()> {
    let Page {
        status,
        fields,
        body,
    } = split_page(page)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a response page"))?;
    if status < 200 {
        return reply.informational(status, fields);
    }
    reply.whole(status, fields, body.to_vec())
}
