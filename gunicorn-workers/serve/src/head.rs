//! Reading a request head off a connection: one sans-IO core ([`HeadReader`]: bytes in,
//! a parsed head out) and its blocking form ([`read_head`]) over any read function. gthread's
//! event loop feeds the core from its non-blocking reads; sync, greenlet and the echo worker
//! call the blocking form with their own way of waiting (a socket timeout, a green socket).
//!
//! With `--protocol uwsgi` the "head" is a uWSGI packet ([`gunicorn_http::uwsgi`]): the
//! reader picks the parser from the settings, so every worker class serves either protocol
//! with the same code after the head.

use std::io;
use std::sync::Arc;

use gunicorn_http::{HttpError, Protocol, ProxyInfo, Request, RequestParser, UwsgiParser};

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

/// The parser of a connection's requests, by `--protocol`. Both have the same contract: the
/// unconsumed bytes in; "need more", a request and the bytes it used, or a final error out.
/// Kept inline, not boxed: there is one per connection, and the HTTP parser, the larger one,
/// is the common case (boxing it would cost an allocation per connection).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum HeadParser {
    Http(RequestParser),
    Uwsgi(UwsgiParser),
}

impl HeadParser {
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        match self {
            HeadParser::Http(p) => p.parse_head(buf),
            HeadParser::Uwsgi(p) => p.parse_head(buf),
        }
    }

    fn proxy_info(&self) -> Option<&ProxyInfo> {
        match self {
            HeadParser::Http(p) => p.proxy_info(),
            HeadParser::Uwsgi(p) => p.proxy_info(),
        }
    }
}

/// Accumulates the head of the next request on one connection.
///
/// Bytes are only copied into the connection's own buffer when a head arrives in pieces: the
/// common case (a whole head in one read) is parsed straight from the poller's shared read
/// buffer, so an idle connection holds no buffer at all.
#[derive(Debug)]
pub struct HeadReader {
    parser: HeadParser,
    pending: Vec<u8>,
    /// The box of a finished request ([`HeadReader::recycle`]), for the next one.
    spare: Option<Box<Request>>,
}

impl HeadReader {
    /// The reader of the connection `parser` was made for. Its settings decide the protocol:
    /// with `--protocol uwsgi` the connection's requests are read as uWSGI packets instead, by
    /// the same settings (limits, allow lists) for the same connection.
    pub fn new(parser: RequestParser) -> HeadReader {
        let parser = match parser.config().protocol {
            Protocol::Http => HeadParser::Http(parser),
            Protocol::Uwsgi => HeadParser::Uwsgi(UwsgiParser::new(
                Arc::clone(parser.config()),
                parser.conn().clone(),
            )),
        };
        HeadReader {
            parser,
            pending: Vec::new(),
            spare: None,
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

    /// Takes back a request of this connection that is done with: its box and (HTTP) its
    /// strings and field buffers serve the connection's next request, so that a kept-alive
    /// connection's requests allocate nothing for their heads (see
    /// [`RequestParser::recycle`]).
    pub fn recycle(&mut self, mut req: Box<Request>) {
        if let HeadParser::Http(p) = &mut self.parser {
            p.recycle(&mut req);
        }
        self.spare = Some(req);
    }

    /// `req` in the spare box, or a new one.
    fn boxed(&mut self, req: Request) -> Box<Request> {
        match self.spare.take() {
            Some(mut b) => {
                *b = req;
                b
            }
            None => Box::new(req),
        }
    }

    /// Takes bytes just received.
    pub fn feed(&mut self, bytes: &[u8]) -> HeadStep {
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(bytes);
            return self.parse_pending();
        }
        match self.parser.parse_head(bytes) {
            Ok(Some((req, used))) => HeadStep::Ready {
                req: self.boxed(req),
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
                    req: self.boxed(req),
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

/// What the next read of a blocking head read waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    /// The first byte of a request: the connection is idle (between keep-alive requests, or
    /// new).
    Request,
    /// The rest of a head whose first bytes came.
    RestOfHead,
}

/// How a blocking head read ended.
#[derive(Debug)]
pub enum HeadRead {
    /// A complete head, with the bytes that followed it.
    Ready {
        req: Box<Request>,
        after_head: Vec<u8>,
    },
    /// The client closed, or the read failed or timed out, before a request began: close
    /// quietly.
    Closed,
    /// A malformed head, or the input ended inside one ([`HttpError::NoMoreData`]): answer
    /// with [`crate::reject::request_error`] and close.
    Invalid(HttpError),
}

/// How much of a head is read at a time.
const READ_CHUNK: usize = 8192;

/// Reads until `reader` has a complete head. `leftover` holds bytes already read past the
/// previous request (pipelining), parsed first. `read` fills the buffer it is given, waiting
/// as its worker class waits; `EINTR` is retried, any other error ends the read as
/// [`HeadRead::Closed`] (a timeout included: the worker decides how long a read may wait).
pub fn read_head(
    reader: &mut HeadReader,
    leftover: Vec<u8>,
    mut read: impl FnMut(&mut [u8], Awaiting) -> io::Result<usize>,
) -> HeadRead {
    let mut step = reader.resume(leftover);
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        match step {
            HeadStep::Ready { req, after_head } => return HeadRead::Ready { req, after_head },
            HeadStep::Invalid(e) => return HeadRead::Invalid(e),
            HeadStep::NeedMore => {}
        }
        let awaiting = if reader.started() {
            Awaiting::RestOfHead
        } else {
            Awaiting::Request
        };
        let n = match read(&mut chunk, awaiting) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                step = HeadStep::NeedMore;
                continue;
            }
            Err(_) => return HeadRead::Closed,
        };
        if n == 0 {
            // EOF: quiet before a request (gunicorn's StopIteration), NoMoreData (logged at
            // debug, no response) part-way through one.
            return match awaiting {
                Awaiting::Request => HeadRead::Closed,
                Awaiting::RestOfHead => HeadRead::Invalid(HttpError::NoMoreData),
            };
        }
        step = reader.feed(&chunk[..n]);
    }
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
            tls: None,
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

    /// Runs the blocking read over `pieces` (each one read); returns the outcome as a short
    /// string and what each read waited for.
    fn blocking(leftover: &[u8], pieces: &[io::Result<&[u8]>]) -> (String, Vec<Awaiting>) {
        let mut r = reader();
        let mut next = 0;
        let mut seen = Vec::new();
        let out = read_head(&mut r, leftover.to_vec(), |buf, awaiting| {
            seen.push(awaiting);
            let piece = match pieces.get(next) {
                Some(Ok(p)) => *p,
                Some(Err(e)) => {
                    next += 1;
                    return Err(io::Error::new(e.kind(), "test"));
                }
                None => b"",
            };
            next += 1;
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        });
        let out = match out {
            HeadRead::Ready { req, after_head } => format!(
                "ready {} after={:?}",
                req.path,
                String::from_utf8_lossy(&after_head)
            ),
            HeadRead::Closed => "closed".into(),
            HeadRead::Invalid(e) => format!("invalid {e:?}"),
        };
        (out, seen)
    }

    #[test]
    fn blocking_reads_until_a_head_or_an_end() {
        use Awaiting::{Request as Req, RestOfHead as Rest};
        let interrupted = || Err(io::ErrorKind::Interrupted.into());
        let timed_out = || Err(io::ErrorKind::WouldBlock.into());
        // Leftover, the reads, the outcome, what each read waited for.
        type Case<'a> = (&'a [u8], Vec<io::Result<&'a [u8]>>, &'a str, Vec<Awaiting>);
        let cases: Vec<Case<'_>> = vec![
            (
                b"",
                vec![Ok(b"GET /a HTTP/1.1\r\n\r\nxy")],
                "ready /a after=\"xy\"",
                vec![Req],
            ),
            (
                b"",
                vec![Ok(b"GET /b HT"), Ok(b"TP/1.0\r\n\r\n")],
                "ready /b after=\"\"",
                vec![Req, Rest],
            ),
            // A pipelined request in the leftover needs no read at all.
            (
                b"GET /p HTTP/1.1\r\n\r\n",
                vec![],
                "ready /p after=\"\"",
                vec![],
            ),
            (
                b"GET /q HTTP/1.1\r\n",
                vec![Ok(b"\r\n")],
                "ready /q after=\"\"",
                vec![Rest],
            ),
            (b"", vec![Ok(b"")], "closed", vec![Req]),
            (
                b"",
                vec![Ok(b"GET / HTTP/1.1\r\n"), Ok(b"")],
                "invalid NoMoreData",
                vec![Req, Rest],
            ),
            (
                b"",
                vec![interrupted(), Ok(b"GET /i HTTP/1.1\r\n\r\n")],
                "ready /i after=\"\"",
                vec![Req, Req],
            ),
            (
                b"",
                vec![Ok(b"GET / HTTP/1.1\r\n"), timed_out()],
                "closed",
                vec![Req, Rest],
            ),
            (b"", vec![Ok(b"NOT HTTP\r\n\r\n")], "invalid", vec![Req]),
        ];
        for (leftover, pieces, want, waits) in cases {
            let (got, seen) = blocking(leftover, &pieces);
            assert!(got.starts_with(want), "{pieces:?}: {got}");
            assert_eq!(seen, waits, "{pieces:?}");
        }
    }

    /// A uWSGI packet with these variables.
    fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (k, v) in vars {
            for item in [k.as_bytes(), v.as_bytes()] {
                block.extend_from_slice(&(item.len() as u16).to_le_bytes());
                block.extend_from_slice(item);
            }
        }
        let mut out = vec![0];
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.push(0);
        out.extend_from_slice(&block);
        out
    }

    fn uwsgi_reader(peer: &str) -> HeadReader {
        let conn = ConnInfo {
            peer: Peer::Tcp(peer.parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        };
        let cfg = HttpConfig {
            protocol: gunicorn_http::Protocol::Uwsgi,
            ..HttpConfig::default()
        };
        HeadReader::new(RequestParser::new(Arc::new(cfg), conn))
    }

    #[test]
    fn uwsgi_packets_by_the_protocol_setting() {
        let mut input = packet(&[("PATH_INFO", "/u"), ("CONTENT_LENGTH", "2")]);
        input.extend_from_slice(b"hi");
        input.extend_from_slice(&packet(&[("PATH_INFO", "/v")]));
        // Whole, then byte by byte: the same request and the same bytes after it.
        for piece in [input.len(), 1, 3] {
            let mut r = uwsgi_reader("127.0.0.1:5000");
            let mut got = None;
            for chunk in input.chunks(piece) {
                match r.feed(chunk) {
                    HeadStep::NeedMore => assert!(r.started()),
                    HeadStep::Ready { req, after_head } => {
                        got = Some((req, after_head));
                        break;
                    }
                    HeadStep::Invalid(e) => panic!("{e}"),
                }
            }
            let (req, after) = got.expect("a request");
            assert_eq!(req.path, "/u", "pieces of {piece}");
            // Fed in pieces, the reader stops at the read that completed the packet.
            assert!(
                b"hi\0".starts_with(&after[..after.len().min(3)]),
                "{after:?}"
            );
        }
        // A pipelined packet after the body is parsed from the leftover.
        let mut r = uwsgi_reader("127.0.0.1:5000");
        let HeadStep::Ready { after_head, .. } = r.feed(&input) else {
            panic!("first packet");
        };
        match r.resume(after_head[2..].to_vec()) {
            HeadStep::Ready { req, after_head } => {
                assert_eq!((req.path.as_str(), after_head.len()), ("/v", 0))
            }
            other => panic!("{other:?}"),
        }
        // HTTP sent to a uwsgi listener, and a peer outside uwsgi_allow_ips.
        let cases: &[(&str, &[u8], u16)] = &[
            ("127.0.0.1:5000", b"GET / HTTP/1.1\r\n\r\n", 501),
            ("10.0.0.1:5000", &input, 403),
        ];
        for (peer, bytes, status) in cases {
            match uwsgi_reader(peer).feed(bytes) {
                HeadStep::Invalid(e) => assert_eq!(e.status(), *status, "{e}"),
                other => panic!("{peer}: {other:?}"),
            }
        }
        // The blocking form: EOF inside a packet is a premature end, as inside an HTTP head.
        let mut r = uwsgi_reader("127.0.0.1:5000");
        let half = input[..5].to_vec();
        let mut reads = 0;
        let out = read_head(&mut r, half, |_, _| {
            reads += 1;
            Ok(0)
        });
        assert!(
            matches!(out, HeadRead::Invalid(HttpError::NoMoreData)),
            "{out:?}"
        );
        assert_eq!(reads, 1);
    }
}
