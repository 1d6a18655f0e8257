//! The TLS handshake of a greenlet worker's connection: run on the green socket (each wait
//! yields to the hub), bounded by one deadline, failures reported at debug level only.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use gunicorn_http::ConnInfo;
use gunicorn_serve::tls::{self, Acceptor};
use gunicorn_serve::Transport;

use crate::green_socket::GreenSocket;

/// How long a handshake may take when neither keep-alive nor `--timeout` bounds it
/// (`--keep-alive 0 --timeout 0`): gunicorn's default timeout.
const FALLBACK: Duration = Duration::from_secs(30);

/// Runs the TLS handshake on a new connection within `deadline` (keep-alive's, which the first
/// request head shares) or, with keep-alive off (None), within `--timeout`: never unbounded, a
/// client that connects and stalls would hold a pool slot forever. The deadline bounds the
/// whole handshake, not each read, so a client trickling its flight gets no more time.
///
/// On success the connection's TLS facts go into `conn` (for every request's environ) and the
/// stream is the connection's transport from then on. A failure is reported with
/// [`tls::handshake_failed`] and None returned (the caller closes); a connection closed or
/// silent before its first byte is a port probe (a health check), not a TLS client, and is not
/// reported, nor is a greenlet killed meanwhile (the caller re-raises that).
pub fn handshake(
    sock: &GreenSocket,
    acceptor: &Acceptor,
    conn: &mut ConnInfo,
    deadline: Option<Instant>,
) -> Option<Box<dyn Transport>> {
    let limit = deadline
        .unwrap_or_else(|| Instant::now() + acceptor.handshake_timeout().unwrap_or(FALLBACK));
    let mut stream = match acceptor.accept(Watched::new(sock.clone())) {
        Ok(stream) => stream,
        Err(e) => {
            tls::handshake_failed(conn, &e);
            return None;
        }
    };
    sock.set_deadline(Some(limit));
    let done = stream.handshake();
    sock.set_deadline(None);
    if let Err(e) = done {
        if stream.get_ref().got_bytes && !sock.has_fatal() {
            tls::handshake_failed(conn, &Failure(e));
        }
        return None;
    }
    conn.tls = stream.tls_info();
    Some(Box::new(stream))
}

/// Why a handshake failed, in words for the debug line.
struct Failure(io::Error);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.kind() {
            io::ErrorKind::UnexpectedEof => f.write_str("the client closed the connection"),
            io::ErrorKind::TimedOut => f.write_str("no complete handshake before the deadline"),
            _ => self.0.fmt(f),
        }
    }
}

/// The green socket under a TLS stream, noting whether the client sent anything (only TLS
/// connections pay for it: the plain path reads the green socket itself).
pub struct Watched {
    sock: GreenSocket,
    got_bytes: bool,
}

impl Watched {
    fn new(sock: GreenSocket) -> Watched {
        Watched {
            sock,
            got_bytes: false,
        }
    }
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.got_bytes |= n > 0;
        Ok(n)
    }
}

impl Write for Watched {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl AsFd for Watched {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The green socket's own forms (the `try_` forms and the shutdown work on the descriptor).
impl Transport for Watched {}
