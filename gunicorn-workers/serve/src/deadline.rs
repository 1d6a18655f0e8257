//! A blocking stream whose reads and writes share one deadline, for the TLS handshake of the
//! classes that block (sync, echo): a client that trickles its handshake a byte at a time must
//! not extend a per-read timeout read after read.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use crate::transport::Transport;
use gunicorn_core::Stream;

/// An accepted stream with an optional deadline for every blocking read and write.
pub struct DeadlineStream {
    inner: Stream,
    deadline: Cell<Option<Instant>>,
}

impl DeadlineStream {
    pub fn new(inner: Stream, deadline: Option<Instant>) -> DeadlineStream {
        DeadlineStream {
            inner,
            deadline: Cell::new(deadline),
        }
    }

    /// No deadline from now on (the handshake is over; the request may take as long as the
    /// client needs, as without TLS).
    pub fn clear(&self) -> io::Result<()> {
        if self.deadline.take().is_some() {
            self.inner.set_read_timeout(None)?;
            self.inner.set_write_timeout(None)?;
        }
        Ok(())
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &Stream {
        &self.inner
    }

    /// The time left before the deadline, as a socket timeout; Err once it has passed.
    fn left(&self) -> io::Result<Option<std::time::Duration>> {
        let Some(deadline) = self.deadline.get() else {
            return Ok(None);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS handshake took too long",
            ));
        }
        Ok(Some(left))
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(left) = self.left()? {
            self.inner.set_read_timeout(Some(left))?;
        }
        self.inner.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(left) = self.left()? {
            self.inner.set_write_timeout(Some(left))?;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl AsFd for DeadlineStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl Transport for DeadlineStream {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn one_deadline_across_reads_then_none() {
        let (ours, mut client) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let mut s =
            DeadlineStream::new(Stream::Unix(ours), Some(start + Duration::from_millis(300)));
        // A byte every 100 ms: each read gets its byte, but the deadline still ends the reads.
        let trickle = std::thread::spawn(move || {
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(100));
                if client.write_all(b"x").is_err() {
                    break;
                }
            }
            client
        });
        let mut buf = [0u8; 1];
        let mut got = 0;
        let err = loop {
            match s.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert!(matches!(
            err.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ));
        assert!(got <= 3, "{got}");
        assert!(start.elapsed() < Duration::from_millis(600));
        s.clear().unwrap();
        assert_eq!(s.read(&mut buf).unwrap(), 1);
        drop(trickle.join().unwrap());
    }
}
