//! The sans-IO part of a connection: reading a request head out of the bytes the poller
//! receives, the deadlines a waiting connection gets, and the keep-alive decision after a
//! response. No sockets here, so all of it is unit-tested with byte strings.

use std::time::{Duration, Instant};

use gunicorn_http::{HttpError, ProxyInfo, Request, RequestParser};

/// What a read brought.
#[derive(Debug)]
pub enum HeadStep {
    /// The head is not complete yet (the bytes are buffered).
    NeedMore,
    /// A complete head; `after_head` holds the bytes that followed it (the start of the
    /// body, or pipelined requests).
    Ready {
        req: Box<Request>,
        after_head: Vec<u8>,
    },
    /// The head is malformed or over a limit: answer with gunicorn's error page and close.
    Invalid(HttpError),
}

/// Accumulates the head of the next request on one connection.
///
/// Bytes are only copied into the connection's own buffer when a head arrives in pieces: the
/// common case (a whole head in one read) is parsed straight from the poller's shared read
/// buffer, so an idle connection holds no buffer at all.
#[derive(Debug)]
pub struct HeadReader {
    parser: RequestParser,
    pending: Vec<u8>,
}

impl HeadReader {
    pub fn new(parser: RequestParser) -> HeadReader {
        HeadReader {
            parser,
            pending: Vec::new(),
        }
    }

    /// Part of a head is buffered (a request has started).
    pub fn started(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The PROXY header's addresses, if the connection started with one.
    pub fn proxy_info(&self) -> Option<&ProxyInfo> {
        self.parser.proxy_info()
    }

    /// Takes bytes just received.
    pub fn feed(&mut self, bytes: &[u8]) -> HeadStep {
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(bytes);
            return self.parse_pending();
        }
        match self.parser.parse_head(bytes) {
            Ok(Some((req, used))) => HeadStep::Ready {
                req: Box::new(req),
                after_head: bytes[used..].to_vec(),
            },
            Ok(None) => {
                self.pending.extend_from_slice(bytes);
                HeadStep::NeedMore
            }
            Err(e) => HeadStep::Invalid(e),
        }
    }

    /// Takes what was read past the previous request (pipelined bytes) and parses it at once:
    /// a request already sitting in the buffer is answered without waiting for the socket
    /// (gunicorn's gthread waits for new bytes or the keep-alive timer there).
    pub fn resume(&mut self, leftover: Vec<u8>) -> HeadStep {
        debug_assert!(self.pending.is_empty());
        if leftover.is_empty() {
            return HeadStep::NeedMore;
        }
        self.pending = leftover;
        self.parse_pending()
    }

    fn parse_pending(&mut self) -> HeadStep {
        match self.parser.parse_head(&self.pending) {
            Ok(Some((req, used))) => {
                // The buffer's allocation moves on as the body's start (no copy of the rest).
                self.pending.drain(..used);
                HeadStep::Ready {
                    req: Box::new(req),
                    after_head: std::mem::take(&mut self.pending),
                }
            }
            Ok(None) => HeadStep::NeedMore,
            Err(e) => {
                self.pending = Vec::new();
                HeadStep::Invalid(e)
            }
        }
    }
}

/// What a connection waiting in the poller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A new connection, before its first byte.
    FirstRequest,
    /// Between requests on a keep-alive connection, before the next request's first byte.
    Idle,
    /// Part of a request head has arrived.
    PartialHead,
    /// Lingering close: our side is shut, discarding what the client still sends.
    Closing,
}

/// The deadlines of waiting connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `--keep-alive`: how long a connection may sit idle between requests.
    pub keepalive: Duration,
    /// How long a request head may take from its first byte (`--timeout`; None = unbounded).
    /// A slow client (slowloris) costs a connection slot, never a thread, and is closed then.
    pub head: Option<Duration>,
}

/// gunicorn's gthread gives a new connection 5 s to send its first bytes in a pool thread,
/// then parks it until the keep-alive deadline; we wait the same total in the poller.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(5);
// gunicorn's `close_graceful` and gthread drain bounds, shared by every worker class.
pub use gunicorn_serve::linger::{DRAIN_LIMIT, DRAIN_TIME, LINGER_LIMIT, LINGER_TIME};

impl Timeouts {
    pub fn deadline(&self, wait: Wait, now: Instant) -> Option<Instant> {
        match wait {
            Wait::FirstRequest => Some(now + FIRST_REQUEST_GRACE + self.keepalive),
            Wait::Idle => Some(now + self.keepalive),
            Wait::PartialHead => self.head.map(|d| now + d),
            Wait::Closing => Some(now + LINGER_TIME),
        }
    }
}

/// What decides whether a response may keep its connection open, fixed before the app runs
/// (the `Connection` header of the response depends on it).
#[derive(Debug, Clone, Copy)]
pub struct KeepAliveInputs {
    /// The worker is not stopping (TERM, max_requests).
    pub alive: bool,
    /// `--keep-alive` is not 0.
    pub keepalive_enabled: bool,
    /// This request reaches `max_requests`.
    pub last_request: bool,
    /// Connections open and not in a pool thread (gunicorn's `len(keepalived)`).
    pub parked: usize,
    /// `--worker-connections`.
    pub worker_connections: usize,
    /// `--threads`.
    pub threads: usize,
}

/// gunicorn's gthread `force_close` rule: close after this response when the worker is
/// stopping, keep-alive is off, this is the last request before a restart, or parked
/// keep-alive connections already fill `worker_connections - threads` slots (so idle
/// connections never lock new clients out).
pub fn must_close(i: KeepAliveInputs) -> bool {
    !i.alive
        || !i.keepalive_enabled
        || i.last_request
        || i.parked >= i.worker_connections.saturating_sub(i.threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer};
    use std::sync::Arc;

    fn reader() -> HeadReader {
        let conn = ConnInfo {
            peer: Peer::Tcp("127.0.0.1:5000".parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        };
        HeadReader::new(RequestParser::new(Arc::new(HttpConfig::default()), conn))
    }

    /// Feeds `pieces` one by one; returns for each the step as a short string.
    fn run(pieces: &[&[u8]]) -> Vec<String> {
        let mut r = reader();
        pieces
            .iter()
            .map(|p| match r.feed(p) {
                HeadStep::NeedMore => format!("more started={}", r.started()),
                HeadStep::Ready { req, after_head } => format!(
                    "ready {} {} after={:?}",
                    req.method,
                    req.path,
                    String::from_utf8_lossy(&after_head)
                ),
                HeadStep::Invalid(e) => format!("invalid {}", e.status()),
            })
            .collect()
    }

    #[test]
    fn heads_in_one_piece_or_many() {
        let cases: &[(&[&[u8]], &[&str])] = &[
            (
                &[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"],
                &["ready GET / after=\"\""],
            ),
            (
                &[b"GET /a HTTP/1.1\r\n", b"Host: a\r\n", b"\r\n"],
                &[
                    "more started=true",
                    "more started=true",
                    "ready GET /a after=\"\"",
                ],
            ),
            // One byte at a time (a slowloris client) only ever buffers.
            (
                &[b"G", b"E", b"T", b" /s HTTP/1.0\r\n\r\n"],
                &[
                    "more started=true",
                    "more started=true",
                    "more started=true",
                    "ready GET /s after=\"\"",
                ],
            ),
            // Body bytes and a pipelined request after the head are handed on.
            (
                &[b"POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n"],
                &["ready POST /p after=\"hiGET / HTTP/1.1\\r\\n\\r\\n\""],
            ),
            (
                &[b"GET / HTTP/1.1\r\nHost: a\r\n", b"\r\nxyz"],
                &["more started=true", "ready GET / after=\"xyz\""],
            ),
            (&[b"BAD REQUEST LINE\r\n\r\n"], &["invalid 400"]),
            (
                &[b"GET / HTTP/1.1\r\n", b"Bad Header\r\n\r\n"],
                &["more started=true", "invalid 400"],
            ),
        ];
        for (pieces, want) in cases {
            assert_eq!(run(pieces), *want, "{pieces:?}");
        }
    }

    #[test]
    fn pipelined_requests_in_the_leftover_are_parsed_without_reading() {
        let mut r = reader();
        let HeadStep::Ready { after_head, .. } =
            r.feed(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\nGE")
        else {
            panic!("first head");
        };
        let mut paths = Vec::new();
        let mut leftover = after_head;
        loop {
            match r.resume(std::mem::take(&mut leftover)) {
                HeadStep::Ready { req, after_head } => {
                    paths.push(req.path.clone());
                    leftover = after_head;
                }
                HeadStep::NeedMore => break,
                HeadStep::Invalid(e) => panic!("{e}"),
            }
        }
        assert_eq!(paths, ["/2", "/3"]);
        // The partial fourth request stays buffered and completes with the next read.
        assert!(r.started());
        match r.feed(b"T /4 HTTP/1.1\r\n\r\n") {
            HeadStep::Ready { req, .. } => assert_eq!(req.path, "/4"),
            other => panic!("{other:?}"),
        }
        assert!(!r.started());
        assert!(matches!(r.resume(Vec::new()), HeadStep::NeedMore));
    }

    #[test]
    fn deadlines_per_wait() {
        let now = Instant::now();
        let t = Timeouts {
            keepalive: Duration::from_secs(2),
            head: Some(Duration::from_secs(30)),
        };
        let cases = [
            (Wait::FirstRequest, Some(7)),
            (Wait::Idle, Some(2)),
            (Wait::PartialHead, Some(30)),
            (Wait::Closing, Some(2)),
        ];
        for (wait, secs) in cases {
            assert_eq!(
                t.deadline(wait, now),
                secs.map(|s| now + Duration::from_secs(s)),
                "{wait:?}"
            );
        }
        let unbounded = Timeouts { head: None, ..t };
        assert_eq!(unbounded.deadline(Wait::PartialHead, now), None);
    }

    #[test]
    fn keep_alive_rules() {
        let base = KeepAliveInputs {
            alive: true,
            keepalive_enabled: true,
            last_request: false,
            parked: 10,
            worker_connections: 1000,
            threads: 4,
        };
        let cases = [
            (base, false),
            (
                KeepAliveInputs {
                    alive: false,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    keepalive_enabled: false,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    last_request: true,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    parked: 995,
                    ..base
                },
                false,
            ),
            (
                KeepAliveInputs {
                    parked: 996,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    worker_connections: 2,
                    threads: 4,
                    parked: 0,
                    ..base
                },
                true,
            ),
        ];
        for (inputs, want) in cases {
            assert_eq!(must_close(inputs), want, "{inputs:?}");
        }
    }
}
