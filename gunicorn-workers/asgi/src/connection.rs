//! One client connection of the asgi worker: the state its protocol callbacks
//! (`data_received`, `connection_lost`...) and its requests' `receive()`/`send()` share.
//!
//! Every change of state happens under the connection's lock, and what it means for Python
//! (bytes to write, a Future to resolve, the app to start, the transport to close) is gathered
//! into an [`After`] and carried out once the lock is released. A Python call made under the
//! lock could come back into this connection (asyncio's `transport.write()` calls
//! `pause_writing()` on the protocol when its buffer fills), so none is made there.
//!
//! A connection serves one request at a time (HTTP/1.1 has no multiplexing): bytes that arrive
//! past the current request's body wait in `leftover` and are parsed as the next request once
//! the response is complete. The application task may run on after its response is complete
//! (background work after the last message, as Starlette's BackgroundTasks do); the next
//! request does not wait for it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gunicorn_http::{
    BodyDecoder, ConnInfo, HttpError, ReqMeta, Request, RequestParser, Response, CONTINUE_100,
};
use gunicorn_serve::tls::{Received, TlsSession};
use gunicorn_serve::{HeadReader, HeadStep};
use pyo3::intern;
use pyo3::prelude::*;

use crate::effects::{After, Finished, Resolution, Start};
use crate::scope::ScopeType;
use crate::shared::{log_app_error, Shared};
use crate::ws_conn::{refusal, upgrade_request, WsConn, EVENT_BACKLOG};

/// Body bytes buffered for the application before reading from the socket pauses
/// (transport.pause_reading) until it takes them.
const BODY_HIGH_WATER: usize = 256 * 1024;
/// How long an idle kept-alive connection stays open at most once a graceful stop began
/// (gunicorn 27 gthread's `STOP_KEEPALIVE_LINGER`).
const STOP_KEEPALIVE_LINGER: Duration = Duration::from_secs(2);
/// Bytes of pipelined requests buffered while a response is in progress, before reading
/// pauses until the connection gets to them.
const LEFTOVER_HIGH_WATER: usize = 64 * 1024;

/// Where a connection is.
pub(crate) enum Phase {
    /// Accepted past `--worker-connections`: not read until a slot frees (`registry.rs`).
    Waiting,
    /// Waiting for (the rest of) a request head, since `since`.
    Head { since: Instant },
    /// A request is being served; its state is `Conn::exchange`.
    Busy,
    /// Upgraded to a WebSocket (RFC 6455): the bytes are frames from now on.
    WebSocket(Box<WsConn>),
    /// The transport is closed or closing: nothing more is read or written.
    Closed,
}

/// Where a response is.
pub(crate) enum Reply {
    /// No `http.response.start` yet.
    Pending,
    /// Started: the validated head, and its bytes if they have not been written yet (they go
    /// out with the first body bytes, in one write).
    Started {
        resp: Box<Response>,
        unsent_head: Vec<u8>,
        /// The app said `trailers: True` (the `http.response.trailers` extension): the last
        /// body message is followed by `http.response.trailers` messages.
        trailers: bool,
    },
    /// The last body message of a response with trailers was sent; the trailer fields
    /// gathered so far (from `more_trailers` messages) wait for the last one.
    Trailers {
        resp: Box<Response>,
        fields: Vec<(String, String)>,
    },
    /// The last body message (or the last trailers) was sent.
    Done,
}

/// A request's body as it arrives.
pub(crate) struct Body {
    decoder: BodyDecoder,
    /// Decoded bytes the application has not received yet.
    buf: Vec<u8>,
    /// The final `http.request` message (`more_body: False`) was handed out.
    delivered: bool,
}

impl Body {
    /// The decoder saw the end of the body.
    fn complete(&self) -> bool {
        self.decoder.is_done()
    }
}

/// The request a connection is serving (and, after its response, the last one served).
pub(crate) struct Exchange {
    pub generation: u64,
    pub req: Box<Request>,
    pub body: Body,
    /// `Expect: 100-continue` not answered yet (answered when the app first waits for the body,
    /// never once a final response started: RFC 9110 §10.1.1).
    expect_continue: bool,
    /// A `receive()` waiting for body bytes or the disconnect.
    receive_waiter: Option<Py<PyAny>>,
    pub reply: Reply,
    /// The client went away before the response was complete.
    pub disconnected: bool,
    /// The app's task, to cancel after the disconnect grace period.
    pub task: Option<Py<PyAny>>,
    /// When the head was parsed (the access log's request time).
    pub started: Instant,
    /// The connection closes after this response (max_requests reached, keep-alive off, stop).
    pub last: bool,
    /// The `req` object `pre_request` got, for `post_request`.
    pub hook_req: Option<Py<PyAny>>,
    /// Headers as the app gave them, kept for the access log and post_request.
    pub response_headers: Vec<(String, String)>,
}

/// What a connection knows, under its lock.
pub(crate) struct Conn {
    pub transport: Option<Py<PyAny>>,
    pub info: ConnInfo,
    pub reader: HeadReader,
    pub phase: Phase,
    /// Bytes read past the current request (the start of the next one).
    pub leftover: Vec<u8>,
    pub read_paused: bool,
    pub write_paused: bool,
    /// `send()` calls waiting for the transport's buffer to drain.
    pub drain_waiters: Vec<Py<PyAny>>,
    /// The client half-closed: no more requests will come.
    pub peer_eof: bool,
    /// Counts requests on this connection; a `Cycle` holding an older number is stale.
    pub generation: u64,
    pub exchange: Option<Exchange>,
    /// TLS (`--certfile`): bytes in and out pass through it.
    pub tls: Option<Box<TlsSession>>,
    /// The protocol object, for the loop to call back (`resume`); dropped at
    /// `connection_lost`, which ends the cycle protocol -> connection -> protocol.
    pub protocol: Option<Py<PyAny>>,
    /// `leftover` holds pipelined bytes the protocol's `resume` will parse.
    pub resume_pending: bool,
}

/// One connection: its state and the worker's shared settings.
pub struct Connection {
    pub id: u64,
    pub shared: Arc<Shared>,
    state: Mutex<Conn>,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        shared: Arc<Shared>,
        info: ConnInfo,
        tls: Option<Box<TlsSession>>,
    ) -> Connection {
        let parser = RequestParser::new(Arc::clone(&shared.s.http), info.clone());
        Connection {
            id,
            state: Mutex::new(Conn {
                transport: None,
                reader: HeadReader::new(parser),
                info,
                phase: Phase::Head {
                    since: Instant::now(),
                },
                leftover: Vec::new(),
                read_paused: false,
                write_paused: false,
                drain_waiters: Vec::new(),
                peer_eof: false,
                generation: 0,
                exchange: None,
                tls,
                protocol: None,
                resume_pending: false,
            }),
            shared,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Conn> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes from the socket.
    pub(crate) fn received(&self, py: Python<'_>, data: &[u8]) -> After {
        let mut after = After::default();
        let mut st = self.lock();
        if st.tls.is_some() {
            self.received_tls(py, &mut st, data, &mut after);
        } else {
            self.received_plain(py, &mut st, data, &mut after);
        }
        after
    }

    /// Ciphertext: decrypted, then served as plain bytes. The handshake's answers go out in
    /// `after.wire`; the first plaintext comes once it is done, when the connection learns its
    /// TLS parameters (the parser then reports `https`).
    fn received_tls(&self, py: Python<'_>, st: &mut Conn, data: &[u8], after: &mut After) {
        let Some(tls) = st.tls.as_mut() else {
            return;
        };
        let mut plain = Vec::new();
        let received = tls.receive(data, &mut plain, &mut after.wire);
        let known = st.info.tls.is_some();
        match received {
            Err(e) => {
                if known {
                    gunicorn_core::log_debug!("TLS error: {e}");
                } else {
                    gunicorn_serve::tls::handshake_failed(&st.info, &e);
                }
                self.disconnect_exchange(st, after);
                st.phase = Phase::Closed;
                after.close = true;
            }
            Ok(r) => {
                if !known {
                    if let Some(info) = st.tls.as_ref().and_then(|t| t.info()) {
                        st.info.tls = Some(info);
                        let parser =
                            RequestParser::new(Arc::clone(&self.shared.s.http), st.info.clone());
                        st.reader = HeadReader::new(parser);
                    }
                }
                if !plain.is_empty() {
                    self.received_plain(py, st, &plain, after);
                }
                if r == Received::Closed && !self.end_of_input(st, after) {
                    st.phase = Phase::Closed;
                    after.close = true;
                }
            }
        }
    }

    /// The TLS layer's last step before bytes go to the transport: `plain` encrypted after
    /// the bytes already in `wire`, and close_notify when the connection closes.
    pub(crate) fn seal(&self, mut wire: Vec<u8>, plain: Vec<u8>, closing: bool) -> Vec<u8> {
        let mut st = self.lock();
        let Some(tls) = st.tls.as_mut() else {
            return plain;
        };
        if !plain.is_empty() && tls.send(&plain, &mut wire).is_err() {
            return wire;
        }
        if closing {
            tls.close_notify(&mut wire);
        }
        wire
    }

    fn received_plain(&self, py: Python<'_>, st: &mut Conn, data: &[u8], after: &mut After) {
        match &mut st.phase {
            Phase::Closed => {}
            // Reading is paused; bytes that were on their way wait for the slot.
            Phase::Waiting => st.leftover.extend_from_slice(data),
            // Pipelined bytes are still to be parsed (the protocol's `resume` comes next):
            // these come after them.
            Phase::Head { .. } if st.resume_pending => st.leftover.extend_from_slice(data),
            Phase::Head { .. } => self.feed_head(py, st, data, after),
            Phase::Busy => self.feed_busy(st, data, after),
            Phase::WebSocket(ws) => {
                ws.received(data, after);
                if ws.is_closed() {
                    after.close = true;
                }
                // The app is not taking its messages: stop reading until it does.
                if ws.backlog() >= EVENT_BACKLOG && !st.read_paused {
                    st.read_paused = true;
                    after.pause_reading = Some(true);
                }
            }
        }
    }

    /// Parses a request head from `data` (after any part of it received before).
    fn feed_head(&self, py: Python<'_>, st: &mut Conn, data: &[u8], after: &mut After) {
        let step = st.reader.feed(data);
        self.head_step(py, st, step, after);
    }

    fn head_step(&self, py: Python<'_>, st: &mut Conn, step: HeadStep, after: &mut After) {
        match step {
            HeadStep::NeedMore => {}
            HeadStep::Invalid(e) => self.reject(st, &e, after),
            HeadStep::Ready { req, after_head } => self.begin(py, st, req, after_head, after),
        }
    }

    /// Answers a request that failed before the app ran with gunicorn's error page, and closes.
    fn reject(&self, st: &mut Conn, err: &HttpError, after: &mut After) {
        if let Some(page) = gunicorn_serve::reject::request_error(&st.info, err) {
            after.write.extend_from_slice(&page);
        }
        st.phase = Phase::Closed;
        // The rest of the bad request may still be coming (gunicorn's close_graceful).
        after.linger = true;
    }

    /// A complete head: set up the exchange and hand the request to the app (or the WebSocket
    /// handshake to it).
    fn begin(
        &self,
        py: Python<'_>,
        st: &mut Conn,
        req: Box<Request>,
        after_head: Vec<u8>,
        after: &mut After,
    ) {
        // gunicorn 27's ASGI parser takes HTTP/1.0 and HTTP/1.1 only (other 1.x versions with
        // permit_unconventional_http_version), where its WSGI parser serves any 1.x: -k asgi
        // answers 400 as gunicorn's -k asgi does.
        if req.version.0 == 1
            && req.version.1 > 1
            && !self.shared.s.http.permit_unconventional_http_version
        {
            let version = format!("HTTP/{}.{}", req.version.0, req.version.1);
            return self.reject(st, &HttpError::InvalidHTTPVersion(version), after);
        }
        if let Some(ws) = upgrade_request(&req) {
            match ws {
                Ok(offer) => {
                    return self.begin_websocket(py, st, req, offer, after_head, after);
                }
                Err(e) => {
                    gunicorn_core::log_debug!("Refused WebSocket upgrade: {e}");
                    after.write.extend_from_slice(&refusal(&e));
                    st.phase = Phase::Closed;
                    after.close = true;
                    return;
                }
            }
        }
        let mut body = Body {
            decoder: BodyDecoder::new(&req.body, Arc::clone(&self.shared.s.http)),
            buf: Vec::new(),
            delivered: false,
        };
        let used = match body.decoder.decode(&after_head, &mut body.buf) {
            Ok(used) => used,
            Err(e) => return self.reject(st, &e, after),
        };
        st.leftover = after_head[used..].to_vec();
        st.generation += 1;
        let last = self.shared.count_request();
        let expect_continue = req.expect_continue;
        let scope =
            match self
                .shared
                .scope(py, ScopeType::Http, &req, &st.info, st.reader.proxy_info())
            {
                Ok(scope) => scope,
                Err(e) => {
                    log_app_error(py, "Error building the ASGI scope", &e);
                    return self.reject(st, &HttpError::NoMoreData, after);
                }
            };
        st.exchange = Some(Exchange {
            generation: st.generation,
            req,
            body,
            expect_continue,
            receive_waiter: None,
            reply: Reply::Pending,
            disconnected: false,
            task: None,
            started: Instant::now(),
            last,
            hook_req: None,
            response_headers: Vec::new(),
        });
        st.phase = Phase::Busy;
        self.apply_read_limits(st, after);
        after.start = Some(Start {
            generation: st.generation,
            scope,
            websocket: false,
        });
    }

    /// A request head that asks for a WebSocket: the app decides (websocket.accept / close).
    fn begin_websocket(
        &self,
        py: Python<'_>,
        st: &mut Conn,
        req: Box<Request>,
        offer: gunicorn_websocket::Offer,
        after_head: Vec<u8>,
        after: &mut After,
    ) {
        st.generation += 1;
        let scope = match self.shared.scope(
            py,
            ScopeType::WebSocket,
            &req,
            &st.info,
            st.reader.proxy_info(),
        ) {
            Ok(scope) => scope,
            Err(e) => {
                log_app_error(py, "Error building the ASGI scope", &e);
                st.phase = Phase::Closed;
                after.close = true;
                return;
            }
        };
        self.shared.count_request();
        let ws = WsConn::new(
            st.generation,
            offer,
            after_head,
            self.shared.s.ws_max_message,
        );
        st.phase = Phase::WebSocket(Box::new(ws));
        after.start = Some(Start {
            generation: st.generation,
            scope,
            websocket: true,
        });
    }

    /// Body bytes for the current request, and pipelined bytes past it.
    fn feed_busy(&self, st: &mut Conn, data: &[u8], after: &mut After) {
        let Some(ex) = st.exchange.as_mut() else {
            st.leftover.extend_from_slice(data);
            return;
        };
        let mut rest = data;
        if !ex.body.complete() {
            match ex.body.decoder.decode(data, &mut ex.body.buf) {
                Ok(used) => rest = &data[used..],
                Err(e) => {
                    // A malformed chunked body: the request cannot go on. The app sees the
                    // client as gone; the client gets the 400 if no response started.
                    let started = !matches!(ex.reply, Reply::Pending);
                    self.fail_body(st, &e, started, after);
                    return;
                }
            }
        }
        if !rest.is_empty() {
            st.leftover.extend_from_slice(rest);
        }
        if let Some(waiter) = ex.receive_waiter.take() {
            match take_body_message(&mut ex.body) {
                Some(msg) => after.resolve.push((waiter, msg)),
                None => ex.receive_waiter = Some(waiter),
            }
        }
        self.apply_read_limits(st, after);
    }

    /// The body could not be decoded: answer 400 (when no response started) and close.
    fn fail_body(&self, st: &mut Conn, err: &HttpError, started: bool, after: &mut After) {
        if !started {
            if let Some(page) = gunicorn_serve::reject::request_error(&st.info, err) {
                after.write.extend_from_slice(&page);
            }
        }
        self.disconnect_exchange(st, after);
        st.phase = Phase::Closed;
        after.close = true;
    }

    /// Pauses reading while the app has a lot of unread body or pipelined bytes wait; resumes
    /// once it has taken them.
    pub(crate) fn apply_read_limits(&self, st: &mut Conn, after: &mut After) {
        let body = st.exchange.as_ref().map_or(0, |e| e.body.buf.len());
        let full = body >= BODY_HIGH_WATER || st.leftover.len() >= LEFTOVER_HIGH_WATER;
        if full != st.read_paused && !matches!(st.phase, Phase::Closed) {
            st.read_paused = full;
            after.pause_reading = Some(full);
        }
    }

    /// The client went away: the current request sees `http.disconnect`, its sends fail, and
    /// its task is cancelled after the grace period (done by the caller).
    pub(crate) fn disconnect_exchange(&self, st: &mut Conn, after: &mut After) {
        for w in st.drain_waiters.drain(..) {
            after.resolve.push((w, Resolution::Nothing));
        }
        if let Some(ex) = st.exchange.as_mut() {
            if !matches!(ex.reply, Reply::Done) {
                ex.disconnected = true;
            }
            if let Some(w) = ex.receive_waiter.take() {
                after.resolve.push((w, Resolution::Disconnect));
            }
        }
        if let Phase::WebSocket(ws) = &mut st.phase {
            ws.disconnected(after);
        }
    }

    /// `receive()` of the request `generation`: a message now, or None to wait (the caller
    /// registers a Future with [`Connection::wait_receive`]).
    pub(crate) fn receive_now(&self, generation: u64, after: &mut After) -> Option<Resolution> {
        let mut st = self.lock();
        let stale = st.generation != generation;
        let eof_after_body = st.peer_eof
            && st
                .exchange
                .as_ref()
                .is_some_and(|e| e.body.delivered && !matches!(e.reply, Reply::Done));
        if eof_after_body && !stale {
            self.client_left(&mut st, after);
            return Some(Resolution::Disconnect);
        }
        let Some(ex) = st.exchange.as_mut().filter(|_| !stale) else {
            // A request whose response is complete (and the connection has moved on): the
            // client is, for it, gone (uvicorn and gunicorn answer the same).
            return Some(Resolution::Disconnect);
        };
        if ex.disconnected || matches!(ex.reply, Reply::Done) && ex.body.delivered {
            return Some(Resolution::Disconnect);
        }
        if let Some(msg) = take_body_message(&mut ex.body) {
            self.apply_read_limits(&mut st, after);
            return Some(msg);
        }
        if ex.expect_continue && matches!(ex.reply, Reply::Pending) {
            ex.expect_continue = false;
            after.write.extend_from_slice(CONTINUE_100);
        }
        None
    }

    /// Registers `fut` as the waiting `receive()` of request `generation`.
    pub(crate) fn wait_receive(&self, generation: u64, fut: Py<PyAny>) -> Option<Py<PyAny>> {
        let mut st = self.lock();
        match st.exchange.as_mut() {
            Some(ex) if ex.generation == generation && !ex.disconnected => {
                ex.receive_waiter = Some(fut);
                None
            }
            // Disconnected in between: resolve it at once.
            _ => Some(fut),
        }
    }

    /// The transport's buffer is over its high-water mark (asyncio flow control).
    pub(crate) fn pause_writing(&self) {
        self.lock().write_paused = true;
    }

    /// The transport's buffer drained: waiting sends go on.
    pub(crate) fn resume_writing(&self) -> After {
        let mut after = After::default();
        let mut st = self.lock();
        st.write_paused = false;
        for w in st.drain_waiters.drain(..) {
            after.resolve.push((w, Resolution::Nothing));
        }
        after
    }

    /// The response of the current request is complete: log it, then keep the connection
    /// for the next request (parsing what already arrived) or close it.
    pub(crate) fn response_done(
        &self,
        st: &mut Conn,
        status: u16,
        resp_close: bool,
        sent: u64,
        after: &mut After,
    ) {
        let Some(ex) = st.exchange.as_mut() else {
            return;
        };
        ex.reply = Reply::Done;
        // A stop that began after the head went out does not close the connection here: the
        // head told the client it stays open, so its next request may already be on the way.
        // The connection idles, and the drain answers that request with Connection: close or
        // closes it after the linger (`idle_past`). Closed here, that request was lost.
        let keep = !resp_close
            && !ex.last
            && ex.body.complete()
            && !st.peer_eof
            && !self.shared.s.keepalive.is_zero();
        if self.shared.wants_finished() {
            let headers = std::mem::take(&mut ex.response_headers);
            after.finished = Some(finished(ex, &st.info, &st.reader, status, headers, sent));
        }
        if let Some(w) = ex.receive_waiter.take() {
            after.resolve.push((w, Resolution::Disconnect));
        }
        if !keep {
            // A body the app did not read may still be coming: linger rather than close on it.
            let unread = !ex.body.complete();
            st.phase = Phase::Closed;
            if unread {
                after.linger = true;
            } else {
                after.close = true;
            }
            return;
        }
        st.phase = Phase::Head {
            since: Instant::now(),
        };
        if st.leftover.is_empty() {
            self.apply_read_limits(st, after);
        } else {
            // A pipelined request is already here. It is parsed from the protocol at the
            // loop's next turn (`resume`), which is where requests are handed to the app.
            st.resume_pending = true;
            after.resume = true;
        }
    }

    /// The protocol's `resume`: parses the pipelined bytes kept past the last response.
    pub(crate) fn resume(&self, py: Python<'_>) -> After {
        let mut after = After::default();
        let mut st = self.lock();
        if !st.resume_pending {
            return after;
        }
        st.resume_pending = false;
        if !matches!(st.phase, Phase::Head { .. }) {
            return after;
        }
        let leftover = std::mem::take(&mut st.leftover);
        let step = st.reader.resume(leftover);
        self.head_step(py, &mut st, step, &mut after);
        if matches!(st.phase, Phase::Head { .. }) {
            // Nothing pipelined is waiting any more: read again if a full buffer had paused it.
            self.apply_read_limits(&mut st, &mut after);
        }
        after
    }

    /// Asks the loop to call the protocol's `resume` at its next turn.
    pub(crate) fn schedule_resume(&self, py: Python<'_>) {
        let protocol = self.lock().protocol.as_ref().map(|p| p.clone_ref(py));
        let (Some(protocol), Ok(refs)) = (protocol, self.shared.loop_refs()) else {
            return;
        };
        let scheduled = protocol
            .bind(py)
            .getattr(intern!(py, "resume"))
            .and_then(|resume| refs.call_soon.bind(py).call1((resume,)));
        if let Err(e) = scheduled {
            log_app_error(py, "Error scheduling a pipelined request", &e);
        }
    }

    /// The app failed before its response started and gets the error page `page` instead:
    /// reported like any response (the access log shows the 500, as gunicorn's does).
    pub(crate) fn error_response(
        &self,
        st: &mut Conn,
        status: u16,
        page: Vec<u8>,
        after: &mut After,
    ) {
        let sent = page
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |end| (page.len() - end - 4) as u64);
        after.write = page;
        if let Some(ex) = st.exchange.as_mut() {
            ex.reply = Reply::Done;
            if self.shared.wants_finished() {
                after.finished = Some(finished(ex, &st.info, &st.reader, status, Vec::new(), sent));
            }
        }
    }

    /// The `ReqMeta` the response encoder needs, with the close decided here.
    pub(crate) fn req_meta(&self, ex: &Exchange) -> ReqMeta {
        ReqMeta {
            version: ex.req.version,
            is_head: ex.req.method == "HEAD",
            should_close: ex.req.should_close(),
            protocol: self.shared.s.http.protocol,
        }
    }

    /// The peer half-closed (`eof_received`). True keeps the transport open for a response in
    /// progress; an idle connection is closed.
    pub(crate) fn eof(&self) -> (bool, After) {
        let mut after = After::default();
        let mut st = self.lock();
        let keep = self.end_of_input(&mut st, &mut after);
        (keep, after)
    }

    /// The client sent all it will (a FIN, or TLS's close_notify). True keeps the connection
    /// for the response in progress.
    fn end_of_input(&self, st: &mut Conn, after: &mut After) -> bool {
        st.peer_eof = true;
        match &st.phase {
            Phase::Busy => {
                let incomplete = st.exchange.as_ref().is_some_and(|e| !e.body.complete());
                let waiting = st
                    .exchange
                    .as_ref()
                    .is_some_and(|e| e.receive_waiter.is_some());
                // A body cut short can never complete: the request is over, and the
                // connection closes (it stayed open, and the graceful stop waited for it).
                if incomplete || waiting {
                    self.client_left(st, after);
                } else if let Some(ex) = st.exchange.as_mut() {
                    // The app is still at work and not listening for the client: it gets the
                    // disconnect grace period to finish (its response still reaches a client
                    // that only shut its write side), then its task is cancelled, as after a
                    // disconnect. Without this, a task that never calls receive() ran on,
                    // and kept the connection open, long after the client left.
                    after.cancel_task = ex.task.take();
                }
                true
            }
            _ => false,
        }
    }

    /// The client closed its side before the whole body came, or while the app waits past
    /// the whole body for what comes next (a long poll, a stream that listens for the client
    /// leaving): the client is gone for it, as gunicorn 27 and uvicorn, which close the
    /// transport at EOF, tell the app with `http.disconnect`; the connection closes. Until the
    /// app asks, a half-closed connection stays open so that a client that only shut its
    /// write side still gets its response.
    fn client_left(&self, st: &mut Conn, after: &mut After) {
        self.disconnect_exchange(st, after);
        st.phase = Phase::Closed;
        after.close = true;
    }

    /// Sets the transport and the protocol at `connection_made`.
    pub(crate) fn set_transport(&self, transport: Py<PyAny>, protocol: Py<PyAny>) {
        let mut st = self.lock();
        st.transport = Some(transport);
        st.protocol = Some(protocol);
    }

    /// The transport, if it is still open.
    pub(crate) fn transport(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.lock().transport.as_ref().map(|t| t.clone_ref(py))
    }

    /// The protocol's `connection_lost`.
    pub(crate) fn lost(&self) -> (After, Option<Py<PyAny>>) {
        let mut after = After::default();
        let mut st = self.lock();
        self.disconnect_exchange(&mut st, &mut after);
        st.transport = None;
        st.protocol = None;
        if let Phase::WebSocket(ws) = &mut st.phase {
            // The WebSocket stays, so the app still gets the messages that came before the
            // close and then `websocket.disconnect`.
            let task = ws.task.take();
            return (after, task);
        }
        st.phase = Phase::Closed;
        let task = st
            .exchange
            .as_mut()
            .filter(|e| e.disconnected)
            .and_then(|e| e.task.take());
        (after, task)
    }

    /// A graceful stop: a WebSocket gets close 1001 ("going away").
    pub(crate) fn going_away(&self) -> After {
        let mut after = After::default();
        let mut st = self.lock();
        if st.transport.is_some() {
            if let Phase::WebSocket(ws) = &mut st.phase {
                ws.going_away(&mut after);
            }
        }
        after
    }

    /// Keeps the `pre_request` hook's request object for `post_request`.
    pub(crate) fn set_hook_request(&self, generation: u64, obj: Py<PyAny>) {
        let mut st = self.lock();
        if let Some(ex) = st.exchange.as_mut().filter(|e| e.generation == generation) {
            ex.hook_req = Some(obj);
        }
    }

    /// Keeps the app's task of request `generation`, to cancel it if the client leaves.
    pub(crate) fn set_task(&self, generation: u64, task: Py<PyAny>) {
        let mut st = self.lock();
        if let Phase::WebSocket(ws) = &mut st.phase {
            if ws.generation == generation {
                ws.task = Some(task);
            }
            return;
        }
        if let Some(ex) = st.exchange.as_mut().filter(|e| e.generation == generation) {
            if !matches!(ex.reply, Reply::Done) {
                ex.task = Some(task);
            }
        }
    }

    /// A copy of the request being served (for the request hooks).
    pub(crate) fn current_request(&self) -> Option<Box<Request>> {
        let st = self.lock();
        st.exchange.as_ref().map(|e| e.req.clone())
    }

    /// Accepted past `--worker-connections`: reading pauses until [`Connection::admit`].
    pub(crate) fn wait_for_slot(&self) -> After {
        let mut after = After::default();
        let mut st = self.lock();
        st.phase = Phase::Waiting;
        st.read_paused = true;
        after.pause_reading = Some(true);
        after
    }

    /// A slot freed: the connection is served from now on (its first head's time starts now).
    pub(crate) fn admit(&self) -> After {
        let mut after = After::default();
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Waiting) {
            return after;
        }
        st.phase = Phase::Head {
            since: Instant::now(),
        };
        st.read_paused = false;
        after.pause_reading = Some(false);
        if !st.leftover.is_empty() {
            st.resume_pending = true;
            after.resume = true;
        }
        after
    }

    /// Idle for longer than `limit` (keep-alive, or the first request's head), or stopping and
    /// idle: the caller closes it.
    pub(crate) fn idle_past(&self, now: Instant, stopping: bool) -> bool {
        let st = self.lock();
        match st.phase {
            Phase::Head { since } => {
                let first = st.generation == 0;
                let mut limit = self.shared.head_timeout(first);
                if stopping && !st.reader.started() && st.leftover.is_empty() {
                    // Its client may be sending the next request right now: an idle
                    // connection stays open a little while a stop drains (answered with
                    // Connection: close), as gunicorn 27's gthread does. Closed at once, the
                    // request in flight was lost (a dozen per recycle under keep-alive load).
                    limit = limit.min(STOP_KEEPALIVE_LINGER);
                }
                now.duration_since(since) >= limit
            }
            Phase::WebSocket(ref ws) => ws.close_overdue(now),
            _ => false,
        }
    }
}

/// The record of a finished response (access log, post_request), made under the lock.
fn finished(
    ex: &mut Exchange,
    info: &ConnInfo,
    reader: &HeadReader,
    status: u16,
    headers: Vec<(String, String)>,
    sent: u64,
) -> Finished {
    Finished {
        req: ex.req.clone(),
        info: info.clone(),
        proxy: reader.proxy_info().cloned(),
        status,
        headers,
        sent,
        duration: ex.started.elapsed(),
        hook_req: ex.hook_req.take(),
    }
}

/// The next `http.request` message of a body: what is buffered (or the end), None when there
/// is nothing new to hand out.
fn take_body_message(body: &mut Body) -> Option<Resolution> {
    if body.delivered {
        return None;
    }
    if body.buf.is_empty() && !body.complete() {
        return None;
    }
    let bytes = std::mem::take(&mut body.buf);
    if body.complete() {
        body.delivered = true;
    }
    Some(Resolution::Body {
        bytes,
        more: !body.complete(),
    })
}
