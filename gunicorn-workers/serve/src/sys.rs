//! The one unsafe call of this crate, kept apart as the project's rule asks.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;

use crate::transport::Transport;

/// A transport, owned, seen by tokio's reactor through its descriptor.
pub struct Registered(pub Box<dyn Transport>);

impl AsRawFd for Registered {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers `io`'s descriptor with the current tokio runtime's reactor.
pub fn register(io: Box<dyn Transport>) -> io::Result<AsyncFd<Registered>> {
    // SAFETY: the descriptor stays open and the same while registered: `AsyncFd` owns the
    // transport that owns it, and deregisters it before dropping the transport.
    unsafe { AsyncFd::register(Registered(io)) }.map_err(io::Error::from)
}
