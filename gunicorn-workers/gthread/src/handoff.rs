//! The hand-off between the event loop, the pool threads and the main thread ([`Shared`]):
//! the queue of parsed requests waiting for a pool thread, the event loop itself, passed
//! between the threads as a baton (and taken up by the main thread while a slow request keeps
//! every pool thread from it), the connections handed back to the event loop, and the
//! `gunicorn.socket` objects of closed connections waiting for a thread that holds the GIL.
//!
//! The event loop is known here only as a [`Baton`], something run a turn at a time: the
//! poller depends on this file, not this file on the poller.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gunicorn_core::log_error;
use pyo3::prelude::*;

use gunicorn_python::wsgi::Exchange;

use crate::job::{close_socket, Done, PySocket, Work};

/// What a turn of the event loop ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Going,
    /// The worker stops: every connection that had to finish did.
    Stopped,
}

/// The event loop as the hand-off sees it: run by one thread at a time, a turn at a time (the
/// poller's `Poller::turn`). [`Shared`] is generic over it, rather than holding a
/// `Box<dyn Baton>`, so that a turn stays a direct call.
pub trait Baton {
    /// One turn of the event loop, waiting for readiness at most `cap`.
    fn turn(&mut self, cap: Duration) -> Turn;
}

struct Queue<B> {
    jobs: VecDeque<Work>,
    closed: bool,
    /// Pool threads holding a job (running it, or finishing it and about to take the next).
    busy: usize,
    /// Pool threads asleep waiting for a job.
    idle: usize,
    /// When the queue last made progress (a job taken, or the first job queued).
    since: Option<Instant>,
    /// The event loop, while no thread runs it (see [`Shared::next_job`]).
    baton: Option<Box<B>>,
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

/// What the poller, the pool threads and the main thread share; `B` is the event loop, the
/// baton they pass (see [`Baton`]).
pub struct Shared<B> {
    queue: Mutex<Queue<B>>,
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
    pub registry: mio::Registry,
    /// `gunicorn.socket` objects of closed connections, to close with the GIL (see
    /// [`Shared::release_socket`]).
    graveyard: Mutex<Vec<PySocket>>,
    graveyard_len: AtomicUsize,
    /// Complete responses that pool threads hold back while they run the requests queued
    /// behind them (see `pool.rs`), for the main thread to send if that takes
    /// [`RESCUE_DELAY`]: a slow request does not delay the quick ones answered before it.
    held: Mutex<Held>,
}

/// See `Shared::held`.
#[derive(Default)]
struct Held {
    exchanges: Vec<Exchange>,
    /// When the oldest of them was held.
    since: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<B: Baton> Shared<B> {
    pub fn new(waker: mio::Waker, registry: mio::Registry) -> Shared<B> {
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
            held: Mutex::new(Held::default()),
        }
    }

    /// The pool thread sends these exchanges' responses itself now.
    pub fn unhold_all<'a>(&self, exchanges: impl ExactSizeIterator<Item = &'a Exchange>) {
        if exchanges.len() == 0 {
            return;
        }
        let mut h = lock(&self.held);
        for exchange in exchanges {
            h.exchanges.retain(|e| !e.same_as(exchange));
        }
        if h.exchanges.is_empty() {
            h.since = None;
        }
    }

    /// When the main thread must send the held responses, if any are held.
    fn held_deadline(&self) -> Option<Instant> {
        lock(&self.held).since.map(|t| t + RESCUE_DELAY)
    }

    /// Sends the held responses as far as their sockets take them without waiting (the main
    /// thread, once they were held for [`RESCUE_DELAY`]); their pool threads send the rest.
    fn send_held(&self) {
        let exchanges = {
            let mut h = lock(&self.held);
            h.since = None;
            std::mem::take(&mut h.exchanges)
        };
        for exchange in exchanges {
            exchange.try_send_held();
        }
    }

    /// Queues a request; wakes a pool thread only if none is busy (see [`WAKE_DELAY`]).
    pub fn submit(&self, job: Work, now: Instant) {
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

    /// Queues an HTTP/2 stream's request from the HTTP/2 thread, which takes no job itself;
    /// [`Shared::wake_for_outside`] follows once the HTTP/2 thread has queued what it had.
    pub fn submit_from_outside(&self, job: Work) {
        let mut q = lock(&self.queue);
        q.jobs.push_back(job);
        if q.jobs.len() == 1 {
            q.since = Some(Instant::now());
        }
    }

    /// Makes sure a thread takes the requests queued from outside: an idle pool thread is
    /// woken, else the thread leading the event loop if it sleeps in the poll (it takes them,
    /// see `next_job`); threads running requests take the next ones when they are done.
    /// (Leaving the wake-up to a running thread, as [`Shared::submit`] does for the event
    /// loop's own requests, measured slower here: the HTTP/2 thread hands over a batch of
    /// streams at a time, and a second thread starts on it while the first one still runs.)
    pub fn wake_for_outside(&self) {
        let q = lock(&self.queue);
        if q.jobs.is_empty() {
            return;
        }
        let idle = q.idle > 0;
        drop(q);
        if idle {
            self.job_ready.notify_one();
        } else if self.poller_sleeping.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                log_error!("cannot wake the poller: {e}");
            }
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
    pub fn start(&self, poller: Box<B>) {
        let mut q = lock(&self.queue);
        q.baton = Some(poller);
        q.progress = Instant::now();
        drop(q);
        self.job_ready.notify_one();
    }

    /// The event loop said the worker stops: the pool threads exit, the main thread returns.
    fn finish(&self, mut q: MutexGuard<'_, Queue<B>>) {
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
    ///
    /// With the job comes whether its thread may hold its response back (see `pool.rs`):
    /// requests wait behind it and the main thread does not lead (a rescue), so it watches
    /// held responses.
    pub fn next_job(&self, finished: Option<bool>) -> Option<(Work, bool)> {
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
                let may_hold = !q.jobs.is_empty() && !q.main_leads;
                return Some((job, may_hold));
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

    /// The next queued HTTP/1 request for a pool thread that stays busy, while it holds back
    /// the response of the request it ran before, `holding`, which is registered here for the
    /// main thread to watch (see `Shared::held`). None (nothing held) when no HTTP/1 request
    /// waits or the main thread leads.
    pub fn take_queued(&self, holding: &Exchange) -> Option<Work> {
        let mut q = lock(&self.queue);
        if q.main_leads || !matches!(q.jobs.front(), Some(Work::Request(_))) {
            return None;
        }
        let job = q.jobs.pop_front();
        let now = Instant::now();
        q.since = (!q.jobs.is_empty()).then_some(now);
        q.progress = now;
        let first = {
            let mut h = lock(&self.held);
            h.exchanges.push(holding.clone());
            let first = h.since.is_none();
            h.since.get_or_insert(now);
            first
        };
        if first && q.main_dozing {
            // A dozing main thread must start watching.
            q.main_dozing = false;
            self.main_ready.notify_one();
        }
        job
    }

    fn has_jobs(&self) -> bool {
        !lock(&self.queue).jobs.is_empty()
    }

    /// Puts the baton down for the next thread; tells a dozing main thread to watch it.
    fn put_down(&self, q: &mut Queue<B>, poller: Box<B>) {
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
    ///
    /// It also sends the responses held back for [`RESCUE_DELAY`] (see `Shared::held`).
    pub fn main_wait(&self, until: Instant) -> Option<Box<B>> {
        let mut q = lock(&self.queue);
        loop {
            if q.finished {
                return None;
            }
            let now = Instant::now();
            let held = self.held_deadline();
            if held.is_some_and(|t| now >= t) {
                drop(q);
                self.send_held();
                q = lock(&self.queue);
                continue;
            }
            if q.baton.is_some() && now >= q.progress + RESCUE_DELAY {
                q.main_leads = true;
                let baton = q.baton.take();
                drop(q);
                // No response is held back while the main thread leads: send those that are.
                self.send_held();
                return baton;
            }
            if now >= until {
                return None;
            }
            let wake = if q.baton.is_some() {
                (q.progress + RESCUE_DELAY).min(until)
            } else if let Some(held) = held {
                // A thread leads, and another holds responses back: watch those.
                held.min(until)
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
    pub fn main_after_turn(&self, poller: Box<B>, stopped: bool) -> Option<Box<B>> {
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

    /// Gives connections back to the event loop (`done` is left empty), waking it if a thread
    /// sleeps in it. A pool thread hands back the connections of a batch of held responses
    /// together: one lock and at most one wake-up for the batch.
    ///
    /// Always: an earlier version let a kept-alive connection go back quietly, counting on the
    /// client's next request to wake the loop. But that request can arrive, and its readiness
    /// event be consumed (the connection still counted as busy), between the response going
    /// out and this hand-back; then nothing woke the loop for up to a second (seen as 0.5-1.3 s
    /// latency spikes in the upload benchmark). In the usual fast case nobody sleeps in the
    /// loop (this thread put the baton down to run the request) and no wake-up is made.
    pub fn hand_back_all(&self, done: &mut Vec<Done>) {
        if done.is_empty() {
            return;
        }
        {
            let mut list = lock(&self.done);
            let n = done.len();
            list.append(done);
            self.done_count.fetch_add(n, Ordering::SeqCst);
        }
        if self.poller_sleeping.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                log_error!("cannot wake the poller: {e}");
            }
        }
    }
}
