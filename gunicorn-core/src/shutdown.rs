//! The worker's stop request, set from its signal handlers and polled by the worker's loop.
//!
//! gunicorn's worker signals: TERM asks for a graceful stop (finish the current requests),
//! INT and QUIT for a quick one. Setting the request is async-signal-safe: an atomic store and
//! one `write(2)` to a non-blocking pipe whose read end a worker can add to its poll set.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// How the worker was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// Finish in-flight requests, accept no new ones (SIGTERM, max_requests, parent gone).
    Graceful,
    /// Stop now (SIGINT, SIGQUIT).
    Quick,
}

const NONE: u8 = 0;
const GRACEFUL: u8 = 1;
const QUICK: u8 = 2;

#[derive(Debug)]
struct Inner {
    state: AtomicU8,
    read: OwnedFd,
    write: OwnedFd,
}

/// A shared stop request with a wake-up fd.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<Inner>);

impl Shutdown {
    /// A fresh, unset request with its own CLOEXEC, non-blocking pipe.
    pub fn new() -> std::io::Result<Self> {
        use nix::fcntl::OFlag;
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Shutdown(Arc::new(Inner {
            state: AtomicU8::new(NONE),
            read,
            write,
        })))
    }

    /// The stop requested so far, if any. A quick stop wins over a graceful one.
    pub fn requested(&self) -> Option<StopKind> {
        match self.0.state.load(Ordering::Acquire) {
            GRACEFUL => Some(StopKind::Graceful),
            QUICK => Some(StopKind::Quick),
            _ => None,
        }
    }

    /// Requests a stop and wakes any poller. Async-signal-safe.
    pub fn request(&self, kind: StopKind) {
        let v = match kind {
            StopKind::Graceful => GRACEFUL,
            StopKind::Quick => QUICK,
        };
        self.0.state.fetch_max(v, Ordering::AcqRel);
        // A full pipe already wakes the poller; EAGAIN is fine to ignore.
        let _ = nix::unistd::write(&self.0.write, &[v]);
    }

    /// The read end of the wake-up pipe: readable once a stop was requested.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.0.read.as_fd()
    }
}
