//! End-to-end checks of the parser hardening (docs/http.md) through the real binary, for every
//! worker class that drives `RequestParser` / `BodyDecoder`: sync, gthread, and gevent and
//! eventlet when their libraries are installed.
//!
//! Unlike the corpus replay (`http_corpus.rs`), the client never half-closes: a request that
//! cannot complete must be answered at once, not when the peer gives up. Each case goes on its
//! own connection; the client reads the responses it expects, then checks whether the server
//! closed (an end of input within the read timeout) or kept the connection (no byte and no
//! close for a second, under the 2 s keep-alive).
//!
//! Cases, each compared with what gunicorn 27.0.1 does (status, then close or keep-alive):
//! `Transfer-Encoding: identity` framing (400, close), CONNECT (answered once, then close),
//! a coding before chunked (close), the chunk-extension grammar (400, close), a bare LF in the
//! head and in the chunked framing (400 at once), a TLS ClientHello and other heads that can
//! never become valid (400 at once), a request line over the limit (414), one CRLF before a
//! request line (ignored), and which error wins when a request has several.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use support::{python_has, skip, Gunicorn, Server};

/// How long a response may take on a loaded machine. A server that waits for bytes that never
/// come would only answer at `--timeout` (30 s) or never.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept connection must stay open and silent (below the 2 s keep-alive).
const KEPT_FOR: Duration = Duration::from_secs(1);

const GET: &str = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    Close,
    KeepAlive,
}

/// One case: bytes sent at once, the statuses of the responses in order (for a worker that
/// keeps connections; sync answers only the first and closes), then close or keep-alive.
struct Case {
    name: &'static str,
    send: Vec<u8>,
    statuses: &'static [u16],
    then: Then,
}

fn post(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("POST /p HTTP/1.1\r\nHost: a\r\n{headers}\r\n").into_bytes();
    v.extend_from_slice(body);
    v
}

fn chunked(body: &[u8]) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn cases() -> Vec<Case> {
    let g = GET.as_bytes();
    let c = |name, send, statuses, then| Case {
        name,
        send,
        statuses,
        then,
    };
    use Then::*;
    vec![
        c("plain pipelined", cat(&[g, g]), &[200, 200], KeepAlive),
        // Item 1: RFC 9112 §6.3, a final coding that is not chunked.
        c(
            "TE identity",
            post("Transfer-Encoding: identity\r\n", g),
            &[400],
            Close,
        ),
        c(
            "TE Identity twice",
            post("Transfer-Encoding: Identity, identity\r\n", g),
            &[400],
            Close,
        ),
        c(
            "TE identity in two fields",
            post(
                "Transfer-Encoding: identity\r\nTransfer-Encoding: IDENTITY\r\n",
                g,
            ),
            &[400],
            Close,
        ),
        // Item 2: what follows a CONNECT is tunnel data.
        c(
            "CONNECT",
            cat(&[
                b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
                g,
            ]),
            &[200],
            Close,
        ),
        // Item 3: the chunk-extension grammar.
        c(
            "chunk ext empty name",
            cat(&[&chunked(b"1;\r\nx\r\n0\r\n\r\n"), g]),
            &[400],
            Close,
        ),
        c(
            "chunk ext unbalanced quote",
            cat(&[&chunked(b"1;a=\"v\r\nx\r\n0\r\n\r\n"), g]),
            &[400],
            Close,
        ),
        c(
            "chunk ext space in a token",
            cat(&[&chunked(b"1;a=b c\r\nx\r\n0\r\n\r\n"), g]),
            &[400],
            Close,
        ),
        c(
            "chunk ext byte above 0x7F",
            cat(&[&chunked(b"1;a=\xe9\r\nx\r\n0\r\n\r\n"), g]),
            &[400],
            Close,
        ),
        c(
            "chunk ext quoted across the CRLF",
            cat(&[&chunked(b"1;a=\"\r\nx\r\n0\r\n\r\n\"\r\n"), g]),
            &[400],
            Close,
        ),
        c(
            "chunk ext full grammar",
            cat(&[
                &chunked(b"1 ; a = b ;c=\"d \\\" \xe9\"\r\nx\r\n0\r\n\r\n"),
                g,
            ]),
            &[200, 200],
            KeepAlive,
        ),
        // Item 4: a coding before chunked.
        c(
            "gzip, chunked",
            cat(&[
                &post(
                    "Transfer-Encoding: gzip, chunked\r\n",
                    b"1\r\nx\r\n0\r\n\r\n",
                ),
                g,
            ]),
            &[200],
            Close,
        ),
        // Item 5: a bare LF, answered at once.
        c(
            "bare LF head",
            b"GET / HTTP/1.1\nHost: a\n\n".to_vec(),
            &[400],
            Close,
        ),
        c(
            "bare LF field",
            b"GET / HTTP/1.1\r\nHost: a\n\n".to_vec(),
            &[400],
            Close,
        ),
        c(
            "bare LF after the last chunk",
            chunked(b"0\r\n\n"),
            &[400],
            Close,
        ),
        c(
            "bare LF in a trailer",
            chunked(b"0\r\nX: y\n"),
            &[400],
            Close,
        ),
        // Item 6: heads that can never become valid, answered at once.
        c(
            "TLS ClientHello",
            b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03".to_vec(),
            &[400],
            Close,
        ),
        c("binary", b"\xff\xfe\xfd".to_vec(), &[400], Close),
        c("version prefix", b"GET / XTTP".to_vec(), &[400], Close),
        // Item 8: 414.
        c(
            "request line over the limit",
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).into_bytes(),
            &[414],
            Close,
        ),
        // Item 9: one CRLF before a request line.
        c("leading CRLF", cat(&[b"\r\n", g]), &[200], KeepAlive),
        c(
            "CRLF between pipelined requests",
            cat(&[g, b"\r\n", g]),
            &[200, 200],
            KeepAlive,
        ),
        c(
            "CRLF after a body",
            cat(&[&post("Content-Length: 1\r\n", b"x\r\n"), g]),
            &[200, 200],
            KeepAlive,
        ),
        c("two leading CRLF", cat(&[b"\r\n\r\n", g]), &[400], Close),
        c("leading bare LF", cat(&[b"\n", g]), &[400], Close),
        // Item 10c: gunicorn's order when a request has several faults.
        c(
            "unknown coding and a second Host",
            post("Transfer-Encoding: foo\r\nHost: b\r\n", b""),
            &[400],
            Close,
        ),
        c(
            "unknown coding and a bad Expect",
            post("Transfer-Encoding: foo\r\nExpect: x\r\n", b""),
            &[417],
            Close,
        ),
        c(
            "bad Content-Length and an unknown coding",
            post("Content-Length: abc\r\nTransfer-Encoding: foo\r\n", b""),
            &[501],
            Close,
        ),
    ]
}

/// What one connection showed: the statuses read, and whether the server closed.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    statuses: Vec<u16>,
    then: Then,
}

/// Splits complete responses (all framed by Content-Length here) off the front of `buf`.
fn take_responses(buf: &mut Vec<u8>, statuses: &mut Vec<u16>) {
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if buf.len() < end + 4 + length {
            return;
        }
        statuses.push(status);
        buf.drain(..end + 4 + length);
    }
}

fn exchange(server: &Server, send: &[u8], want: usize) -> Seen {
    let mut s = server.connect(ANSWER_TIMEOUT);
    s.write_all(send).expect("send");
    let mut buf = Vec::new();
    let mut statuses = Vec::new();
    let mut chunk = [0u8; 16384];
    let started = Instant::now();
    // Read until the expected responses are in (or the server closes, or time runs out).
    while statuses.len() < want && started.elapsed() < ANSWER_TIMEOUT {
        match s.read(&mut chunk) {
            Ok(0) => {
                take_responses(&mut buf, &mut statuses);
                return Seen {
                    statuses,
                    then: Then::Close,
                };
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                take_responses(&mut buf, &mut statuses);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Seen {
                    statuses,
                    then: Then::Close,
                }
            }
            Err(_) => break,
        }
    }
    // Then: a close comes at once; a kept connection stays silent.
    s.set_read_timeout(Some(KEPT_FOR)).expect("timeout");
    let then = match s.read(&mut chunk) {
        Ok(0) => Then::Close,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Then::Close,
        Ok(n) => {
            // More bytes than expected: record them as responses and keep reading for the
            // close, so the mismatch shows.
            buf.extend_from_slice(&chunk[..n]);
            take_responses(&mut buf, &mut statuses);
            Then::KeepAlive
        }
        Err(_) => Then::KeepAlive,
    };
    Seen { statuses, then }
}

fn check_class(args: &[&str], keeps_alive: bool) -> Vec<String> {
    let server = Gunicorn::new()
        .args(args.iter().copied())
        .arg("echo:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let mut failures = Vec::new();
    for case in cases() {
        let want = if keeps_alive {
            Seen {
                statuses: case.statuses.to_vec(),
                then: case.then,
            }
        } else {
            // sync answers the first request and closes.
            Seen {
                statuses: case.statuses[..1].to_vec(),
                then: Then::Close,
            }
        };
        let got = exchange(&server, &case.send, want.statuses.len());
        if got != want {
            failures.push(format!(
                "{args:?} {}: got {got:?}, want {want:?}",
                case.name
            ));
        }
    }
    failures
}

#[test]
fn every_worker_class_refuses_and_closes_like_gunicorn_27() {
    let mut classes: Vec<(Vec<&str>, bool)> = vec![
        (vec!["-k", "sync"], false),
        (vec!["-k", "gthread", "--threads", "2"], true),
    ];
    for lib in ["gevent", "eventlet"] {
        if python_has(lib) {
            classes.push((vec!["-k", lib], true));
        } else {
            skip(&format!("{lib} is not installed in the test virtualenv"));
        }
    }
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = classes
            .iter()
            .map(|(args, keeps)| s.spawn(move || check_class(args, *keeps)))
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("class thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
