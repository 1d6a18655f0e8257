//! HTTP/2 on a greenlet worker: the worker's HTTP/2 thread (`gunicorn_serve::h2`, no Python)
//! owns the connections' framing; each stream runs the app in a greenlet of its own, and no
//! wait of a greenlet ever blocks the hub's thread.
//!
//! The thread and the hub meet at one pipe the hub watches (gevent's `loop.io`, eventlet's
//! `hub.add`):
//!
//! - a stream's request is queued here ([`GreenDispatch`]) and the pipe rung once per batch;
//!   the hub's callback ([`GreenH2::take_ready`]) gives each new stream a greenlet of its own:
//!   an idle stream runner of the driver woken, else a new one, which runs it
//!   (`GreenServer::serve_stream`);
//! - a greenlet that must wait (for request DATA, for room in its response's channel, for its
//!   connection to end) polls the channel with a waker bearing its token ([`GreenPark`]) and
//!   parks: the driver's `wait(token)` switches to the hub. When the HTTP/2 thread wakes the
//!   waker, the token is queued and the pipe rung; the hub's callback switches back into the
//!   greenlet parked under that token. The GIL is held only while Python runs, never across a
//!   wait (the hub's own wait for the pipe releases it, as any wait of the hub does).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Wake, Waker};

use gunicorn_core::{Shutdown, StopKind};
use gunicorn_serve::h2::{Dispatch, H2Mode, H2Server, Park, StreamJob};
use gunicorn_serve::{Count, RequestBudget};
use nix::fcntl::OFlag;
use pyo3::prelude::*;

/// Streams waiting for a greenlet, and tokens of parked greenlets to wake, with the pipe that
/// tells the hub about them.
pub struct Wakeups {
    read: OwnedFd,
    write: OwnedFd,
    /// The pipe holds a byte the hub has not read yet: no second write is needed.
    rung: AtomicBool,
    jobs: Mutex<Vec<StreamJob>>,
    tokens: Mutex<Vec<u64>>,
}

impl Wakeups {
    fn new() -> io::Result<Wakeups> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Wakeups {
            read,
            write,
            rung: AtomicBool::new(false),
            jobs: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
        })
    }

    /// Makes the pipe readable, unless it already is.
    fn ring(&self) {
        if !self.rung.swap(true, Ordering::SeqCst) {
            // A full pipe is readable already: nothing lost when this write fails.
            let _ = nix::unistd::write(&self.write, &[1]);
        }
    }

    fn wake(&self, token: u64) {
        lock(&self.tokens).push(token);
        self.ring();
    }

    /// Empties the pipe, then takes what was queued. In this order: a producer that queues
    /// after the pipe was read finds `rung` false (or one set after the read by another
    /// producer, whose byte is then in the pipe) and rings again, so nothing queued is left
    /// without a byte in the pipe.
    fn take(&self) -> (Vec<StreamJob>, Vec<u64>) {
        let mut scratch = [0u8; 64];
        while matches!(nix::unistd::read(&self.read, &mut scratch), Ok(n) if n > 0) {}
        self.rung.store(false, Ordering::SeqCst);
        let jobs = std::mem::take(&mut *lock(&self.jobs));
        let tokens = std::mem::take(&mut *lock(&self.tokens));
        (jobs, tokens)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands each stream to the hub, counting it in `max_requests` (runs in the HTTP/2 thread).
pub struct GreenDispatch {
    wakeups: Arc<Wakeups>,
    budget: Arc<RequestBudget>,
    shutdown: Shutdown,
}

impl Dispatch for GreenDispatch {
    fn dispatch(&self, job: StreamJob) {
        if self.budget.count() == Count::Last {
            gunicorn_serve::log_autorestart();
            self.shutdown.request(StopKind::Graceful);
        }
        lock(&self.wakeups.jobs).push(job);
    }

    fn flush(&self) {
        if !lock(&self.wakeups.jobs).is_empty() {
            self.wakeups.ring();
        }
    }
}

/// The waker of one parked greenlet: queues its token for the hub.
struct TokenWaker {
    token: u64,
    wakeups: Arc<Wakeups>,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wakeups.wake(self.token);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.wake(self.token);
    }
}

/// How one greenlet (a stream's, or a connection's waiting for its end) waits.
pub struct GreenPark {
    token: u64,
    waker: Waker,
    /// The driver's `wait(token)`: switches to the hub until the token is woken.
    wait: Py<PyAny>,
}

impl Park for GreenPark {
    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn park(&self) -> io::Result<()> {
        // The greenlet runs with the GIL (the bridge keeps it for cooperative exchanges):
        // attaching is pyo3's cheap already-attached path.
        Python::attach(|py| {
            self.wait
                .bind(py)
                .call1((self.token,))
                .map(drop)
                .map_err(io::Error::from)
        })
    }
}

/// The worker's HTTP/2 side, as the hub sees it.
pub struct GreenH2 {
    pub server: Arc<H2Server>,
    pub mode: H2Mode,
    /// `http2_max_frame_size`: the largest frame an upgraded request's head or body may be.
    pub max_frame: usize,
    /// `http2_initial_window_size`: the most body an upgraded request may carry.
    pub first_window: usize,
    wakeups: Arc<Wakeups>,
    /// Streams taken from the pipe's queue, waiting for a greenlet to run them.
    ready: Mutex<VecDeque<StreamJob>>,
    /// Streams taken from the pipe's queue and not finished (a graceful stop waits for them).
    running: AtomicUsize,
    next_token: AtomicU64,
    /// The driver's `wait(token)`, given once the hub runs.
    wait: OnceLock<Py<PyAny>>,
}

impl GreenH2 {
    /// The queue and pipe, and the dispatch for the HTTP/2 thread to start with.
    pub fn dispatch(
        budget: Arc<RequestBudget>,
        shutdown: Shutdown,
    ) -> io::Result<(Arc<Wakeups>, Arc<GreenDispatch>)> {
        let wakeups = Arc::new(Wakeups::new()?);
        let dispatch = Arc::new(GreenDispatch {
            wakeups: Arc::clone(&wakeups),
            budget,
            shutdown,
        });
        Ok((wakeups, dispatch))
    }

    pub fn new(
        server: Arc<H2Server>,
        mode: H2Mode,
        cfg: &gunicorn_core::Config,
        wakeups: Arc<Wakeups>,
    ) -> GreenH2 {
        GreenH2 {
            server,
            mode,
            max_frame: cfg.http2_max_frame_size.0 as usize,
            first_window: cfg.http2_initial_window_size.0 as usize,
            wakeups,
            ready: Mutex::new(VecDeque::new()),
            running: AtomicUsize::new(0),
            next_token: AtomicU64::new(1),
            wait: OnceLock::new(),
        }
    }

    /// The pipe the hub watches.
    pub fn fd(&self) -> RawFd {
        self.wakeups.read.as_raw_fd()
    }

    /// Sets the driver's `wait(token)` (once).
    pub fn set_wait(&self, wait: Py<PyAny>) {
        let _ = self.wait.set(wait);
    }

    /// The hub's callback: how many new streams want a greenlet (which takes them with
    /// [`GreenH2::next_stream`]), and the tokens of the parked greenlets to wake.
    pub fn take_ready(&self) -> (usize, Vec<u64>) {
        let (jobs, tokens) = self.wakeups.take();
        let n = jobs.len();
        lock(&self.ready).extend(jobs);
        self.running.fetch_add(n, Ordering::Relaxed);
        (n, tokens)
    }

    /// The next stream for a greenlet, counted as running until the returned guard drops.
    pub fn next_stream(&self) -> Option<(StreamJob, Running<'_>)> {
        let job = lock(&self.ready).pop_front()?;
        Some((job, Running(&self.running)))
    }

    /// Streams waiting for a greenlet or running in one.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// A park for the calling greenlet, with a token of its own. Err before the driver gave
    /// its `wait`.
    pub fn park(&self, py: Python<'_>) -> PyResult<Arc<GreenPark>> {
        let wait = self
            .wait
            .get()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("HTTP/2 is not started"))?
            .clone_ref(py);
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let waker = Waker::from(Arc::new(TokenWaker {
            token,
            wakeups: Arc::clone(&self.wakeups),
        }));
        Ok(Arc::new(GreenPark { token, waker, wait }))
    }
}

/// A stream's place in [`GreenH2::running`], given back however its greenlet ends it.
pub struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_is_readable_while_tokens_wait() {
        let w = Arc::new(Wakeups::new().unwrap());
        let readable = |w: &Wakeups| {
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&w.read),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap() == 1
        };
        assert!(!readable(&w));
        // Wakes ring the pipe once; the hub takes them all.
        let waker = Waker::from(Arc::new(TokenWaker {
            token: 7,
            wakeups: Arc::clone(&w),
        }));
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert!(readable(&w));
        let (jobs, tokens) = w.take();
        assert!(jobs.is_empty());
        assert_eq!(tokens, [7, 7]);
        assert!(!readable(&w));
        // A wake after the take rings again.
        waker.wake();
        assert!(readable(&w));
        assert_eq!(w.take().1, [7]);
        // Many wakes from another thread: every one arrives, with the pipe readable after each.
        let w2 = Arc::clone(&w);
        let producer = std::thread::spawn(move || {
            for t in 0..1000 {
                w2.wake(t);
            }
        });
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while seen.len() < 1000 && std::time::Instant::now() < deadline {
            if readable(&w) {
                seen.extend(w.take().1);
            }
        }
        producer.join().unwrap();
        assert_eq!(seen, (0..1000).collect::<Vec<u64>>());
    }
}
