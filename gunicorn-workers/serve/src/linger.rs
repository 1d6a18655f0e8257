//! Closing a connection without destroying the response in flight, and reusing one whose
//! request body the app left unread: one set of named bounds for every worker class.
//!
//! Closing a socket with unread received data makes the kernel send a RST, which can destroy
//! the response before the client read it. gunicorn's `close_graceful` therefore shuts down the
//! sending side and reads what the client still sends, within bounds, before closing
//! ([`discard_input`]). Before a kept-alive connection can carry the next request, the rest of
//! a request body the app did not read must be read and dropped, within other bounds
//! (gunicorn's gthread drain, [`DRAIN_LIMIT`], [`DRAIN_TIME`]).

use std::io;
use std::time::{Duration, Instant};

use crate::transport::Transport;

/// A graceful close reads and drops at most this much of what the client still sends...
pub const LINGER_LIMIT: usize = 64 * 1024;
/// ...for at most this long (gunicorn's `close_graceful`).
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// To keep a connection, at most this much of an unread request body is read and dropped...
pub const DRAIN_LIMIT: usize = 64 * 1024;
/// ...within this time (gunicorn's gthread); a longer body closes the connection instead.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and drops what the client still sends after our side was shut down, until it closes
/// (end of input), an error, [`LINGER_LIMIT`] bytes or [`LINGER_TIME`]. `read(buf, left)`
/// reads into `buf`, waiting at most `left` (each transport bounds its own wait: a socket
/// timeout, a green socket's timeout...).
pub fn discard_input(mut read: impl FnMut(&mut [u8], Duration) -> io::Result<usize>) {
    let deadline = Instant::now() + LINGER_TIME;
    let mut drained = 0;
    let mut scratch = [0u8; 8192];
    while drained < LINGER_LIMIT {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match read(&mut scratch, left) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// gunicorn's `close_graceful` for a transport whose reads block on the socket (sync, echo):
/// shut down our sending side, read what the client still sends within the bounds above (each
/// wait bounded by `SO_RCVTIMEO`), then let the caller drop the connection.
pub fn close_graceful(io: &mut dyn Transport) {
    if io.shutdown_write().is_err() {
        return;
    }
    discard_input(|buf, left| {
        let timeout =
            nix::sys::time::TimeVal::new(left.as_secs() as _, left.subsec_micros().max(1) as _);
        nix::sys::socket::setsockopt(
            &io.as_fd(),
            nix::sys::socket::sockopt::ReceiveTimeout,
            &timeout,
        )?;
        io.read(buf)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_graceful_close_sends_the_end_and_reads_what_follows() {
        let (mut ours, mut client) = UnixStream::pair().unwrap();
        client.write_all(b"unread request bytes").unwrap();
        drop(client.try_clone().unwrap());
        let closer = std::thread::spawn(move || {
            let started = Instant::now();
            close_graceful(&mut ours);
            started.elapsed()
        });
        // The client sees the end of our output, then closes its side: the close ends at once.
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(closer.join().unwrap() < LINGER_TIME);
    }

    #[test]
    fn discarding_stops_at_the_close_and_at_the_byte_limit() {
        let mut reads = 0;
        discard_input(|_, _| {
            reads += 1;
            Ok(if reads < 3 { 100 } else { 0 })
        });
        assert_eq!(reads, 3);
        let mut total = 0;
        discard_input(|buf, left| {
            assert!(left <= LINGER_TIME);
            total += buf.len();
            Ok(buf.len())
        });
        assert!(
            (LINGER_LIMIT..LINGER_LIMIT + 8192).contains(&total),
            "{total}"
        );
        let mut calls = 0;
        discard_input(|_, _| {
            calls += 1;
            if calls == 1 {
                Err(io::ErrorKind::Interrupted.into())
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        });
        assert_eq!(calls, 2);
    }
}
