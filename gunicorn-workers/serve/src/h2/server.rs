//! The HTTP/2 thread: one per worker process, running a current-thread tokio runtime that
//! drives every HTTP/2 connection the worker hands it (the h2 crate does the framing, HPACK,
//! flow control and stream states). Each stream's request goes to the worker's [`Dispatch`]
//! (a thread of gthread's pool), and a task per stream moves its body and response between
//! the connection and that thread through bounded channels. No Python runs here: the
//! connection's framing never waits for the GIL or the app.
//!
//! Bounds (RFC 9113 §10.5, and the attacks of the last years): streams per connection
//! (`http2_max_concurrent_streams`), header list size (`http2_max_header_list_size`: HPACK
//! bombs and CONTINUATION floods end there), streams reset before being served (rapid reset:
//! the h2 crate's pending-reset bound, and no app call for a stream already reset), the
//! handshake and each stall of a stream's body or response window (`--timeout`), idle
//! connections (`--keep-alive`), and a graceful stop (GOAWAY, then `--graceful-timeout`).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gunicorn_core::{log_debug, Config};
use gunicorn_http::{ConnInfo, HttpConfig, ProxyMode};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::io::AsyncTransport;
use super::park::{wait_on, Park};
use super::request::{to_request, H2Head};
use super::stream::{
    split_page, BodyMsg, Dispatch, Doorbell, Opening, Page, ReplyMsg, StreamBody, StreamJob,
    StreamReply, CHANNEL_DEPTH, CONNECTION_SPECIFIC,
};
use super::upgrade::Splice;
use crate::reject;
use crate::transport::Transport;

/// The HTTP/2 settings of a worker, from gunicorn's settings.
#[derive(Debug, Clone, Copy)]
pub struct H2Settings {
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    /// None: unlimited (`http2_max_header_list_size = 0`).
    pub max_header_list_size: Option<u32>,
    /// The handshake (preface and SETTINGS), and each stall of a stream: `--timeout`.
    pub stall: Option<Duration>,
    /// A connection with no stream open this long is closed with GOAWAY: `--keep-alive`
    /// (`--timeout` when keep-alive is off, so an idle connection is never kept forever).
    pub idle: Duration,
    /// How long a graceful stop waits for streams in flight: `--graceful-timeout`.
    pub graceful: Duration,
}

impl H2Settings {
    pub fn from_config(cfg: &Config) -> H2Settings {
        let stall = (cfg.timeout > 0).then(|| Duration::from_secs(cfg.timeout));
        let idle = match (cfg.keepalive, cfg.timeout) {
            (0, 0) => Duration::from_secs(30),
            (0, t) => Duration::from_secs(t),
            (k, _) => Duration::from_secs(k),
        };
        H2Settings {
            max_concurrent_streams: cfg.http2_max_concurrent_streams.0,
            initial_window_size: cfg.http2_initial_window_size.0,
            max_frame_size: cfg.http2_max_frame_size.0,
            max_header_list_size: match cfg.http2_max_header_list_size {
                0 => None,
                n => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            },
            stall,
            idle,
            graceful: Duration::from_secs(cfg.graceful_timeout),
        }
    }
}

/// A connection for the HTTP/2 thread: TLS with ALPN `h2`, or a trusted h2c peer.
pub struct Incoming {
    pub io: Box<dyn Transport>,
    /// Bytes already read from it (the client preface, or part of it).
    pub prefix: Vec<u8>,
    pub conn: ConnInfo,
    /// For a connection upgraded from HTTP/1.1: the HEADERS frame of the request that asked
    /// for it, which becomes stream 1 ([`super::upgrade`]).
    pub upgraded: Option<Vec<u8>>,
}

enum Command {
    /// A connection, and for [`H2Server::serve_watched`] what tells its watcher it closed.
    Serve(Incoming, Option<oneshot::Sender<()>>),
    Stop {
        graceful: bool,
    },
}

/// The end of a connection handed over with [`H2Server::serve_watched`]: ready once the HTTP/2
/// thread has let go of its transport (so the worker may close the socket under it).
pub struct Closed(oneshot::Receiver<()>);

impl Closed {
    /// Waits with `park` until the connection is closed. Err when the park is interrupted.
    pub fn wait(&mut self, park: &dyn Park) -> io::Result<()> {
        // Dropped unsent (the connection task ended, however it ended): the same news.
        wait_on(&mut self.0, park).map(drop)
    }
}

/// What every connection task shares.
struct Shared {
    settings: H2Settings,
    /// The worker's HTTP settings with the PROXY protocol off (see `to_request`).
    http: Arc<HttpConfig>,
    dispatch: Arc<dyn Dispatch>,
    open: Arc<AtomicUsize>,
    doorbell: Arc<Doorbell>,
}

/// The handle of a worker's HTTP/2 thread.
pub struct H2Server {
    tx: mpsc::UnboundedSender<Command>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    open: Arc<AtomicUsize>,
}

impl H2Server {
    /// Starts the thread. `http` is the worker's HTTP configuration.
    pub fn start(
        settings: H2Settings,
        http: &HttpConfig,
        dispatch: Arc<dyn Dispatch>,
    ) -> io::Result<H2Server> {
        // Streams queued in one turn of the runtime are handed over together, when it is about
        // to wait; the responses that came meanwhile are delivered before it waits.
        let doorbell = Arc::new(Doorbell::default());
        let (flusher, parking, unparking) = (
            Arc::clone(&dispatch),
            Arc::clone(&doorbell),
            Arc::clone(&doorbell),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .on_thread_park(move || {
                flusher.flush();
                parking.before_park();
            })
            .on_thread_unpark(move || unparking.after_unpark())
            .build()?;
        let mut http = http.clone();
        http.proxy_protocol = ProxyMode::Off;
        let open = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            settings,
            http: Arc::new(http),
            dispatch,
            open: Arc::clone(&open),
            doorbell,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("http2".into())
            .spawn(move || runtime.block_on(run(shared, rx)))?;
        Ok(H2Server {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
            open,
        })
    }

    /// Hands a connection over; Err gives it back when the thread has stopped.
    pub fn serve(&self, incoming: Incoming) -> Result<(), Box<Incoming>> {
        self.send_serve(incoming, None)
    }

    /// Hands a connection over, as [`H2Server::serve`], with a [`Closed`] that becomes ready
    /// when the thread is done with its transport: for a worker whose connection is a socket
    /// object it must close itself afterwards (a greenlet worker's Python socket).
    pub fn serve_watched(&self, incoming: Incoming) -> Result<Closed, Box<Incoming>> {
        let (tx, rx) = oneshot::channel();
        self.send_serve(incoming, Some(tx))?;
        Ok(Closed(rx))
    }

    fn send_serve(
        &self,
        incoming: Incoming,
        closed: Option<oneshot::Sender<()>>,
    ) -> Result<(), Box<Incoming>> {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.tx.send(Command::Serve(incoming, closed)).map_err(|e| {
            self.open.fetch_sub(1, Ordering::AcqRel);
            match e.0 {
                Command::Serve(incoming, _) => Box::new(incoming),
                Command::Stop { .. } => unreachable!("sent a Serve"),
            }
        })
    }

    /// HTTP/2 connections open now (they count towards `worker_connections`).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Stops: graceful sends GOAWAY and lets the streams in flight finish (up to
    /// `--graceful-timeout`); otherwise every connection is closed at once.
    pub fn stop(&self, graceful: bool) {
        let _ = self.tx.send(Command::Stop { graceful });
    }

    /// Waits for the thread to end (after [`H2Server::stop`]).
    pub fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The thread's loop: a task per connection. A graceful stop (GOAWAY everywhere) still takes
/// the connections the event loop hands over meanwhile (accepted before the stop, their
/// preface read after it): their first streams are served, then they get GOAWAY too. It ends
/// at a quick stop, or when the graceful one runs out of time (`--graceful-timeout`).
async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let mut conns = JoinSet::new();
    let delivering = tokio::spawn(Arc::clone(&shared.doorbell).deliver());
    let mut stop_at: Option<tokio::time::Instant> = None;
    loop {
        let deadline = stop_at.unwrap_or_else(far_future);
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Serve(incoming, closed)) => {
                    let conn = serve_connection(incoming, Arc::clone(&shared), stop_rx.clone());
                    conns.spawn(Watched { conn: Box::pin(conn), _closed: closed });
                }
                Some(Command::Stop { graceful: true }) if stop_at.is_none() => {
                    let _ = stop_tx.send(Stop::Graceful);
                    stop_at = Some(tokio::time::Instant::now() + shared.settings.graceful);
                }
                Some(Command::Stop { graceful: true }) => {}
                Some(Command::Stop { graceful: false }) | None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = tokio::time::sleep_until(deadline), if stop_at.is_some() => break,
        }
    }
    let _ = stop_tx.send(Stop::Now);
    // Connections closing now get a moment to send their GOAWAY.
    let _ = tokio::time::timeout(Duration::from_millis(100), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    delivering.abort();
}

/// A connection's future with what tells its watcher it closed: fields drop in their order, so
/// the sender goes (and the watcher learns) only after the connection's transport is dropped,
/// whether the future ended or was aborted.
struct Watched<F> {
    conn: std::pin::Pin<Box<F>>,
    _closed: Option<oneshot::Sender<()>>,
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        self.conn.as_mut().poll(cx)
    }
}

/// A time that never comes, for a `select!` branch that is disabled.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86400 * 365)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    Graceful,
    Now,
}

/// Decrements the open-connection count when a connection task ends, however it ends.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `fut`, bounded by `limit` when there is one: None when it ran out.
async fn within<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// One connection: the handshake, then a task per stream, until the client or a stop ends it.
async fn serve_connection(
    incoming: Incoming,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Stop>,
) {
    let _open = OpenGuard(Arc::clone(&shared.open));
    let s = shared.settings;
    let conn_info = Arc::new(incoming.conn);
    let splice = incoming.upgraded.map(Splice::new);
    let io = match AsyncTransport::new(incoming.io, incoming.prefix, splice) {
        Ok(io) => io,
        Err(e) => {
            log_debug!("HTTP/2 connection not served: {e}");
            return;
        }
    };
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(s.max_concurrent_streams)
        .initial_window_size(s.initial_window_size)
        .max_frame_size(s.max_frame_size);
    if let Some(n) = s.max_header_list_size {
        builder.max_header_list_size(n);
    }
    let mut conn = match within(s.stall, builder.handshake::<_, Bytes>(io)).await {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => {
            log_debug!("HTTP/2 handshake failed: {e}");
            return;
        }
        None => {
            log_debug!("HTTP/2 handshake timed out");
            return;
        }
    };
    // How far this connection is in stopping: `Graceful` once it sent GOAWAY (a stop, or idle
    // past `--keep-alive`), `Now` once it is being closed.
    let mut state = Stop::Running;
    if *stop.borrow() != Stop::Running {
        state = Stop::Graceful;
        conn.graceful_shutdown();
    }
    let mut last_active = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    last_active = Instant::now();
                    tokio::spawn(serve_stream(req, respond, Arc::clone(&shared), Arc::clone(&conn_info)));
                }
                Some(Err(e)) => {
                    log_debug!("HTTP/2 connection error: {e}");
                    break;
                }
                None => break,
            },
            changed = stop.changed(), if state != Stop::Now => {
                let asked = if changed.is_ok() { *stop.borrow() } else { Stop::Now };
                match (asked, state) {
                    (Stop::Graceful, Stop::Running) => {
                        state = Stop::Graceful;
                        conn.graceful_shutdown();
                    }
                    (Stop::Now, _) => {
                        state = Stop::Now;
                        conn.abrupt_shutdown(Reason::NO_ERROR);
                    }
                    _ => {}
                }
            },
            _ = tick.tick(), if state == Stop::Running => {
                if conn.has_streams() {
                    last_active = Instant::now();
                } else if last_active.elapsed() >= s.idle {
                    state = Stop::Graceful;
                    conn.graceful_shutdown();
                }
            },
        }
    }
}

/// Where a stream's response is.
enum Out {
    /// Nothing sent but informational responses.
    Head(SendResponse<Bytes>),
    /// The head is out; body DATA follow.
    Body(SendStream<Bytes>),
    /// The response ended (or the stream was reset).
    Done,
}

impl Out {
    fn poll_reset(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<Reason, h2::Error>> {
        match self {
            Out::Head(r) => r.poll_reset(cx),
            Out::Body(s) => s.poll_reset(cx),
            Out::Done => Poll::Pending,
        }
    }

    fn reset(&mut self, reason: Reason) {
        match self {
            Out::Head(r) => r.send_reset(reason),
            Out::Body(s) => s.send_reset(reason),
            Out::Done => {}
        }
        *self = Out::Done;
    }
}

/// One stream: its head becomes a request for the worker, its body goes to the worker as the
/// client sends it, and the worker's response goes out with flow control.
async fn serve_stream(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
) {
    let (parts, recv) = req.into_parts();
    let request = match to_request(&H2Head::of(&parts), &conn, &shared.http) {
        Ok(r) => r,
        Err(e) => {
            // The error page, sent as a whole response would be.
            let Some(page) = reject::request_error(&conn, &e) else {
                respond.send_reset(Reason::CANCEL);
                return;
            };
            let mut out = Out::Head(respond);
            let sent = match split_page(&page) {
                Some(Page {
                    status,
                    fields,
                    body,
                }) => {
                    let whole = ReplyMsg::Whole {
                        status,
                        fields,
                        body,
                    };
                    let is_head = parts.method == http::Method::HEAD;
                    send_reply(&mut out, whole, is_head, shared.settings.stall).await
                }
                None => Err(SendError::Closed),
            };
            if sent.is_err() {
                out.reset(Reason::INTERNAL_ERROR);
            }
            return;
        }
    };
    drop(parts);
    let stall = shared.settings.stall;
    let is_head = request.method.eq_ignore_ascii_case("HEAD");
    // A request whose head ended the stream (GET) has no body to move: no channel for it.
    let (body, body_pump) = if recv.is_end_stream() {
        (StreamBody::empty(), None)
    } else {
        let (body_tx, body_rx) = mpsc::channel(CHANNEL_DEPTH);
        (
            StreamBody::new(body_rx),
            Some(pump_body(recv, body_tx, stall)),
        )
    };
    let (first_tx, mut first_rx) = oneshot::channel::<Opening>();
    let mut rest: Option<mpsc::Receiver<ReplyMsg>> = None;
    let mut opened = false;
    let cancelled = Arc::new(AtomicBool::new(false));
    shared.dispatch.dispatch(StreamJob {
        req: request,
        conn: (*conn).clone(),
        body,
        reply: StreamReply::new(
            first_tx,
            Arc::clone(&cancelled),
            Arc::clone(&shared.doorbell),
        ),
    });
    let mut out = Out::Head(respond);
    let mut body_done = body_pump.is_none();
    let body = async move {
        if let Some(pump) = body_pump {
            pump.await;
        }
    };
    tokio::pin!(body);
    loop {
        tokio::select! {
            biased;
            reset = std::future::poll_fn(|cx| out.poll_reset(cx)) => {
                if let Ok(reason) = reset {
                    log_debug!("HTTP/2 stream reset by the client: {reason:?}");
                }
                cancelled.store(true, Ordering::Release);
                break;
            },
            msg = next_message(&mut first_rx, &mut opened, &mut rest) => match msg {
                Some(msg) => {
                    if let Err(e) = send_reply(&mut out, msg, is_head, stall).await {
                        log_debug!("HTTP/2 response not sent: {e}");
                        cancelled.store(true, Ordering::Release);
                        out.reset(Reason::CANCEL);
                        break;
                    }
                    if matches!(out, Out::Done) {
                        break;
                    }
                }
                // The worker let go of the stream without ending its response.
                None => {
                    out.reset(Reason::INTERNAL_ERROR);
                    break;
                }
            },
            () = &mut body, if !body_done => body_done = true,
        }
    }
}

/// The next message of a response: its first from the oneshot channel (which brings the
/// channel of the others, if any), then the others. None when the worker let go of the stream.
async fn next_message(
    first: &mut oneshot::Receiver<Opening>,
    opened: &mut bool,
    rest: &mut Option<mpsc::Receiver<ReplyMsg>>,
) -> Option<ReplyMsg> {
    if !*opened {
        let opening = first.await;
        *opened = true;
        let Opening { msg, rest: more } = opening.ok()?;
        *rest = more;
        return Some(msg);
    }
    match rest {
        Some(rx) => rx.recv().await,
        None => None,
    }
}

/// Why a response could not go out.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    H2(#[from] h2::Error),
    #[error("invalid response head: {0}")]
    Head(#[from] http::Error),
    #[error("the client's flow-control window stayed closed past the timeout")]
    Stalled,
    #[error("the stream closed")]
    Closed,
    #[error("a response after the response ended")]
    Late,
}

/// Sends one message of the worker's response.
async fn send_reply(
    out: &mut Out,
    msg: ReplyMsg,
    is_head: bool,
    stall: Option<Duration>,
) -> Result<(), SendError> {
    match msg {
        ReplyMsg::Informational(status, fields) => {
            let Out::Head(respond) = out else {
                return Err(SendError::Late);
            };
            respond.send_informational(response(status, &fields)?)?;
        }
        ReplyMsg::Head { status, fields } => {
            let Out::Head(respond) = out else {
                return Err(SendError::Late);
            };
            let stream = respond.send_response(response(status, &fields)?, is_head)?;
            *out = if is_head {
                Out::Done
            } else {
                Out::Body(stream)
            };
        }
        ReplyMsg::Whole {
            status,
            fields,
            body,
        } => {
            let Out::Head(respond) = out else {
                return Err(SendError::Late);
            };
            let end = body.is_empty() || is_head;
            let mut stream = respond.send_response(response(status, &fields)?, end)?;
            *out = Out::Done;
            if !end {
                send_data(&mut stream, body, true, stall).await?;
            }
        }
        ReplyMsg::Data { data, end } => {
            let Out::Body(stream) = out else {
                return Err(SendError::Late);
            };
            send_data(stream, data, end, stall).await?;
            if end {
                *out = Out::Done;
            }
        }
    }
    Ok(())
}

/// The response head: `:status`, then `server` and `date` as on HTTP/1, then the app's fields
/// with lower-case names (RFC 9113 §8.2.1), connection-specific ones left out (§8.2.2).
fn response(status: u16, fields: &[(String, String)]) -> Result<http::Response<()>, http::Error> {
    use http::header::{HeaderName, HeaderValue};
    let mut resp = http::Response::new(());
    *resp.status_mut() = http::StatusCode::from_u16(status)?;
    let headers = resp.headers_mut();
    headers.reserve(fields.len() + 2);
    headers.append(http::header::SERVER, HeaderValue::from_static("gunicorn"));
    headers.append(http::header::DATE, date_value());
    for (name, value) in fields {
        // Lower-cased by the parse (RFC 9113 §8.2.1).
        let name = HeaderName::from_bytes(name.as_bytes())?;
        if CONNECTION_SPECIFIC.contains(&name.as_str()) {
            continue;
        }
        // Values are latin-1 text already validated as field values (no CR, LF, NUL).
        let value = if value.is_ascii() {
            HeaderValue::from_str(value)?
        } else {
            let bytes: Vec<u8> = value
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect();
            HeaderValue::from_bytes(&bytes)?
        };
        headers.append(name, value);
    }
    Ok(resp)
}

/// The `date` field's value, made once a second (only the HTTP/2 thread calls it).
fn date_value() -> http::HeaderValue {
    use std::cell::RefCell;
    thread_local! {
        static DATE: RefCell<Option<(String, http::HeaderValue)>> = const { RefCell::new(None) };
    }
    let now = gunicorn_http::http_date();
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        match &*d {
            Some((text, value)) if *text == now => value.clone(),
            _ => {
                let value = http::HeaderValue::from_str(&now)
                    .unwrap_or_else(|_| http::HeaderValue::from_static(""));
                *d = Some((now, value.clone()));
                value
            }
        }
    })
}

/// Sends `data` as the client's window allows, waiting at most `stall` for each opening.
async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
    stall: Option<Duration>,
) -> Result<(), SendError> {
    if data.is_empty() {
        if end {
            stream.send_data(Bytes::new(), true)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let mut room = stream.capacity();
        if room == 0 {
            room = match within(stall, std::future::poll_fn(|cx| stream.poll_capacity(cx))).await {
                None => return Err(SendError::Stalled),
                Some(None) => return Err(SendError::Closed),
                Some(Some(r)) => r?,
            };
            if room == 0 {
                continue;
            }
        }
        let piece = data.split_to(room.min(data.len()));
        stream.send_data(piece, end && data.is_empty())?;
    }
    Ok(())
}

/// Moves the request body from the client to the worker, releasing flow-control window as the
/// worker takes it (so a client can be at most a window and a channel ahead of the app). A
/// client that sends nothing for `stall` fails the body.
async fn pump_body(mut recv: RecvStream, tx: mpsc::Sender<BodyMsg>, stall: Option<Duration>) {
    loop {
        let msg = match within(stall, recv.data()).await {
            None => BodyMsg::Failed(
                io::ErrorKind::TimedOut,
                "the client stalled sending the request body",
            ),
            Some(None) => BodyMsg::End,
            Some(Some(Err(e))) => {
                log_debug!("HTTP/2 request body failed: {e}");
                BodyMsg::Failed(
                    io::ErrorKind::ConnectionAborted,
                    "the HTTP/2 stream was reset",
                )
            }
            Some(Some(Ok(data))) => {
                let n = data.len();
                if tx.send(BodyMsg::Data(data)).await.is_err() {
                    return;
                }
                let _ = recv.flow_control().release_capacity(n);
                continue;
            }
        };
        let _ = tx.send(msg).await;
        return;
    }
}
