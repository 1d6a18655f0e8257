//! The `--threads` pool: threads that run requests through the WSGI bridge.
//!
//! Each pool thread attaches to Python once for its whole life and releases the GIL whenever
//! it waits (for a job, or on the socket inside the bridge), so a GIL hand-off costs a release
//! and a re-acquire, never a thread-state creation. Finishing a request (draining an unread
//! body, handing the socket back) and waiting for the next job happen in a single release.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gunicorn_core::log_error;
use gunicorn_http::{ConnInfo, Environ, HttpConfig, Request};
use gunicorn_python::wsgi::{Bridge, Exchange, Transport};
use pyo3::Python;

use crate::conn::{DRAIN_LIMIT, DRAIN_TIME};
use crate::socket::{set_io_limit, IoLimit};

/// A request whose head was read and parsed by the poller.
pub struct Job {
    /// The connection's slot in the poller.
    pub token: usize,
    pub io: Box<dyn Transport>,
    pub req: Box<Request>,
    pub conn: ConnInfo,
    pub environ: Environ,
    /// Bytes read past the head (body start, pipelined requests).
    pub after_head: Vec<u8>,
    /// The response must say `Connection: close` and the connection closes after it.
    pub force_close: bool,
}

/// A connection coming back from a pool thread.
pub struct Done {
    pub token: usize,
    /// None when the socket could not be recovered (closed).
    pub io: Option<Box<dyn Transport>>,
    /// What was read past this request: the next pipelined request(s).
    pub leftover: Vec<u8>,
    /// The connection may carry another request.
    pub keep_alive: bool,
    /// Close with a lingering close (unread request bytes may remain).
    pub linger: bool,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// What the poller and the pool threads share.
pub struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    done: Mutex<Vec<Done>>,
    waker: mio::Waker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(waker: mio::Waker) -> Shared {
        Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            job_ready: Condvar::new(),
            done: Mutex::new(Vec::new()),
            waker,
        }
    }

    /// Queues a request for the next free pool thread.
    pub fn submit(&self, job: Job) {
        lock(&self.queue).jobs.push_back(job);
        self.job_ready.notify_one();
    }

    /// Lets the pool threads exit once the queue is empty.
    pub fn close(&self) {
        lock(&self.queue).closed = true;
        self.job_ready.notify_all();
    }

    /// Connections handed back since the last call (the poller's side).
    pub fn take_done(&self, into: &mut Vec<Done>) {
        into.append(&mut lock(&self.done));
    }

    fn next_job(&self) -> Option<Job> {
        let mut q = lock(&self.queue);
        loop {
            if let Some(job) = q.jobs.pop_front() {
                return Some(job);
            }
            if q.closed {
                return None;
            }
            q = self.job_ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn hand_back(&self, done: Done) {
        lock(&self.done).push(done);
        if let Err(e) = self.waker.wake() {
            log_error!("cannot wake the poller: {e}");
        }
    }
}

/// A request that ran, waiting to be finished without the GIL.
struct Ran {
    token: usize,
    exchange: Exchange,
    reusable: bool,
    force_close: bool,
    has_body: bool,
}

/// Starts `threads` pool threads.
pub fn start(
    threads: usize,
    shared: Arc<Shared>,
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
    shared: &Shared,
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
        let mut ran: Option<Ran> = None;
        loop {
            let next = py.detach(|| {
                if let Some(r) = ran.take() {
                    shared.hand_back(finish(r, io_limit));
                }
                shared.next_job()
            });
            let Some(job) = next else { return };
            ran = Some(run(py, bridge, http, job));
        }
    });
}

/// Runs the app for one request (with the GIL).
fn run(py: Python<'_>, bridge: &Bridge, http: &Arc<HttpConfig>, job: Job) -> Ran {
    let exchange = Exchange::new(
        job.io,
        job.after_head,
        &job.req,
        Arc::clone(http),
        job.force_close,
    );
    let outcome = bridge.handle(py, &job.req, &job.conn, job.environ, &exchange);
    Ran {
        token: job.token,
        exchange,
        reusable: outcome.reusable,
        force_close: job.force_close,
        has_body: !matches!(job.req.body, gunicorn_http::BodyKind::Length(0)),
    }
}

/// Decides the connection's fate after its response (without the GIL): a reusable response
/// keeps it if the rest of the request body can be drained (bounded in bytes and time).
fn finish(r: Ran, io_limit: IoLimit) -> Done {
    let mut keep_alive = r.reusable && !r.force_close;
    if keep_alive && r.has_body {
        set_io_limit(IoLimit {
            per_wait: None,
            deadline: Some(Instant::now() + DRAIN_TIME),
        });
        keep_alive = r.exchange.drain_body(DRAIN_LIMIT);
        set_io_limit(io_limit);
    }
    match r.exchange.take_transport() {
        Some((io, leftover)) => Done {
            token: r.token,
            io: Some(io),
            linger: !keep_alive && (r.has_body || !leftover.is_empty()),
            leftover,
            keep_alive,
        },
        None => Done {
            token: r.token,
            io: None,
            leftover: Vec::new(),
            keep_alive: false,
            linger: false,
        },
    }
}
