//! The event loop. It owns the listeners and every connection that is not in a pool thread
//! (new, idle keep-alive, half-received heads, lingering closes), reads and parses request
//! heads without the GIL, and queues complete requests for the pool. It also enforces the
//! deadlines and `--worker-connections`, and runs the graceful shutdown. One thread at a time
//! runs it, a turn at a time ([`Poller::turn`]): see `handoff::Shared::next_job`.
//!
//! Connections are registered once, edge-triggered, for their whole life. While a connection
//! is in a pool thread its readiness events are only remembered; when it comes back, bytes
//! already read past its last request are parsed first (a pipelined request is answered at
//! once), then the socket is read if an event came in the meantime.
//!
//! On a TLS port each accepted connection is a `tls::TlsStream` from the start: its reads here
//! drive the handshake, without the GIL and never in a pool thread. A handshake gets the
//! deadline of a new connection until its first bytes, then the head's (`Wait::Handshake`);
//! a protocol error (plain HTTP, garbage) closes it at once. Its failures are reported with
//! `tls::handshake_failed` (a debug line and a StatsD counter), never at error level. The
//! environ's TLS keys come from what the handshake established (`ConnInfo::tls`).
//!
//! HTTP/2: a TLS connection whose handshake chose `h2` by ALPN, and a plain connection from a
//! trusted peer that opens with the HTTP/2 preface (`http2_cleartext`), leave the event loop
//! for the worker's HTTP/2 thread (`gunicorn_serve::h2`), which hands their streams to the
//! pool; they still count towards `--worker-connections` and a graceful stop waits for them.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gunicorn_core::{log_error, Listener, Shutdown, StopKind};
use gunicorn_http::{ConnInfo, HttpConfig, HttpError, Local, RequestParser};
use gunicorn_serve::accept::{accept_batch, BatchEnd};
use gunicorn_serve::h2::preface::{self, Preface};
use gunicorn_serve::h2::upgrade;
use gunicorn_serve::h2::{H2Server, Incoming};
use gunicorn_serve::tls::{handshake_failed, Acceptor};
use gunicorn_serve::{Count, HeadReader, HeadStep, RequestBudget, Transport};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::conn::{must_close, KeepAliveInputs, Timeouts, Wait, LINGER_LIMIT};
use crate::handoff::{Baton, Shared, Turn};
use crate::job::{Done, Job, PySocket, Work};
use crate::socket::ClientSocket;

/// The wake-up token of the pool threads handing connections back.
pub const WAKER: Token = Token(usize::MAX);
const SHUTDOWN: Token = Token(usize::MAX - 1);
/// Listener `i` has token `LISTENER_BASE - i`; connections count up from 0 and never get
/// near these.
const LISTENER_BASE: usize = usize::MAX - 2;
const FIRST_LISTENER_TOKEN: usize = LISTENER_BASE - (1 << 16);

/// The poller's shared read buffer: a head usually arrives in one read and is parsed from here.
const READ_BUFFER: usize = 64 * 1024;
/// How long a draining worker keeps an idle kept-alive connection open at most (less when its
/// keep-alive deadline comes first), for the request its client may already be sending; as
/// gunicorn 27's gthread worker (`STOP_KEEPALIVE_LINGER`).
const STOP_KEEPALIVE_LINGER: Duration = Duration::from_secs(2);
/// Deadlines are checked at most this often (a sweep looks at every connection).
const SWEEP_GRANULARITY: Duration = Duration::from_millis(100);

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In the poller, waiting for (the rest of) a request head.
    Reading,
    /// In a pool thread.
    Busy,
    /// Our side is shut down; discarding what the client still sends before closing.
    Closing { drained: usize },
}

/// Whether a connection is encrypted, and how far its TLS handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// A plain socket.
    Plain,
    /// The handshake is not done: reads drive it.
    Handshaking,
    /// The handshake is done and `ConnInfo::tls` says what it established.
    Established,
}

/// Whether a plain connection's first bytes are looked at for the HTTP/2 preface (h2c with
/// prior knowledge, for a peer in `forwarded_allow_ips`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum H2cProbe {
    /// Not looked at: HTTP/1 only.
    Off,
    /// Holds the first bytes while they may still be the preface.
    Probing(Vec<u8>),
}

struct Conn {
    /// None while the connection is in a pool thread.
    io: Option<Box<dyn Transport>>,
    tls: Tls,
    h2c: H2cProbe,
    /// `environ["gunicorn.socket"]`, made by the first request's pool thread and kept for the
    /// connection's life (see `Bridge::connection_socket`).
    socket: Option<PySocket>,
    info: ConnInfo,
    head: HeadReader,
    phase: Phase,
    wait: Wait,
    deadline: Option<Instant>,
    /// The client closed its side (a readiness event said so): keep reading to the EOF.
    peer_closed: bool,
    /// The socket may hold bytes no readiness event will announce again: read it when the
    /// connection comes back from its request. Set when the last read filled the buffer, the
    /// client closed its side, an event came while the request ran, or the request had a body
    /// (the pool thread read the socket). Otherwise the socket was drained by a short read, and
    /// anything arriving later raises a new edge-triggered event: no read on spec (it would
    /// cost a `recv` returning `EAGAIN` per keep-alive request). A TLS connection is always
    /// read again (see `Poller::on_done`).
    recheck: bool,
}

/// Where the worker is in its life, as the event loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Accepting and serving.
    Serving,
    /// Graceful stop (TERM, HUP, TTOU, `max_requests`, parent gone): no more accepts, and
    /// every connection already accepted is answered. Requests in the pool finish; a request
    /// arriving on a kept-alive or half-read connection is served with `Connection: close`;
    /// idle keep-alive connections wait for their next request until their keep-alive
    /// deadline, [`STOP_KEEPALIVE_LINGER`] at most; closes still linger. The worker exits when
    /// no connection is left, or at `deadline` (`--graceful-timeout`). Closing an idle connection at once instead races
    /// with the request its client may be sending on it: that request would be lost.
    Draining { deadline: Instant },
    /// Quick stop (INT, QUIT): no more accepts, every connection waiting in the loop is
    /// dropped, and the requests already running in the pool threads finish (gunicorn's
    /// gthread worker exits through the interpreter, which joins its pool threads), until
    /// `deadline` (`--graceful-timeout`, after which the master kills the worker anyway).
    Quitting { deadline: Instant },
}

/// The worker settings the poller applies.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub worker_connections: usize,
    pub threads: usize,
    pub keepalive_enabled: bool,
    pub timeouts: Timeouts,
    pub graceful_timeout: Duration,
    /// How often the heartbeat is touched.
    pub beat: Duration,
    /// Other workers accept on the same listeners (`--workers` > 1).
    pub shared_listeners: bool,
    /// Connections a worker takes without deferring to the others (see `Poller::accept_at`).
    pub fair_share: usize,
}

/// What the event loop serves with besides its settings: the protocols beyond plain HTTP/1,
/// and the `max_requests` budget it shares with the HTTP/2 thread.
pub struct Serving {
    /// TLS for every connection, when the worker serves TLS.
    pub tls: Option<Acceptor>,
    /// The HTTP/2 thread, when `http_protocols` has `h2`.
    pub h2: Option<H2Hub>,
    pub budget: Arc<RequestBudget>,
}

/// The worker's HTTP/2 thread and how connections reach it.
pub struct H2Hub {
    pub server: Arc<H2Server>,
    /// h2c with prior knowledge (`http2_cleartext` `prior-knowledge` or `both`).
    pub prior_knowledge: bool,
    /// `prior-knowledge` alone: a trusted peer that sends anything but the preface gets 400
    /// (gunicorn 27: it is expected to speak HTTP/2).
    pub preface_required: bool,
    /// h2c by `Upgrade: h2c` (`http2_cleartext` `upgrade` or `both`).
    pub upgrade: bool,
    /// `http2_max_frame_size`: the largest frame an upgraded request's head or body may be.
    pub max_frame: usize,
    /// `http2_initial_window_size`: the most body an upgraded request may carry.
    pub first_window: usize,
}

pub struct Poller {
    poll: Poll,
    events: Events,
    listeners: Vec<(Listener, Local)>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    busy: usize,
    shared: Arc<Shared<Poller>>,
    http: Arc<HttpConfig>,
    settings: Settings,
    shutdown: Shutdown,
    /// The TLS configuration of every connection, when the worker serves TLS.
    tls: Option<Acceptor>,
    /// The HTTP/2 thread, when `http_protocols` has `h2`.
    h2: Option<H2Hub>,
    scratch: Vec<u8>,
    done: Vec<Done>,
    /// The tokens of the last poll, with whether the event said the peer closed (or failed).
    ready: Vec<(Token, bool)>,
    /// `max_requests`: the request that reaches it starts a graceful stop (HTTP/2 streams
    /// count in it too).
    budget: Arc<RequestBudget>,
    /// A listener may have connections waiting (its edge came, or a batch stopped short).
    accept_more: bool,
    /// Since when connections have been waiting on the listeners (reset at each accept).
    pending_since: Instant,
    /// When this turn's wait for readiness ended: the clock that the deadlines of the
    /// connections handled in the turn start from (one clock read per turn instead of one
    /// per connection; a turn handles its events within well under a millisecond, and
    /// those deadlines are seconds).
    now: Instant,
    life: Life,
    next_sweep: Instant,
}

impl Poller {
    pub fn new(
        poll: Poll,
        listeners: Vec<(Listener, Local)>,
        shared: Arc<Shared<Poller>>,
        http: Arc<HttpConfig>,
        settings: Settings,
        shutdown: Shutdown,
        serving: Serving,
    ) -> std::io::Result<Poller> {
        let Serving { tls, h2, budget } = serving;
        for (i, (l, _)) in listeners.iter().enumerate() {
            poll.registry().register(
                &mut SourceFd(&l.as_raw_fd()),
                Token(LISTENER_BASE - i),
                Interest::READABLE,
            )?;
        }
        poll.registry().register(
            &mut SourceFd(&shutdown.wake_fd().as_raw_fd()),
            SHUTDOWN,
            Interest::READABLE,
        )?;
        let now = Instant::now();
        Ok(Poller {
            poll,
            events: Events::with_capacity(1024),
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            busy: 0,
            shared,
            http,
            settings,
            shutdown,
            tls,
            h2,
            scratch: vec![0; READ_BUFFER],
            done: Vec::new(),
            ready: Vec::with_capacity(1024),
            budget,
            // Connections queued before this worker started are picked up at once.
            accept_more: true,
            pending_since: now,
            now,
            life: Life::Serving,
            next_sweep: now + Duration::from_secs(1),
        })
    }

    /// One turn of the event loop: waits for readiness (at most `cap`, less when a deadline
    /// or a delayed accept comes first), reads and parses what arrived, queues complete
    /// requests, takes back connections from the pool threads, and accepts. Returns
    /// [`Turn::Stopped`] once the worker may exit: at once for a quick stop, after the
    /// in-flight requests (or at the graceful timeout) for a graceful one.
    pub fn turn(&mut self, cap: Duration) -> Turn {
        let now = Instant::now();
        match (self.shutdown.requested(), self.life) {
            (Some(StopKind::Quick), Life::Serving | Life::Draining { .. }) => self.begin_quit(now),
            (Some(StopKind::Graceful), Life::Serving) => self.begin_drain(now),
            _ => {}
        }
        match self.life {
            Life::Serving => {}
            Life::Draining { deadline } if self.open + self.h2_open() == 0 || now >= deadline => {
                return Turn::Stopped;
            }
            Life::Quitting { deadline } if self.busy == 0 || now >= deadline => {
                return Turn::Stopped;
            }
            Life::Draining { .. } | Life::Quitting { .. } => {}
        }
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let mut wake = now
            .checked_add(cap)
            .map_or(self.next_sweep, |c| c.min(self.next_sweep));
        if let Life::Draining { deadline } | Life::Quitting { deadline } = self.life {
            wake = wake.min(deadline);
        }
        if let Some(kick) = self.shared.kick(now) {
            wake = wake.min(kick);
        }
        if self.can_accept() {
            wake = wake.min(self.accept_at());
        }
        let mut timeout = wake.saturating_duration_since(now);
        if !self.shared.may_sleep() {
            timeout = Duration::ZERO;
        }
        let polled = self.poll.poll(&mut self.events, Some(timeout));
        self.shared.awake();
        self.now = Instant::now();
        if let Err(e) = polled {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log_error!("poll failed: {e}");
                return Turn::Stopped;
            }
        }
        // The tokens are copied out so the handlers may borrow the poller mutably.
        self.ready.clear();
        self.ready.extend(
            self.events
                .iter()
                .map(|e| (e.token(), e.is_read_closed() || e.is_error())),
        );
        for i in 0..self.ready.len() {
            let (token, closed) = self.ready[i];
            match token {
                WAKER | SHUTDOWN => {}
                Token(t) if t >= FIRST_LISTENER_TOKEN => {
                    if !self.accept_more {
                        self.accept_more = true;
                        self.pending_since = Instant::now();
                    }
                }
                Token(t) => self.on_ready(t, closed),
            }
        }
        let mut done = std::mem::take(&mut self.done);
        self.shared.take_done(&mut done);
        for d in done.drain(..) {
            self.on_done(d);
        }
        self.done = done;
        if self.can_accept() && Instant::now() >= self.accept_at() {
            self.accept_some();
        }
        Turn::Going
    }

    // ---- accepting ----------------------------------------------------------------------

    /// A listener may hold connections and this worker may take them.
    fn can_accept(&self) -> bool {
        self.accept_more
            && self.life == Life::Serving
            && self.open + self.h2_open() < self.settings.worker_connections
    }

    /// Connections the HTTP/2 thread serves.
    fn h2_open(&self) -> usize {
        self.h2.as_ref().map_or(0, |h| h.server.open_connections())
    }

    /// When this worker takes the next waiting connection.
    ///
    /// Every worker sharing a listener is woken by a new connection, and the first one to run
    /// would take a whole burst (a benchmark's 64 keep-alive connections, leaving the other
    /// core idle for the whole run). So a worker that already holds its fair share
    /// (`2 * threads`) leaves a waiting connection to the others for a moment that grows with
    /// what it holds (100 µs per connection over the share, at most 2 ms), and takes it only if
    /// nobody else did by then (then a batch of them: see `accept_some`).
    fn accept_at(&self) -> Instant {
        let s = &self.settings;
        if !s.shared_listeners || self.open < s.fair_share {
            return self.pending_since;
        }
        let over = (self.open - s.fair_share + 1).min(20) as u32;
        self.pending_since + Duration::from_micros(100) * over
    }

    /// Accepts at most `accept_batch` connections per listener; `accept_more` stays set
    /// while a listener may hold more (the loop then polls without sleeping and comes back).
    ///
    /// Taking a few at a time rather than until `EAGAIN` spreads a burst of connections over
    /// the workers sharing the listener: every worker is woken by it, and each takes turns
    /// between its other work. Accepting everything at once let one worker take most of a
    /// benchmark's 64 keep-alive connections, leaving the other core idle.
    fn accept_some(&mut self) {
        // Alone on the listeners: everything waiting. Under the fair share: one per turn, so
        // the others get their turns. Over it, once the others let the wait pass: a batch, so
        // a backlog (hundreds of clients connecting at once) drains quickly.
        let s = &self.settings;
        let accept_batch_size = if !s.shared_listeners {
            64
        } else if self.open < s.fair_share {
            1
        } else {
            8
        };
        let listeners = std::mem::take(&mut self.listeners);
        let mut more = Some(false);
        for (listener, local) in &listeners {
            // gunicorn's gthread stops accepting at the cap; `accept_more` stays as it is (set)
            // so accepting resumes when a connection closes.
            let cap = self
                .settings
                .worker_connections
                .saturating_sub(self.h2_open());
            if self.open >= cap {
                more = None;
                break;
            }
            let end = accept_batch(listener, local, accept_batch_size, |stream, info| {
                self.add_conn(stream, info);
                self.pending_since = Instant::now();
                if self.open >= cap {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            match end {
                BatchEnd::Limit => more = more.map(|_| true),
                BatchEnd::Stopped => {
                    more = None;
                    break;
                }
                BatchEnd::Empty => {}
            }
        }
        self.listeners = listeners;
        if let Some(more) = more {
            self.accept_more = more;
        }
    }

    fn add_conn(&mut self, stream: gunicorn_core::Stream, info: ConnInfo) {
        // On a TLS port the handshake starts with the first read (`read_head`).
        let (io, tls): (Box<dyn Transport>, Tls) = match &self.tls {
            None => (Box::new(ClientSocket::new(Box::new(stream))), Tls::Plain),
            Some(acceptor) => match acceptor.accept(stream) {
                Ok(s) => (Box::new(ClientSocket::new(Box::new(s))), Tls::Handshaking),
                Err(e) => {
                    // rustls could not allocate the connection's state.
                    handshake_failed(&info, &e);
                    return;
                }
            },
        };
        let token = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(e) = self.poll.registry().register(
            &mut SourceFd(&io.as_fd().as_raw_fd()),
            Token(token),
            Interest::READABLE,
        ) {
            log_error!("cannot watch a connection: {e}");
            self.free.push(token);
            return;
        }
        let h2c = match &self.h2 {
            Some(hub)
                if hub.prior_knowledge
                    && tls == Tls::Plain
                    && self.http.forwarded_allow_ips.allows(&info.peer) =>
            {
                H2cProbe::Probing(Vec::new())
            }
            _ => H2cProbe::Off,
        };
        let parser = RequestParser::new(Arc::clone(&self.http), info.clone());
        let deadline = self
            .settings
            .timeouts
            .deadline(Wait::FirstRequest, Instant::now());
        self.set_deadline(deadline);
        self.conns[token] = Some(Conn {
            io: Some(io),
            tls,
            h2c,
            socket: None,
            info,
            head: HeadReader::new(parser),
            phase: Phase::Reading,
            wait: Wait::FirstRequest,
            deadline,
            peer_closed: false,
            recheck: false,
        });
        self.open += 1;
    }

    // ---- reading heads --------------------------------------------------------------------

    fn on_ready(&mut self, token: usize, closed: bool) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        conn.peer_closed |= closed;
        match conn.phase {
            // Read when the pool thread hands the connection back.
            Phase::Busy => conn.recheck = true,
            Phase::Reading => self.read_head(token),
            Phase::Closing { .. } => self.linger(token),
        }
    }

    /// Reads what the socket has and parses it; dispatches a complete head.
    fn read_head(&mut self, token: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
                return;
            };
            let Some(io) = conn.io.as_mut() else { return };
            let read = io.try_read(&mut self.scratch);
            let conn = if conn.tls == Tls::Handshaking {
                if !self.handshake_step(token, &read) {
                    return;
                }
                match self.conns.get_mut(token).and_then(Option::as_mut) {
                    Some(conn) => conn,
                    None => return,
                }
            } else {
                conn
            };
            let n = match read {
                Ok(Some(0)) => {
                    if conn.head.started() {
                        // The peer closed part-way through a head: no response (gunicorn's
                        // NoMoreData), only the debug line.
                        let _ = gunicorn_serve::reject::request_error(
                            &conn.info,
                            &HttpError::NoMoreData,
                        );
                    }
                    self.remove(token);
                    return;
                }
                Ok(Some(n)) => n,
                Ok(None) => return,
                Err(_) => {
                    self.remove(token);
                    return;
                }
            };
            let step = match &mut conn.h2c {
                H2cProbe::Off => conn.head.feed(&self.scratch[..n]),
                H2cProbe::Probing(first) => {
                    first.extend_from_slice(&self.scratch[..n]);
                    match preface::detect(first) {
                        Preface::Partial => continue,
                        Preface::Complete => {
                            let first = std::mem::take(first);
                            self.hand_to_h2(token, first, None);
                            return;
                        }
                        Preface::Absent if self.h2.as_ref().is_some_and(|h| h.preface_required) => {
                            let err = HttpError::h2c_preface(first);
                            self.reject(token, &err);
                            return;
                        }
                        Preface::Absent => {
                            let first = std::mem::take(first);
                            conn.h2c = H2cProbe::Off;
                            conn.head.feed(&first)
                        }
                    }
                }
            };
            let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
                return;
            };
            // Over TLS a short read says nothing about the socket: it returns one record's
            // bytes, more records may wait in the socket.
            conn.recheck = n == self.scratch.len() || conn.peer_closed || conn.tls != Tls::Plain;
            if !self.on_step(token, step) {
                return;
            }
            // Keep reading until the socket says it would block, even after a short read: with
            // edge-triggered readiness a close queued behind the data raises no new event, and
            // a half-closed client must see its connection closed (gunicorn reads EOF at once).
        }
    }

    /// Follows a TLS handshake through a read (`read`, the read's result, which drove it);
    /// true when the read is to be handled as on an established connection: the handshake is
    /// done (what it established goes into `ConnInfo::tls`, for every request's environ).
    /// Otherwise the handshake waits for more bytes (its deadline becomes the head's once its
    /// first bytes came), or it failed and the connection is closed and reported.
    fn handshake_step(&mut self, token: usize, read: &std::io::Result<Option<usize>>) -> bool {
        let now = Instant::now();
        let timeouts = self.settings.timeouts;
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return false;
        };
        let Some(io) = conn.io.as_ref() else {
            return false;
        };
        if !io.in_handshake() {
            conn.tls = Tls::Established;
            conn.info.tls = io.tls_info();
            let alpn_h2 = conn.info.tls.as_ref().is_some_and(|t| t.alpn == Some("h2"));
            if alpn_h2 && self.h2.is_some() {
                // The read that ended the handshake may have returned the first plaintext
                // (the client preface, sent with its last flight): the HTTP/2 thread reads it
                // first, then what the stream still buffers.
                let prefix = match read {
                    Ok(Some(n)) => self.scratch[..*n].to_vec(),
                    _ => Vec::new(),
                };
                self.hand_to_h2(token, prefix, None);
                return false;
            }
            // Now waiting for the first request, as a new connection does.
            if conn.wait == Wait::Handshake {
                conn.wait = Wait::FirstRequest;
                conn.deadline = timeouts.deadline(Wait::FirstRequest, now);
                let d = conn.deadline;
                self.set_deadline(d);
            }
            return true;
        }
        match read {
            Ok(None) => {
                // The client's first bytes came (a readiness event) and the handshake goes on:
                // from now on it must end within `--timeout`, as a head must.
                if conn.wait == Wait::FirstRequest {
                    conn.wait = Wait::Handshake;
                    conn.deadline = timeouts.deadline(Wait::Handshake, now);
                    let d = conn.deadline;
                    self.set_deadline(d);
                }
                false
            }
            // No plaintext comes before the end of the handshake; handled as data if it did.
            Ok(Some(n)) if *n > 0 => true,
            Ok(_) => {
                // Closed before a byte: a port probe (health check), not a TLS client.
                if conn.wait == Wait::Handshake {
                    handshake_failed(&conn.info, &"the client closed the connection");
                }
                self.remove(token);
                false
            }
            Err(e) => {
                // Plain HTTP, garbage, a refused certificate, or no client certificate when
                // one is required: rustls sent its alert, the connection closes at once.
                handshake_failed(&conn.info, e);
                self.remove(token);
                false
            }
        }
    }

    /// Acts on a parse step; true when the connection still waits for bytes.
    fn on_step(&mut self, token: usize, step: HeadStep) -> bool {
        match step {
            HeadStep::NeedMore => {
                let now = self.now;
                let timeouts = self.settings.timeouts;
                let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
                    return false;
                };
                if conn.head.started() && conn.wait != Wait::PartialHead {
                    // The head's deadline runs from its first byte and is not extended by
                    // later bytes (a slowloris client cannot keep its slot forever).
                    conn.wait = Wait::PartialHead;
                    conn.deadline = timeouts.deadline(Wait::PartialHead, now);
                    let d = conn.deadline;
                    self.set_deadline(d);
                }
                true
            }
            HeadStep::Ready { req, after_head } => {
                self.dispatch(token, req, after_head);
                false
            }
            HeadStep::Invalid(e) => {
                self.reject(token, &e);
                false
            }
        }
    }

    /// Answers a request that failed before the app: gunicorn's error page and log line.
    fn reject(&mut self, token: usize, err: &HttpError) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        if let (Some(page), Some(io)) = (
            gunicorn_serve::reject::request_error(&conn.info, err),
            conn.io.as_mut(),
        ) {
            // Error pages are small: one non-blocking send fits in the socket buffer.
            let _ = io.try_write(&page);
        }
        self.close(token, true);
    }

    /// Hands a complete request to the pool, or the connection to the HTTP/2 thread when the
    /// request asks for h2c and may have it (see [`Poller::try_upgrade`]).
    fn dispatch(&mut self, token: usize, req: Box<gunicorn_http::Request>, after_head: Vec<u8>) {
        if self.try_upgrade(token, &req, &after_head) {
            return;
        }
        let parked = self.open - self.busy - 1;
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        let Some(io) = conn.io.take() else { return };
        let count = self.budget.count();
        let last = count.is_final();
        let force_close = must_close(KeepAliveInputs {
            alive: self.life == Life::Serving,
            keepalive_enabled: self.settings.keepalive_enabled,
            last_request: last,
            parked,
            worker_connections: self.settings.worker_connections,
            threads: self.settings.threads,
        });
        conn.phase = Phase::Busy;
        conn.deadline = None;
        self.busy += 1;
        self.shared.submit(
            Work::Request(Job {
                token,
                io,
                req,
                conn: conn.info.clone(),
                proxy: conn.head.proxy_info().cloned(),
                socket: conn.socket.take(),
                after_head,
                force_close,
            }),
            self.now,
        );
        if count == Count::Last && self.life == Life::Serving {
            gunicorn_serve::log_autorestart();
            self.begin_drain(Instant::now());
        }
    }

    /// A connection back from a pool thread.
    fn on_done(&mut self, done: Done) {
        self.busy -= 1;
        let token = done.token;
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        conn.socket = done.socket;
        let Some(io) = done.io else {
            // The socket is gone with its exchange: only the slot remains to free.
            self.remove(token);
            return;
        };
        conn.io = Some(io);
        if !done.keep_alive {
            self.close(token, done.linger);
            return;
        }
        if let Life::Quitting { .. } = self.life {
            self.remove(token);
            return;
        }
        // Serving or draining: the response said the connection stays open, so the client may
        // already be sending its next request. While draining, that one is answered with
        // `Connection: close` (see `dispatch`).
        let now = self.now;
        conn.phase = Phase::Reading;
        conn.wait = Wait::Idle;
        conn.deadline = self.settings.timeouts.deadline(Wait::Idle, now);
        if let Life::Draining { .. } = self.life {
            conn.deadline = Some(cap(conn.deadline, now + STOP_KEEPALIVE_LINGER));
        }
        let deadline = conn.deadline;
        if let Some(req) = done.req {
            conn.head.recycle(req);
        }
        // A pipelined request already read is answered before anything else.
        let step = conn.head.resume(done.leftover);
        self.set_deadline(deadline);
        // Bytes or a close may wait in the socket with no event to come for them (see
        // `Conn::recheck`): read now if more is needed. Over TLS, decrypted bytes may also wait
        // inside the stream (a pipelined request decrypted with the previous one:
        // `has_buffered_input`), and a short read never proved the socket drained, so a TLS
        // connection is always read again (one `recv` more per request, on TLS only).
        if self.on_step(token, step) {
            let recheck = done.socket_read
                || self.conns[token]
                    .as_ref()
                    .is_some_and(|c| c.recheck || c.tls != Tls::Plain);
            if recheck {
                self.read_head(token);
            }
        }
    }

    // ---- HTTP/2 -----------------------------------------------------------------------------

    /// Hands a connection to the HTTP/2 thread, with the bytes already read from it: it leaves
    /// the event loop (its slot is freed; the HTTP/2 thread counts it as open).
    fn hand_to_h2(&mut self, token: usize, prefix: Vec<u8>, upgraded: Option<Vec<u8>>) {
        let Some(server) = self.h2.as_ref().map(|h| Arc::clone(&h.server)) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(token).and_then(Option::take) else {
            return;
        };
        self.free.push(token);
        self.open -= 1;
        let Some(io) = conn.io else { return };
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&io.as_fd().as_raw_fd()));
        self.shared.release_socket(None, conn.socket);
        let incoming = Incoming {
            io,
            prefix,
            conn: conn.info,
            upgraded,
        };
        if server.serve(incoming).is_err() {
            log_error!("the HTTP/2 thread is gone: a connection was closed");
        }
    }

    /// `Upgrade: h2c` (`http2_cleartext` `upgrade` or `both`): a plain connection of a trusted
    /// peer whose request asks for it, with its whole body (if any) already read and within
    /// one frame and the first window, and nothing after it, gets `101 Switching Protocols` and
    /// goes to the HTTP/2 thread, the request becoming stream 1 (`gunicorn_serve::h2::upgrade`).
    /// Otherwise the request is served as HTTP/1.1, the upgrade ignored (RFC 7540 §3.2 allows
    /// it). True if it went.
    fn try_upgrade(&mut self, token: usize, req: &gunicorn_http::Request, after: &[u8]) -> bool {
        let Some(hub) = self.h2.as_ref().filter(|h| h.upgrade) else {
            return false;
        };
        // Within the stream's and the connection's first window (65 535 bytes, RFC 9113 §6.9.2).
        let max_body = hub.max_frame.min(hub.first_window).min(65_535);
        let max_frame = hub.max_frame;
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return false;
        };
        let whole_body =
            matches!(req.body, gunicorn_http::BodyKind::Length(n) if n as usize == after.len());
        if conn.tls != Tls::Plain
            || !whole_body
            || after.len() > max_body
            || !self.http.forwarded_allow_ips.allows(&conn.info.peer)
            || !upgrade::asks_for_h2c(req)
        {
            return false;
        }
        let Some(frames) = upgrade::request_frames(req, after, max_frame) else {
            return false;
        };
        let Some(io) = conn.io.as_mut() else {
            return false;
        };
        // 76 bytes: one non-blocking send fits in any socket buffer.
        match io.try_write(upgrade::SWITCHING_PROTOCOLS) {
            Ok(Some(n)) if n == upgrade::SWITCHING_PROTOCOLS.len() => {}
            _ => {
                self.remove(token);
                return true;
            }
        }
        self.hand_to_h2(token, Vec::new(), Some(frames));
        true
    }

    // ---- closing ----------------------------------------------------------------------------

    /// Closes a connection; with `linger`, gunicorn's graceful close: shut our side, discard
    /// what the client still sends (bounded), so unread request bytes do not turn the close
    /// into a reset that destroys the response in flight.
    fn close(&mut self, token: usize, linger: bool) {
        // A draining worker lingers too: a close with unread request bytes would be a reset
        // that destroys the response still in flight.
        if !linger || matches!(self.life, Life::Quitting { .. }) {
            self.remove(token);
            return;
        }
        let deadline = self
            .settings
            .timeouts
            .deadline(Wait::Closing, Instant::now());
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        let Some(io) = conn.io.as_mut() else { return };
        if io.shutdown_write().is_err() {
            self.remove(token);
            return;
        }
        conn.phase = Phase::Closing { drained: 0 };
        conn.wait = Wait::Closing;
        conn.deadline = deadline;
        self.set_deadline(deadline);
        self.linger(token);
    }

    fn linger(&mut self, token: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
                return;
            };
            let (Some(io), Phase::Closing { drained }) = (conn.io.as_mut(), conn.phase) else {
                return;
            };
            match io.try_read(&mut self.scratch) {
                Ok(Some(n)) if n > 0 && drained + n <= LINGER_LIMIT => {
                    conn.phase = Phase::Closing {
                        drained: drained + n,
                    };
                }
                Ok(None) => return,
                _ => {
                    self.remove(token);
                    return;
                }
            }
        }
    }

    /// Forgets a connection and closes its socket.
    fn remove(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::take) else {
            return;
        };
        if let Some(mut io) = conn.io {
            if conn.tls == Tls::Established && conn.phase == Phase::Reading {
                // A TLS connection ends with close_notify (RFC 8446 §6.1): an idle one timed
                // out, a client that closed, a stop. (A lingering close sent it already.)
                let _ = io.shutdown_write();
            }
            self.shared.release_socket(Some(io.as_fd()), conn.socket);
            // Explicitly, because a duplicate of the fd (`gunicorn.socket` kept by the app)
            // would keep the registration alive after close.
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&io.as_fd().as_raw_fd()));
        }
        self.free.push(token);
        self.open -= 1;
    }

    // ---- time and shutdown ----------------------------------------------------------------

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            if d < self.next_sweep {
                self.next_sweep = d;
            }
        }
    }

    /// Closes the waiting connections whose deadline passed (idle keep-alive past
    /// `--keep-alive`, heads slower than `--timeout`, lingering closes).
    fn sweep(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (token, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else { continue };
            match conn.deadline {
                Some(d) if d <= now => expired.push(token),
                Some(d) => next = Some(next.map_or(d, |n: Instant| n.min(d))),
                None => {}
            }
        }
        for token in expired {
            if let Some(conn) = self.conns[token].as_ref() {
                if conn.wait == Wait::Handshake {
                    handshake_failed(&conn.info, &"timed out (--timeout) mid-handshake");
                }
            }
            self.remove(token);
        }
        let floor = now + SWEEP_GRANULARITY;
        self.next_sweep = next.map_or(now + Duration::from_secs(1), |n| n.max(floor));
    }

    /// Graceful stop (TERM, HUP, TTOU, max_requests, parent gone): stop accepting first, then
    /// answer every connection already accepted (see [`Life::Draining`]).
    fn begin_drain(&mut self, now: Instant) {
        self.life = Life::Draining {
            deadline: now + self.settings.graceful_timeout,
        };
        self.stop_accepting();
        if let Some(h2) = &self.h2 {
            // GOAWAY on every HTTP/2 connection; their streams in flight finish.
            h2.server.stop(true);
        }
        let linger = now + STOP_KEEPALIVE_LINGER;
        for conn in self.conns.iter_mut().flatten() {
            if conn.phase == Phase::Reading && conn.wait == Wait::Idle {
                conn.deadline = Some(cap(conn.deadline, linger));
            }
        }
        self.set_deadline(Some(linger));
    }

    /// Quick stop (INT, QUIT): stop accepting, drop every connection waiting in the loop, let
    /// the running requests finish (see [`Life::Quitting`]). A graceful stop under way keeps its
    /// deadline.
    fn begin_quit(&mut self, now: Instant) {
        let deadline = match self.life {
            Life::Draining { deadline } => deadline,
            _ => now + self.settings.graceful_timeout,
        };
        self.life = Life::Quitting { deadline };
        self.stop_accepting();
        if let Some(h2) = &self.h2 {
            h2.server.stop(false);
        }
        let waiting: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.phase != Phase::Busy))
            .map(|(t, _)| t)
            .collect();
        for token in waiting {
            self.remove(token);
        }
    }

    /// Closes this worker's listeners (the master and the other workers keep theirs, so
    /// connections still in the backlog go to them, or to this worker's successor).
    fn stop_accepting(&mut self) {
        for (l, _) in self.listeners.drain(..) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&l.as_raw_fd()));
        }
    }
}

/// The pool threads and the main thread run the event loop through the hand-off.
impl Baton for Poller {
    fn turn(&mut self, cap: Duration) -> Turn {
        Poller::turn(self, cap)
    }
}

/// `deadline`, or `at_most` when that comes first (no deadline = `at_most`).
fn cap(deadline: Option<Instant>, at_most: Instant) -> Instant {
    deadline.map_or(at_most, |d| d.min(at_most))
}
