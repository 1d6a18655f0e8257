//! The `--threads` pool: threads that run requests through the WSGI bridge.
//!
//! Each pool thread attaches to Python once for its whole life and releases the GIL whenever
//! it waits (for a job, or on the socket inside the bridge), so a GIL hand-off costs a release
//! and a re-acquire, never a thread-state creation. Finishing a request (draining an unread
//! body, handing the socket back) and waiting for the next job happen in a single release.
//!
//! How a thread gets its next request (a queued one, or by running the event loop until one is
//! complete) is the hand-off's ([`Shared::next_job`]); this file runs the request and decides
//! what happens to its connection after the response.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gunicorn_http::HttpConfig;
use gunicorn_python::wsgi::{Bridge, Exchange, Outcome};
use gunicorn_serve::h2::StreamJob;
use mio::unix::SourceFd;
use pyo3::prelude::*;

use crate::conn::{DRAIN_LIMIT, DRAIN_TIME};
use crate::handoff::{Shared, RESCUE_DELAY};
use crate::job::{close_socket, Done, Job, PySocket, Work};
use crate::poller::Poller;
use crate::socket::{self, set_io_limit, IoLimit};

/// At most this many responses of quick requests leave together.
///
/// Under load, the event loop's turn finds several requests at once and queues them. Writing
/// each response as soon as its app returns wakes the client for each one, and waking a thread
/// that sleeps on another core costs the sender an inter-processor interrupt: measured on a
/// loopback benchmark in a VM (Flask, ~70 µs per request, wrk on the other core), about 13 µs
/// of the server's CPU per wake-up, one per response. So a pool thread that finds requests
/// queued behind the one it runs holds the small complete response back
/// (`Exchange::hold_end`), runs the next ones, and sends up to MAX_HELD responses back to back
/// (bjoern does the same by writing from its event loop's next turn). With no request queued
/// nothing is held: an idle server answers at once. Should a request run meanwhile be slow,
/// the main thread sends the held responses after `RESCUE_DELAY` (`Shared::held`).
const MAX_HELD: usize = 8;

/// A request that ran, waiting to be finished without the GIL.
struct Ran {
    token: usize,
    /// Given back to the connection with its socket (`Done::req`).
    req: Option<Box<gunicorn_http::Request>>,
    exchange: Exchange,
    socket: Option<PySocket>,
    reusable: bool,
    force_close: bool,
    has_body: bool,
}

/// Starts `threads` pool threads.
pub fn start(
    threads: usize,
    shared: Arc<Shared<Poller>>,
    bridge: Arc<Bridge>,
    http: Arc<HttpConfig>,
    io_timeout: Option<Duration>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    (0..threads)
        .map(|i| {
            let shared = Arc::clone(&shared);
            let bridge = Arc::clone(&bridge);
            let http = Arc::clone(&http);
            std::thread::Builder::new()
                .name(format!("gthread-{i}"))
                .spawn(move || pool_thread(&shared, &bridge, &http, io_timeout))
        })
        .collect()
}

fn pool_thread(
    shared: &Shared<Poller>,
    bridge: &Bridge,
    http: &Arc<HttpConfig>,
    io_timeout: Option<Duration>,
) {
    let io_limit = IoLimit {
        per_wait: io_timeout,
        deadline: None,
    };
    set_io_limit(io_limit);
    Python::attach(|py| {
        // sys.settrace is per thread: --spew traces the pool threads too.
        gunicorn_python::spew::install(py);
        let mut ran: Option<(Ran, Instant)> = None;
        // Requests that ran, their responses held back (see MAX_HELD).
        let mut held: Vec<Ran> = Vec::with_capacity(MAX_HELD);
        // Their connections, handed back to the event loop together (one lock, at most one
        // wake-up of the poller, for the whole batch), unless a send had to wait for its
        // client: then those finished so far go back at once, not after the wait.
        let mut done: Vec<Done> = Vec::with_capacity(MAX_HELD);
        loop {
            let next = py.detach(|| {
                shared.unhold_all(held.iter().map(|r| &r.exchange));
                for r in held.drain(..) {
                    done.push(finish(shared, r, io_limit));
                    if socket::waited() {
                        shared.hand_back_all(&mut done);
                    }
                }
                let finished = ran.take().map(|(r, started)| {
                    done.push(finish(shared, r, io_limit));
                    socket::waited() || started.elapsed() >= RESCUE_DELAY
                });
                shared.hand_back_all(&mut done);
                shared.next_job(finished)
            });
            let Some((work, hold)) = next else { return };
            socket::clear_waited();
            let mut started = Instant::now();
            match work {
                Work::Request(job) => {
                    // While requests wait in the queue, run them before sending this one's
                    // small complete response, up to MAX_HELD of them.
                    let mut r = run(py, shared, bridge, http, job, hold);
                    while hold && held.len() + 1 < MAX_HELD {
                        let Some(Work::Request(job)) = shared.take_queued(&r.exchange) else {
                            break;
                        };
                        held.push(r);
                        started = Instant::now();
                        r = run(py, shared, bridge, http, job, true);
                    }
                    ran = Some((r, started));
                }
                Work::Stream(job) => run_stream(py, shared, bridge, http, job),
            }
        }
    });
}

/// Runs the app for one request (with the GIL).
fn run(
    py: Python<'_>,
    shared: &Shared<Poller>,
    bridge: &Bridge,
    http: &Arc<HttpConfig>,
    job: Job,
    hold: bool,
) -> Ran {
    shared.collect(py);
    // One `gunicorn.socket` per connection, as gunicorn's gthread: made for its first request
    // (and again if the app closed it), saving a dup, a getsockname and a close per request.
    let socket = job
        .socket
        .filter(|s| is_open(py, s))
        .or_else(|| bridge.connection_socket(py, job.io.as_fd(), &job.conn.local));
    let exchange = Exchange::new(
        job.io,
        job.after_head,
        &job.req,
        Arc::clone(http),
        job.force_close,
    );
    if let Some(s) = &socket {
        exchange.set_client_socket(s.clone_ref(py));
    }
    if hold {
        exchange.hold_end();
    }
    // The environ goes straight from the parsed request into the dict (`for_each_environ`).
    let handled =
        bridge.handle_request(py, &job.req, &job.conn, job.proxy.as_ref(), http, &exchange);
    let outcome = handled.unwrap_or_else(|e| {
        // No environ for this request (a path outside SCRIPT_NAME): the app never ran.
        if let Some(page) = gunicorn_serve::reject::request_error(&job.conn, &e) {
            exchange.try_send_error_page(&page);
        }
        Outcome {
            status: Some(e.status()),
            body_bytes: 0,
            reusable: false,
        }
    });
    // Dropped here, with the GIL (see `Exchange::take_client_socket`).
    drop(exchange.take_client_socket());
    let mut socket = socket;
    if !outcome.reusable || job.force_close {
        // The connection closes after this response: close the duplicate now, with the GIL.
        if let Some(s) = socket.take() {
            close_socket(py, s);
        }
    }
    let has_body = !matches!(job.req.body, gunicorn_http::BodyKind::Length(0));
    Ran {
        token: job.token,
        req: Some(job.req),
        exchange,
        socket,
        reusable: outcome.reusable,
        force_close: job.force_close,
        has_body,
    }
}

/// Runs the app for one HTTP/2 stream's request (with the GIL). Its connection stays with the
/// HTTP/2 thread: nothing goes back to the event loop. A stream the client reset while it
/// waited in the queue is skipped, not run for nobody (rapid reset, CVE-2023-44487).
fn run_stream(
    py: Python<'_>,
    shared: &Shared<Poller>,
    bridge: &Bridge,
    http: &Arc<HttpConfig>,
    job: StreamJob,
) {
    if job.reply.is_cancelled() {
        return;
    }
    shared.collect(py);
    let StreamJob {
        req,
        conn,
        body,
        reply,
    } = job;
    let exchange = Exchange::for_stream(body, reply, &req, Arc::clone(http));
    if let Err(e) = bridge.handle_request(py, &req, &conn, None, http, &exchange) {
        // No environ for this request (a path outside SCRIPT_NAME): the app never ran.
        if let Some(page) = gunicorn_serve::reject::request_error(&conn, &e) {
            py.detach(|| exchange.try_send_error_page(&page));
        }
    }
}

/// Decides the connection's fate after its response (without the GIL): a reusable response
/// keeps it if the rest of the request body can be drained (bounded in bytes and time).
fn finish(shared: &Shared<Poller>, mut r: Ran, io_limit: IoLimit) -> Done {
    let done = settle(shared, &mut r, io_limit);
    // The exchange's state serves this thread's next request.
    r.exchange.recycle();
    done
}

/// [`finish`] but for the exchange, which the caller still has.
fn settle(shared: &Shared<Poller>, r: &mut Ran, io_limit: IoLimit) -> Done {
    let sent = r.exchange.send_held().is_ok();
    let mut keep_alive = sent && r.reusable && !r.force_close;
    if keep_alive && r.has_body {
        set_io_limit(IoLimit {
            per_wait: None,
            deadline: Some(Instant::now() + DRAIN_TIME),
        });
        keep_alive = r.exchange.drain_body(DRAIN_LIMIT);
        set_io_limit(io_limit);
    }
    match r.exchange.take_transport() {
        Some((mut io, leftover)) => {
            let linger = !keep_alive && (r.has_body || !leftover.is_empty());
            if !keep_alive && !linger {
                // A plain close is done here rather than in the poller: no wake-up of the
                // poller is needed for it (see `Shared::hand_back_all`). Deregistered explicitly
                // in case the app kept a duplicate of the socket. Over TLS the response ends
                // with close_notify first (RFC 8446 §6.1), so the client reads a clean end.
                if !io.passthrough() {
                    let _ = io.shutdown_write();
                }
                let _ = shared
                    .registry
                    .deregister(&mut SourceFd(&io.as_fd().as_raw_fd()));
                shared.release_socket(Some(io.as_fd()), r.socket.take());
                drop(io);
                return Done::closed(r.token);
            }
            Done {
                token: r.token,
                req: r.req.take(),
                io: Some(io),
                socket: r.socket.take(),
                linger,
                leftover,
                keep_alive,
                socket_read: r.has_body,
            }
        }
        None => {
            shared.release_socket(None, r.socket.take());
            Done::closed(r.token)
        }
    }
}

/// Whether the app left the connection's `gunicorn.socket` open (`fileno()` is -1 once closed).
fn is_open(py: Python<'_>, socket: &PySocket) -> bool {
    socket
        .bind(py)
        .call_method0(pyo3::intern!(py, "fileno"))
        .and_then(|n| n.extract::<i64>())
        .is_ok_and(|n| n >= 0)
}
