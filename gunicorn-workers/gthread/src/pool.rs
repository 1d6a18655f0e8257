//! The `--threads` pool: threads that run requests through the WSGI bridge.
//!
//! Each pool thread attaches to Python once for its whole life and releases the GIL whenever
//! it waits (for a job, or on the socket inside the bridge), so a GIL hand-off costs a release
//! and a re-acquire, never a thread-state creation. Finishing a request (draining an unread
//! body, handing the socket back) and waiting for the next job happen in a single release.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gunicorn_core::log_error;
use gunicorn_http::{ConnInfo, HttpConfig, ProxyInfo, Request};
use gunicorn_python::wsgi::{Bridge, Exchange, Outcome};
use gunicorn_serve::Transport;
use mio::unix::SourceFd;
use pyo3::prelude::*;

use crate::conn::{DRAIN_LIMIT, DRAIN_TIME};
use crate::poller::{Poller, Turn};
use crate::socket::{self, set_io_limit, IoLimit};

/// A Python `socket.socket` on a duplicate of a connection's descriptor.
pub type PySocket = Py<PyAny>;

/// A request whose head was read and parsed by the poller.
pub struct Job {
    /// The connection's slot in the poller.
    pub token: usize,
    pub io: Box<dyn Transport>,
    pub req: Box<Request>,
    pub conn: ConnInfo,
    /// What the connection's PROXY header said, if it had one.
    pub proxy: Option<ProxyInfo>,
    /// The connection's `gunicorn.socket`, once its first request made it.
    pub socket: Option<PySocket>,
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
    /// The connection's `gunicorn.socket` (None once closed).
    pub socket: Option<PySocket>,
    /// What was read past this request: the next pipelined request(s).
    pub leftover: Vec<u8>,
    /// The connection may carry another request.
    pub keep_alive: bool,
    /// Close with a lingering close (unread request bytes may remain).
    pub linger: bool,
    /// The pool thread read from the socket (a request body): it may hold bytes no readiness
    /// event will announce.
    pub socket_read: bool,
}

impl Done {
    /// The connection is closed already: only its slot is left to free.
    fn closed(token: usize) -> Done {
        Done {
            token,
            io: None,
            socket: None,
            leftover: Vec::new(),
            keep_alive: false,
            linger: false,
            socket_read: false,
        }
    }
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
    /// Pool threads holding a job (running it, or finishing it and about to take the next).
    busy: usize,
    /// Pool threads asleep waiting for a job.
    idle: usize,
    /// When the queue last made progress (a job taken, or the first job queued).
    since: Option<Instant>,
    /// The event loop, while no thread runs it (see [`Shared::next_job`]).
    baton: Option<Box<Poller>>,
    /// When the threads last showed progress: the baton put down, or a queued job taken.
    progress: Instant,
    /// The main thread holds the baton (a rescue, see [`Shared::main_wait`]).
    main_leads: bool,
    /// The main thread waits without a short timeout and must be told when the baton is put
    /// down.
    main_dozing: bool,
    /// The event loop said the worker stops.
    finished: bool,
    /// The last request finished was slow: it waited for its client (an upload) or ran for
    /// [`RESCUE_DELAY`] (a blocking app). Then the main thread, once it took the event loop
    /// up, keeps it, as a dedicated poller handing requests to the pool: passing the baton
    /// back for each such request would cost more hand-offs than it saves.
    slow: bool,
}

/// A queued job waits this long for a busy thread before an idle one is woken for it.
///
/// Only one thread runs Python at a time: waking a second thread for every request makes it
/// queue on the GIL behind the first, and each hand-off costs two context switches (the
/// profile of a hello-world app showed a quarter of the worker's time in the scheduler). So a
/// busy thread takes the next job itself right after its response, and idle threads are woken
/// only when no thread is busy or the queue stalls (the busy ones are blocked: sleeping,
/// waiting on a socket, or on a lock), which keeps `--threads` parallelism for such apps.
const WAKE_DELAY: Duration = Duration::from_millis(1);

/// The event loop may lie unused this long (its last leader runs a request) before the main
/// thread takes it up, so that accepting, reading other clients and the deadlines go on while
/// a slow request runs.
pub const RESCUE_DELAY: Duration = Duration::from_millis(1);

/// What the poller and the pool threads share.
pub struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    /// Wakes the main thread (see [`Shared::main_wait`]).
    main_ready: Condvar,
    done: Mutex<Vec<Done>>,
    /// Connections in `done` (changed under its lock).
    done_count: AtomicUsize,
    /// The poller is in (or about to enter) `epoll_wait`: a hand-back must wake it.
    poller_sleeping: AtomicBool,
    waker: mio::Waker,
    /// For the pool threads' plain closes.
    registry: mio::Registry,
    /// `gunicorn.socket` objects of closed connections, to close with the GIL (see
    /// [`Shared::release_socket`]).
    graveyard: Mutex<Vec<PySocket>>,
    graveyard_len: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(waker: mio::Waker, registry: mio::Registry) -> Shared {
        Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
                busy: 0,
                idle: 0,
                since: None,
                baton: None,
                progress: Instant::now(),
                main_leads: false,
                main_dozing: false,
                finished: false,
                slow: false,
            }),
            job_ready: Condvar::new(),
            main_ready: Condvar::new(),
            done: Mutex::new(Vec::new()),
            done_count: AtomicUsize::new(0),
            poller_sleeping: AtomicBool::new(false),
            waker,
            registry,
            graveyard: Mutex::new(Vec::new()),
            graveyard_len: AtomicUsize::new(0),
        }
    }

    /// Queues a request; wakes a pool thread only if none is busy (see [`WAKE_DELAY`]).
    pub fn submit(&self, job: Job, now: Instant) {
        let mut q = lock(&self.queue);
        q.jobs.push_back(job);
        if q.jobs.len() == 1 {
            q.since = Some(now);
        }
        let wake = q.busy == 0 && q.idle > 0;
        drop(q);
        if wake {
            self.job_ready.notify_one();
        }
    }

    /// Wakes an idle pool thread when the queue made no progress for [`WAKE_DELAY`]; returns
    /// when to check again (None: nothing waits).
    pub fn kick(&self, now: Instant) -> Option<Instant> {
        let mut q = lock(&self.queue);
        let since = q.since?;
        if q.jobs.is_empty() || q.idle == 0 {
            return None;
        }
        if now < since + WAKE_DELAY {
            return Some(since + WAKE_DELAY);
        }
        q.since = Some(now);
        drop(q);
        self.job_ready.notify_one();
        Some(now + WAKE_DELAY)
    }

    /// A connection is being closed without the GIL while its `gunicorn.socket` may still be
    /// open: that object holds a duplicate of the descriptor, which would keep the connection
    /// open after our close. So the connection is shut down now (when `fd` is still there)
    /// and the object kept for the next thread that holds the GIL: the next request's pool
    /// thread, or the main thread within a heartbeat interval.
    pub fn release_socket(&self, fd: Option<BorrowedFd<'_>>, socket: Option<PySocket>) {
        let Some(socket) = socket else { return };
        if let Some(fd) = fd {
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
        let mut g = lock(&self.graveyard);
        g.push(socket);
        self.graveyard_len.store(g.len(), Ordering::Relaxed);
    }

    /// Closes the buried sockets (with the GIL).
    pub fn collect(&self, py: Python<'_>) {
        if self.graveyard_len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let buried = {
            let mut g = lock(&self.graveyard);
            self.graveyard_len.store(0, Ordering::Relaxed);
            std::mem::take(&mut *g)
        };
        for socket in buried {
            close_socket(py, socket);
        }
    }

    /// Whether sockets wait to be closed.
    pub fn has_buried(&self) -> bool {
        self.graveyard_len.load(Ordering::Relaxed) > 0
    }

    /// Hands the event loop to the threads for the first time.
    pub fn start(&self, poller: Box<Poller>) {
        let mut q = lock(&self.queue);
        q.baton = Some(poller);
        q.progress = Instant::now();
        drop(q);
        self.job_ready.notify_one();
    }

    /// The event loop said the worker stops: the pool threads exit, the main thread returns.
    fn finish(&self, mut q: MutexGuard<'_, Queue>) {
        q.closed = true;
        q.finished = true;
        drop(q);
        self.job_ready.notify_all();
        self.main_ready.notify_all();
    }

    /// The poller is about to wait: true if it may (no connection came back meanwhile).
    /// The flag and the count are sequentially consistent, so either the poller sees the
    /// count or the pool thread sees the flag and wakes it.
    pub fn may_sleep(&self) -> bool {
        self.poller_sleeping.store(true, Ordering::SeqCst);
        if self.done_count.load(Ordering::SeqCst) > 0 {
            self.poller_sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The poller is awake again.
    pub fn awake(&self) {
        self.poller_sleeping.store(false, Ordering::SeqCst);
    }

    /// Connections handed back since the last call (the poller's side).
    pub fn take_done(&self, into: &mut Vec<Done>) {
        if self.done_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut done = lock(&self.done);
        into.append(&mut done);
        self.done_count.store(0, Ordering::SeqCst);
    }

    /// The next job for a pool thread; `finished` = it just finished one, which was slow (it
    /// waited for its client or ran for [`RESCUE_DELAY`]) or not.
    ///
    /// With no job queued, a pool thread takes the event loop (the baton) if no other thread
    /// runs it, and runs turns until a request is complete; it then puts the baton down and
    /// runs that request itself. A fast app is thus served by one thread doing everything,
    /// with no hand-off between threads (waking a thread costs a futex call and, in a VM, an
    /// inter-processor interrupt: about 30 % of a hello-world worker's time when a poller
    /// thread handed every request to a pool thread). While the request runs nobody polls; if
    /// that lasts [`RESCUE_DELAY`] the main thread takes the baton (see [`Shared::main_wait`]).
    fn next_job(&self, finished: Option<bool>) -> Option<Job> {
        let mut q = lock(&self.queue);
        if let Some(slow) = finished {
            q.busy -= 1;
            q.slow = slow;
        }
        loop {
            if let Some(job) = q.jobs.pop_front() {
                let now = Instant::now();
                q.busy += 1;
                q.since = (!q.jobs.is_empty()).then_some(now);
                q.progress = now;
                return Some(job);
            }
            if q.closed {
                return None;
            }
            if let Some(mut poller) = q.baton.take() {
                // Leading counts as busy: the requests this turn finds are not handed to an
                // idle thread at once (see WAKE_DELAY); this thread takes the first itself.
                q.busy += 1;
                drop(q);
                let turn = loop {
                    match poller.turn(Duration::MAX) {
                        Turn::Stopped => break Turn::Stopped,
                        Turn::Going if self.has_jobs() => break Turn::Going,
                        Turn::Going => {}
                    }
                };
                q = lock(&self.queue);
                q.busy -= 1;
                if turn == Turn::Stopped {
                    self.finish(q);
                    drop(poller);
                    return None;
                }
                self.put_down(&mut q, poller);
                continue;
            }
            if q.main_leads && !q.slow {
                // The main thread leads in a rescue, and requests are quick again: tell it a
                // thread is free to take over.
                let _ = self.waker.wake();
            }
            q.idle += 1;
            q = self.job_ready.wait(q).unwrap_or_else(|e| e.into_inner());
            q.idle -= 1;
        }
    }

    fn has_jobs(&self) -> bool {
        !lock(&self.queue).jobs.is_empty()
    }

    /// Puts the baton down for the next thread; tells a dozing main thread to watch it.
    fn put_down(&self, q: &mut Queue, poller: Box<Poller>) {
        q.baton = Some(poller);
        q.progress = Instant::now();
        if q.main_dozing {
            q.main_dozing = false;
            self.main_ready.notify_one();
        }
    }

    /// The main thread's wait: returns the baton when it lay unused and no queued request was
    /// taken for [`RESCUE_DELAY`] (a request is slow: leading turned into running it, and
    /// every other pool thread is busy or asleep), or None at `until` or when the worker
    /// stops (see [`Shared::finished`]). A thread running a batch of quick requests one
    /// after the other is not rescued: it takes the baton back when the queue is empty.
    pub fn main_wait(&self, until: Instant) -> Option<Box<Poller>> {
        let mut q = lock(&self.queue);
        loop {
            if q.finished {
                return None;
            }
            let now = Instant::now();
            if q.baton.is_some() && now >= q.progress + RESCUE_DELAY {
                q.main_leads = true;
                return q.baton.take();
            }
            if now >= until {
                return None;
            }
            let wake = if q.baton.is_some() {
                (q.progress + RESCUE_DELAY).min(until)
            } else {
                // A thread leads (often asleep in the poll): doze until it puts the baton
                // down, rather than waking every millisecond to look.
                q.main_dozing = true;
                until
            };
            q = self
                .main_ready
                .wait_timeout(q, wake - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            q.main_dozing = false;
        }
    }

    /// Whether the event loop said the worker stops.
    pub fn finished(&self) -> bool {
        lock(&self.queue).finished
    }

    /// The main thread ends a rescue turn. It keeps the baton while every pool thread is busy
    /// (none could take it) or requests are slow (see `Queue::slow`). Otherwise it puts it
    /// down: with requests queued, for the busy
    /// thread that takes them to pick up when the queue is empty (an idle one is woken only
    /// if the queue stalls: see WAKE_DELAY); with none, for an idle thread, woken for it.
    /// Returns the baton if kept; `stopped` = the turn said the worker stops.
    pub fn main_after_turn(&self, poller: Box<Poller>, stopped: bool) -> Option<Box<Poller>> {
        let mut q = lock(&self.queue);
        if stopped {
            q.main_leads = false;
            self.finish(q);
            return None;
        }
        if q.idle == 0 || q.slow {
            return Some(poller);
        }
        q.main_leads = false;
        self.put_down(&mut q, poller);
        let wake = q.jobs.is_empty();
        drop(q);
        if wake {
            self.job_ready.notify_one();
        }
        None
    }

    /// Gives a connection back to the event loop, waking it if a thread sleeps in it.
    ///
    /// Always: an earlier version let a kept-alive connection go back quietly, counting on the
    /// client's next request to wake the loop. But that request can arrive, and its readiness
    /// event be consumed (the connection still counted as busy), between the response going
    /// out and this hand-back; then nothing woke the loop for up to a second (seen as 0.5-1.3 s
    /// latency spikes in the upload benchmark). In the usual fast case nobody sleeps in the
    /// loop (this thread put the baton down to run the request) and no wake-up is made.
    fn hand_back(&self, done: Done) {
        {
            let mut list = lock(&self.done);
            list.push(done);
            self.done_count.fetch_add(1, Ordering::SeqCst);
        }
        if self.poller_sleeping.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                log_error!("cannot wake the poller: {e}");
            }
        }
    }
}

/// A request that ran, waiting to be finished without the GIL.
struct Ran {
    token: usize,
    exchange: Exchange,
    socket: Option<PySocket>,
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
        let mut ran: Option<(Ran, Instant)> = None;
        loop {
            let next = py.detach(|| {
                let finished = ran.take().map(|(r, started)| {
                    shared.hand_back(finish(shared, r, io_limit));
                    socket::waited() || started.elapsed() >= RESCUE_DELAY
                });
                shared.next_job(finished)
            });
            let Some(job) = next else { return };
            socket::clear_waited();
            let started = Instant::now();
            ran = Some((run(py, shared, bridge, http, job), started));
        }
    });
}

/// Runs the app for one request (with the GIL).
fn run(py: Python<'_>, shared: &Shared, bridge: &Bridge, http: &Arc<HttpConfig>, job: Job) -> Ran {
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
    let mut socket = socket;
    if !outcome.reusable || job.force_close {
        // The connection closes after this response: close the duplicate now, with the GIL.
        if let Some(s) = socket.take() {
            close_socket(py, s);
        }
    }
    Ran {
        token: job.token,
        exchange,
        socket,
        reusable: outcome.reusable,
        force_close: job.force_close,
        has_body: !matches!(job.req.body, gunicorn_http::BodyKind::Length(0)),
    }
}

/// Decides the connection's fate after its response (without the GIL): a reusable response
/// keeps it if the rest of the request body can be drained (bounded in bytes and time).
fn finish(shared: &Shared, r: Ran, io_limit: IoLimit) -> Done {
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
        Some((io, leftover)) => {
            let linger = !keep_alive && (r.has_body || !leftover.is_empty());
            if !keep_alive && !linger {
                // A plain close is done here rather than in the poller: no wake-up of the
                // poller is needed for it (see `Shared::hand_back`). Deregistered explicitly
                // in case the app kept a duplicate of the socket.
                let _ = shared
                    .registry
                    .deregister(&mut SourceFd(&io.as_fd().as_raw_fd()));
                shared.release_socket(Some(io.as_fd()), r.socket);
                drop(io);
                return Done::closed(r.token);
            }
            Done {
                token: r.token,
                io: Some(io),
                socket: r.socket,
                linger,
                leftover,
                keep_alive,
                socket_read: r.has_body,
            }
        }
        None => {
            shared.release_socket(None, r.socket);
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

/// Closes a `gunicorn.socket` explicitly: a socket left to the garbage collector formats an
/// "unclosed socket" ResourceWarning even when warnings are filtered out.
fn close_socket(py: Python<'_>, socket: PySocket) {
    let _ = socket.bind(py).call_method0(pyo3::intern!(py, "close"));
}
