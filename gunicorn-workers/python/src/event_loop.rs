//! What the worker classes whose event loop runs in Python (the greenlet hub, asyncio) share:
//! the listeners handed to it, the heartbeat tick it calls about once a second, and the stop
//! requests as its driver sees them.

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use gunicorn_core::{log_info, Listener, LocalAddr, StopKind, WorkerContext, WorkerError};
use gunicorn_http::Local;

/// A listener handed to an event loop that runs in Python (the greenlet hub, asyncio): its
/// descriptor (Python's socket object owns it from then on), its address family, and the
/// address the environ reports for it.
pub struct HandedListener {
    pub fd: i32,
    pub family: i32,
    pub local: Local,
}

/// Gives up `listener`'s descriptor to Python (see [`HandedListener`]).
pub fn hand_over(listener: Listener) -> Result<HandedListener, WorkerError> {
    let addr = listener
        .local_addr()
        .map_err(|e| WorkerError::Boot(e.to_string()))?;
    let family = match &addr {
        LocalAddr::Tcp(a) if a.is_ipv4() => libc::AF_INET,
        LocalAddr::Tcp(_) => libc::AF_INET6,
        LocalAddr::Unix(_) => libc::AF_UNIX,
    };
    let local = gunicorn_serve::addr::local(addr);
    let fd: OwnedFd = match listener {
        Listener::Tcp(l) => l.into(),
        Listener::Unix { listener, .. } => listener.into(),
    };
    Ok(HandedListener {
        fd: fd.into_raw_fd(),
        family,
        local,
    })
}

/// The heartbeat: proves the worker alive to the master, and notices a new parent (the master
/// is gone), asking once for a graceful stop like gunicorn's `notify()`. False once the parent
/// changed. `orphaned` remembers that the stop was asked; `class` names the worker in the log.
pub fn tick(ctx: &WorkerContext, orphaned: &AtomicBool, class: &str) -> bool {
    ctx.heartbeat.notify();
    if nix::unistd::getppid().as_raw() == ctx.ppid {
        return true;
    }
    if !orphaned.swap(true, Ordering::AcqRel) {
        log_info!(
            "Parent changed, shutting down: {class} worker (pid: {})",
            std::process::id()
        );
        ctx.shutdown.request(StopKind::Graceful);
    }
    false
}

/// `None`, `"graceful"` (TERM, max_requests, parent gone) or `"quick"` (INT, QUIT). Also
/// empties the wake-up pipe so the driver's next wait sleeps until a new signal.
pub fn stop_requested(ctx: &WorkerContext) -> Option<&'static str> {
    let mut scratch = [0u8; 64];
    while matches!(
        nix::unistd::read(ctx.shutdown.wake_fd(), &mut scratch),
        Ok(n) if n > 0
    ) {}
    match ctx.shutdown.requested() {
        None => None,
        Some(StopKind::Graceful) => Some("graceful"),
        Some(StopKind::Quick) => Some("quick"),
    }
}
