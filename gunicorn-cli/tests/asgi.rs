//! End-to-end tests of the asgi worker (`-k asgi`) through the real binary, with the plain
//! ASGI fixture `tests/apps/asgi_app.py`:
//!
//! - HTTP: keep-alive and pipelining (thousands at once), the scope (TCP and unix socket),
//!   request bodies (Content-Length, chunked, 1 MiB, pieces as they arrive,
//!   `Expect: 100-continue`), streaming, HEAD and 16 MiB responses, many requests at once on
//!   one worker, 103 Early Hints, framing the app cannot break, the access log line (the same
//!   as the WSGI workers') and the request hooks;
//! - bad input: app errors and no response (500), malformed requests (the WSGI workers'
//!   answers), a WSGI app refused at boot (exit 4), an early response to an upload (a clean
//!   close, not a reset);
//! - the client leaving: `http.disconnect`, the disconnect grace period;
//! - the process: the uvicorn class names and a gunicorn.conf.py with preload, lifespan
//!   (state, shutdown, off, failing: exit 3), asyncio and uvloop, max_requests (and no request
//!   lost under keep-alive load), TERM under load, with an endless stream and with a
//!   WebSocket (1001), INT, a blocked loop killed at --timeout (and an awaiting request not),
//!   the keep-alive timeout.
//!
//! Frameworks (FastAPI, Starlette, Django, the `websockets` client) are in
//! `asgi_frameworks.rs`; the same requests against gunicorn 27's own `-k asgi` in
//! `asgi_differential.rs`.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{eventually, Gunicorn, Server, TempDir};

const LOG_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// `-k asgi ARGS APP` on a free port, booted.
fn asgi(args: &[&str], app: &str) -> Server {
    let server = Gunicorn::new()
        .args(["-k", "asgi"])
        .args(args.iter().copied())
        .arg(app)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

/// One response read off a kept-alive connection.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// A client connection that reads responses one at a time (1xx heads included), framed by
/// Content-Length or chunked, as a keep-alive client does.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(server: &Server) -> Client {
        Client {
            s: server.connect(READ_TIMEOUT),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    /// The next response; `head_only` for the answer to a HEAD. None when the server closed
    /// (or nothing came within the read timeout).
    fn next(&mut self, head_only: bool) -> Option<Resp> {
        loop {
            if let Some((resp, used)) = parse_one(&self.buf, head_only) {
                self.buf.drain(..used);
                return Some(resp);
            }
            // Bounded: no response of these tests comes near 64 MiB.
            if self.buf.len() > 64 << 20 {
                return None;
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closes the connection within `within` (and sends nothing more).
    fn closed_within(&mut self, within: Duration) -> bool {
        self.s.set_read_timeout(Some(within)).expect("timeout");
        let mut chunk = [0u8; 1024];
        match self.s.read(&mut chunk) {
            Ok(0) => true,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            _ => false,
        }
    }
}

/// One complete response at the front of `buf`, and how many bytes it took.
fn parse_one(buf: &[u8], head_only: bool) -> Option<(Resp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let rest = &buf[end + 4..];
    let mut resp = Resp {
        status,
        head,
        body: Vec::new(),
    };
    if head_only || (100..200).contains(&status) {
        return Some((resp, end + 4));
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let (body, used) = dechunk(rest)?;
        resp.body = body;
        return Some((resp, end + 4 + used));
    }
    let len = support::content_length(&resp.head);
    resp.body = rest.get(..len)?.to_vec();
    Some((resp, end + 4 + len))
}

/// A whole chunked body at the front of `data` (no trailers): its bytes, and the length used.
fn dechunk(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line = data[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[at..at + line]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at += line + 2;
        if size == 0 {
            // The empty trailer section.
            data.get(at..at + 2).filter(|t| *t == b"\r\n")?;
            return Some((body, at + 2));
        }
        body.extend_from_slice(data.get(at..at + size)?);
        at += size + 2;
        if data.len() < at {
            return None;
        }
    }
}

fn scope_of(server: &Server, request: &str) -> serde_json::Value {
    let r = server.send(request.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn hello_keep_alive_and_pipelined_requests_in_order() {
    let server = asgi(&[], "asgi_app:app");
    let mut c = Client::new(&server);
    // Several requests, one after the other, on one connection.
    for _ in 0..3 {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.next(false).expect("a response on the kept connection");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.body, b"Hello, world!");
        assert_eq!(r.header("Server").as_deref(), Some("gunicorn"));
        assert_ne!(r.header("Connection").as_deref(), Some("close"));
    }
    // Pipelined in one write: answered in order, each with its own body.
    let mut batch = Vec::new();
    for word in ["one", "two", "three", "four"] {
        batch.extend_from_slice(
            format!(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{word}",
                word.len()
            )
            .as_bytes(),
        );
    }
    batch.extend_from_slice(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    c.send(&batch);
    for word in ["one", "two", "three", "four"] {
        let r = c.next(false).expect("a pipelined response");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(String::from_utf8_lossy(&r.body), word);
    }
    let r = c.next(false).expect("the streamed response");
    assert_eq!(r.body, b"part0\npart1\npart2\n");
    let r = c.next(false).expect("the last response");
    assert_eq!(r.body, b"Hello, world!");
    assert_eq!(r.header("Connection").as_deref(), Some("close"));
    assert!(
        c.closed_within(READ_TIMEOUT),
        "closed after Connection: close"
    );
}

#[test]
fn the_scope_has_every_key_of_asgi_http() {
    let server = asgi(&["--root-path", "/api"], "asgi_app:app");
    let port = server.port();
    let scope = scope_of(
        &server,
        "GET /sc%6Fpe?a=1&b=%20c HTTP/1.1\r\nHost: example.org\r\nX-Mixed-Case: Some Value\r\n\
         X-Mixed-Case: second\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(scope["type"], "http");
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["method"], "GET");
    assert_eq!(scope["scheme"], "http");
    // The path is percent-decoded; raw_path and query_string are the bytes as sent.
    assert_eq!(scope["path"], "/scope");
    assert_eq!(scope["raw_path"], "/sc%6Fpe");
    assert_eq!(scope["query_string"], "a=1&b=%20c");
    assert_eq!(scope["root_path"], "/api");
    // Names lower-cased, values as sent, in order, repeated fields kept apart.
    assert_eq!(
        scope["headers"],
        serde_json::json!([
            ["host", "example.org"],
            ["x-mixed-case", "Some Value"],
            ["x-mixed-case", "second"],
            ["connection", "close"]
        ])
    );
    assert_eq!(scope["client"][0], "127.0.0.1");
    assert!(
        scope["client"][1].as_u64().is_some_and(|p| p > 0),
        "{scope}"
    );
    assert_eq!(scope["server"], serde_json::json!(["127.0.0.1", port]));
    // What the lifespan startup put in the state reaches every request.
    assert_eq!(scope["state"], serde_json::json!({"started": "yes"}));
    // HTTP/1.0 and another method.
    let scope = scope_of(&server, "DELETE /scope HTTP/1.0\r\n\r\n");
    assert_eq!(scope["http_version"], "1.0");
    assert_eq!(scope["method"], "DELETE");
    assert_eq!(scope["query_string"], "");
}

#[test]
fn request_bodies_reach_the_app() {
    let server = asgi(&[], "asgi_app:app");
    let cases: [(&[u8], &[u8]); 3] = [
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            b"hello",
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"abcde",
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            b"",
        ),
    ];
    for (req, want) in cases {
        let r = server.send(req);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(req));
        assert_eq!(r.body, want, "{}", String::from_utf8_lossy(req));
    }
}

#[test]
fn a_one_mib_upload_is_echoed_back_whole() {
    let server = asgi(&[], "asgi_app:app");
    let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for chunked in [false, true] {
        let mut s = server.connect(READ_TIMEOUT);
        let mut w = s.try_clone().expect("clone");
        let payload = body.clone();
        // Written from another thread: the server reads as the app takes the body, and a
        // client that only writes could fill both buffers.
        let writer = std::thread::spawn(move || {
            if chunked {
                w.write_all(
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                      Connection: close\r\n\r\n",
                )?;
                for part in payload.chunks(100_000) {
                    w.write_all(format!("{:x}\r\n", part.len()).as_bytes())?;
                    w.write_all(part)?;
                    w.write_all(b"\r\n")?;
                }
                w.write_all(b"0\r\n\r\n")
            } else {
                w.write_all(
                    format!(
                        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        payload.len()
                    )
                    .as_bytes(),
                )?;
                w.write_all(&payload)
            }
        });
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        writer.join().unwrap().expect("upload written");
        let r = support::parse_response(&raw).expect("a response");
        assert_eq!(r.status, 200, "chunked={chunked}");
        assert_eq!(r.body.len(), body.len(), "chunked={chunked}");
        assert!(r.body == body, "chunked={chunked}: the echo differs");
    }
}

#[test]
fn an_early_response_to_an_upload_ends_with_a_clean_close() {
    // An app that answers without reading the body (a 413 or a 401 for an upload does this):
    // the client, still sending, must read the response and then a clean end of stream, as
    // gunicorn's close_graceful (shut the sending side, read and drop what still comes, within
    // bounds) gives, not a reset that can destroy the response before it is read.
    let server = asgi(&[], "asgi_app:app");
    for size in [100_000usize, 1_000_000, 4_000_000] {
        let mut s = server.connect(READ_TIMEOUT);
        let mut w = s.try_clone().expect("clone");
        let writer = std::thread::spawn(move || {
            let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n");
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&vec![b'x'; size]);
        });
        let mut raw = Vec::new();
        let end = s.read_to_end(&mut raw);
        let _ = s.shutdown(std::net::Shutdown::Both);
        writer.join().unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{size}: {text}");
        assert!(text.ends_with("Hello, world!"), "{size}: {text}");
        assert!(
            end.is_ok(),
            "{size}: the response ended with {end:?}, not a clean close"
        );
    }
}

#[test]
fn expect_100_continue_is_answered_when_the_app_reads() {
    let server = asgi(&[], "asgi_app:app");
    let mut c = Client::new(&server);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.next(false).expect("100 Continue before the body is sent");
    assert_eq!(r.status, 100, "{}", r.head);
    c.send(b"hello");
    let r = c.next(false).expect("the final response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    // An app that answers without reading the body gets no 100 sent (RFC 9110 §10.1.1).
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    let r = c.next(false).expect("the final response");
    assert_eq!(r.status, 200, "no 100 for an app that does not read");
}

#[test]
fn streaming_responses_are_chunked_and_head_has_no_body() {
    let server = asgi(&[], "asgi_app:app");
    let r = server.get("/stream");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.text(), "part0\npart1\npart2\n");
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(raw.contains("\r\n6\r\npart0\n\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n0\r\n\r\n"), "{raw}");
    // HEAD: the head the GET would get, and not a byte of body.
    for path in ["/", "/stream", "/echo"] {
        let mut c = Client::new(&server);
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        let mut raw = Vec::new();
        let _ = c.s.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "HEAD {path}: {raw}");
        assert!(raw.ends_with("\r\n\r\n"), "HEAD {path} got a body: {raw}");
        if path == "/" {
            assert!(raw.contains("\r\ncontent-length: 13\r\n"), "{raw}");
        }
    }
    // HEAD on a kept connection: the next response follows right after the head.
    // (A HEAD's Content-Length is the GET's: no body follows, and the connection is kept.)
    for path in ["/stream", "/"] {
        let mut c = Client::new(&server);
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let head = c.next(true).expect("HEAD response");
        assert_eq!(head.status, 200);
        assert_ne!(head.header("Connection").as_deref(), Some("close"));
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let next = c
            .next(false)
            .unwrap_or_else(|| panic!("HEAD {path}: the connection was not kept"));
        assert_eq!(next.body, b"Hello, world!");
    }
}

#[test]
fn an_app_that_raises_gets_a_500_and_the_worker_keeps_serving() {
    let server = asgi(&[], "asgi_app:app");
    for _ in 0..3 {
        let r = server.get("/error");
        assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.raw));
        assert!(r.text().contains("Internal Server Error"));
        assert_eq!(r.header("Connection"), Some("close"));
    }
    let lines = server
        .wait_for("Error in ASGI application", 3, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    assert!(lines[0].contains("[ERROR]"), "{}", lines[0]);
    let out = server.output();
    assert!(out.contains("Traceback (most recent call last):"), "{out}");
    assert!(out.contains("RuntimeError: boom in the app"), "{out}");
    // An exception on a kept connection: 500, then that connection closes.
    let mut c = Client::new(&server);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /error HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.next(false).expect("hello").status, 200);
    assert_eq!(c.next(false).expect("500").status, 500);
    assert!(c.closed_within(READ_TIMEOUT));
    // The same worker goes on serving.
    assert_eq!(server.get("/").status, 200);
    assert_eq!(server.worker_pids().len(), 1, "{}", server.output());
}

#[test]
fn an_app_that_returns_without_a_response_gets_a_500() {
    let server = asgi(&[], "asgi_app:app");
    let r = server.get("/noresponse");
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.raw));
    server
        .wait_for("returned without starting a response", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    assert_eq!(server.get("/").status, 200);
}

/// Bytes sent on a fresh connection, the status the server must answer, then a close. A few
/// of the parser-hardening vectors the WSGI workers are held to (parser_hardening.rs): the
/// asgi worker uses the same parser and must be exactly as strict.
fn malformed_cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    vec![
        (
            "TE identity",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n".to_vec(),
            400,
        ),
        (
            "CL and TE",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            "two Content-Lengths",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
            400,
        ),
        (
            "chunk ext empty name",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\r\nx\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            "bare LF head",
            b"GET / HTTP/1.1\nHost: a\n\n".to_vec(),
            400,
        ),
        (
            "TLS ClientHello",
            b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03".to_vec(),
            400,
        ),
        ("version prefix", b"GET / XTTP".to_vec(), 400),
        (
            "space before colon",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(),
            400,
        ),
        (
            "request line over the limit",
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).into_bytes(),
            414,
        ),
        (
            "header field over the limit",
            format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "b".repeat(9000))
                .into_bytes(),
            431,
        ),
        (
            "two leading CRLF",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            400,
        ),
    ]
}

/// The same request for echo:app, whose route is any path.
fn echo_to_p(bytes: &[u8]) -> Vec<u8> {
    match bytes.windows(5).position(|w| w == b"/echo") {
        Some(at) => [&bytes[..at], b"/p", &bytes[at + 5..]].concat(),
        None => bytes.to_vec(),
    }
}

#[test]
fn malformed_requests_get_the_wsgi_workers_answers() {
    let server = asgi(&[], "asgi_app:app");
    let mut failures = Vec::new();
    for (name, bytes, want) in malformed_cases() {
        let mut c = Client::new(&server);
        c.send(&bytes);
        let got = c.next(false).map(|r| r.status);
        let closed = c.closed_within(Duration::from_secs(5));
        if got != Some(want) || !closed {
            failures.push(format!("{name}: got {got:?} closed={closed}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The app never saw any of them, and the worker serves on.
    assert!(
        !server.output().contains("Error in ASGI"),
        "{}",
        server.output()
    );
    assert_eq!(server.get("/").status, 200);
    // The same bytes to the sync worker give the same statuses.
    // (echo:app reads the body, as /echo does.)
    let sync = Gunicorn::new().arg("echo:app").bind_free_port().spawn();
    sync.wait_booted(1);
    for (name, bytes, want) in malformed_cases() {
        let bytes = echo_to_p(&bytes);
        let mut c = Client::new(&sync);
        c.send(&bytes);
        assert_eq!(c.next(false).map(|r| r.status), Some(want), "sync: {name}");
    }
}

#[test]
fn a_client_that_leaves_mid_request_is_an_http_disconnect_for_the_app() {
    let dir = TempDir::new("asgi-disconnect");
    let mark = dir.path().join("disconnected");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "--graceful-timeout", "20", "asgi_app:app"])
        .env("ASGI_DISCONNECT_MARK", &mark)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    // A GET: the app gets its (empty) body, then waits for http.disconnect.
    let mut c = Client::new(&server);
    c.send(b"GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!mark.exists(), "http.disconnect before the client left");
    drop(c);
    assert!(
        eventually(LOG_TIMEOUT, || mark.exists()),
        "the app never saw http.disconnect\n{}",
        server.output()
    );
    // A body cut short: the app waiting for the rest sees the disconnect too.
    let _ = std::fs::remove_file(&mark);
    let mut c = Client::new(&server);
    c.send(b"POST /disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial");
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    assert!(
        eventually(LOG_TIMEOUT, || mark.exists()),
        "no http.disconnect for a cut body\n{}",
        server.output()
    );
    assert_eq!(server.get("/").status, 200);
    // A client that only shuts its write side after its request still gets the response,
    // from an app that does not wait for the disconnect.
    for path in ["/", "/sleep?0.2", "/stream"] {
        let mut c = Client::new(&server);
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        c.s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let r = c
            .next(false)
            .unwrap_or_else(|| panic!("{path}: no response after half-close"));
        assert_eq!(r.status, 200, "{path}");
        assert!(c.closed_within(READ_TIMEOUT), "{path}");
    }
    // The app that saw the client leave did not log an error.
    assert!(!server.output().contains("[ERROR]"), "{}", server.output());
    // No connection of a client that left is still open: TERM finds nothing to wait for.
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(STOP_TIMEOUT).is_some_and(|s| s.success()));
    assert!(
        !server.output().contains("graceful timeout"),
        "a closed client's connection stayed open\n{}",
        server.output()
    );
}

#[test]
fn early_hints_come_before_the_response_on_http_1_1_only() {
    let server = asgi(&[], "asgi_app:app");
    let r = server.get("/hints");
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(
        raw.starts_with(
            "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n\
             HTTP/1.1 200 OK\r\n"
        ),
        "{raw}"
    );
    assert!(raw.ends_with("Hello, world!"), "{raw}");
    // An HTTP/1.0 client does not understand 1xx: it gets none.
    let r = server.send(b"GET /hints HTTP/1.0\r\n\r\n");
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(raw.starts_with("HTTP/1.0 200 OK\r\n"), "{raw}");
    assert!(!raw.contains("103"), "{raw}");
}

/// The access log line of `request` under `-k CLASS APP` with `format` (None: the default).
fn access_line(class: &str, app: &str, format: Option<&str>, request: &[u8]) -> String {
    let mut g = Gunicorn::new()
        .args(["-k", class, "--access-logfile", "-"])
        .bind_free_port();
    if let Some(f) = format {
        g = g.args(["--access-logformat", f]);
    }
    let server = g.arg(app).spawn();
    server.wait_booted(1);
    let r = server.send(request);
    assert_eq!(r.status, 200, "{class}");
    let lines = server
        .wait_for("GET /?q=1", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{class}: no access line\n{}", server.output()));
    lines[0].clone()
}

#[test]
fn the_access_log_line_is_the_wsgi_workers_line() {
    let request = b"GET /?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1.0\r\n\
                    Referer: http://ref.example/\r\nX-Test: yes\r\n\
                    Authorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n";
    let format = "%(h)s %(l)s %(u)s \"%(r)s\" %(s)s %(b)s %(B)s \"%(f)s\" \"%(a)s\" %(m)s %(U)s \
                  %(q)s %(H)s %({x-test}i)s %({content-type}o)s %({content-length}o)s";
    let asgi = access_line("asgi", "asgi_app:app", Some(format), request);
    for class in ["sync", "gthread"] {
        let wsgi = access_line(class, "asgi_app:wsgi_app", Some(format), request);
        assert_eq!(asgi, wsgi, "asgi vs {class}");
    }
    assert_eq!(
        asgi,
        "127.0.0.1 - user \"GET /?q=1 HTTP/1.1\" 200 13 13 \"http://ref.example/\" \
         \"probe/1.0\" GET / q=1 HTTP/1.1 yes text/plain 13"
    );
    // The default format, the time stamp aside.
    let strip = |l: String| {
        let (a, rest) = l.split_once(" [").expect("a time stamp");
        let (_, b) = rest.split_once("] ").expect("a time stamp");
        format!("{a} {b}")
    };
    let asgi = strip(access_line("asgi", "asgi_app:app", None, request));
    let sync = strip(access_line("sync", "asgi_app:wsgi_app", None, request));
    assert_eq!(asgi, sync);
}

#[test]
fn the_uvicorn_worker_class_names_are_served_by_the_asgi_worker() {
    for name in [
        "uvicorn.workers.UvicornWorker",
        "uvicorn_worker.UvicornWorker",
    ] {
        let server = asgi_named(name);
        server
            .wait_for(
                &format!("Worker class {name} is served by the native asgi worker"),
                1,
                LOG_TIMEOUT,
            )
            .unwrap_or_else(|| panic!("{name}: no alias line\n{}", server.output()));
        let r = server.get("/");
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.text(), "Hello, world!");
    }
}

fn asgi_named(class: &str) -> Server {
    let server = Gunicorn::new()
        .args(["-k", class, "asgi_app:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

#[test]
fn a_wsgi_app_given_to_k_asgi_is_refused_at_boot_with_one_line() {
    let out = Gunicorn::new()
        .args(["-k", "asgi", "asgi_app:wsgi_app"])
        .bind_free_port()
        .run();
    assert_eq!(out.code(), Some(4), "{out:?}");
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WSGI application"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("-k asgi needs an ASGI application"),
        "{text}"
    );
    assert!(!text.contains("Traceback"), "{text}");
    assert!(text.contains("Reason: App failed to load."), "{text}");
    // The same shape as the CLI's other app-load errors: one bare line, exit 4.
    let other = Gunicorn::new()
        .args(["-k", "asgi", "asgi_app:nothere"])
        .bind_free_port()
        .run();
    assert_eq!(other.code(), Some(4), "{other:?}");
    assert!(other
        .stderr
        .contains("\nFailed to find attribute 'nothere' in 'asgi_app'.\n"));
    assert!(
        text.contains("\nApplication object is a WSGI application"),
        "{text}"
    );
    // Not callable at all: the same exit.
    let out = Gunicorn::new()
        .args(["-k", "asgi", "asgi_app:STARTED"])
        .bind_free_port()
        .run();
    assert_eq!(out.code(), Some(4), "{out:?}");
    assert!(
        out.stderr.contains("Application object must be callable."),
        "{out:?}"
    );
}

#[test]
fn lifespan_startup_state_and_shutdown_on_term() {
    let dir = TempDir::new("asgi-lifespan");
    let mark = dir.path().join("shutdown");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "asgi_app:app"])
        .env("ASGI_SHUTDOWN_MARK", &mark)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let scope = scope_of(&server, &support::get_request("/scope"));
    assert_eq!(scope["state"]["started"], "yes");
    assert!(!mark.exists());
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(STOP_TIMEOUT).expect("the master exits");
    assert!(status.success(), "{status:?}\n{}", server.output());
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap_or_default(),
        "shutdown\n",
        "lifespan.shutdown did not run\n{}",
        server.output()
    );
}

#[test]
fn lifespan_off_skips_it() {
    let dir = TempDir::new("asgi-lifespan-off");
    let mark = dir.path().join("shutdown");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "--asgi-lifespan", "off", "asgi_app:app"])
        .env("ASGI_SHUTDOWN_MARK", &mark)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let scope = scope_of(&server, &support::get_request("/scope"));
    assert!(scope["state"].get("started").is_none(), "{scope}");
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(STOP_TIMEOUT).is_some_and(|s| s.success()));
    assert!(
        !mark.exists(),
        "lifespan.shutdown ran with --asgi-lifespan off"
    );
}

#[test]
fn a_failing_lifespan_startup_stops_the_server_with_exit_3() {
    // The app says startup failed: the worker does not serve, the master halts with 3.
    for mode in ["on", "auto"] {
        let out = Gunicorn::new()
            .args([
                "-k",
                "asgi",
                "--asgi-lifespan",
                mode,
                "asgi_app:failing_startup",
            ])
            .bind_free_port()
            .run();
        assert_eq!(out.code(), Some(3), "{mode}: {out:?}");
        assert!(
            out.stderr
                .contains("ASGI lifespan startup failed: no database"),
            "{mode}: {out:?}"
        );
        assert!(
            out.stderr.contains("Reason: Worker failed to boot."),
            "{out:?}"
        );
    }
    // An app that does not speak lifespan: `on` insists (exit 3), `auto` serves without it.
    let out = Gunicorn::new()
        .args([
            "-k",
            "asgi",
            "--asgi-lifespan",
            "on",
            "asgi_app:no_lifespan",
        ])
        .bind_free_port()
        .run();
    assert_eq!(out.code(), Some(3), "{out:?}");
    let server = asgi(&["--asgi-lifespan", "auto"], "asgi_app:no_lifespan");
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn asyncio_and_uvloop_both_serve() {
    for (lp, line) in [
        ("asyncio", "Using asyncio event loop"),
        ("uvloop", "Using uvloop event loop"),
    ] {
        let server = asgi(&["--asgi-loop", lp, "--log-level", "debug"], "asgi_app:app");
        server
            .wait_for(line, 1, LOG_TIMEOUT)
            .unwrap_or_else(|| panic!("{lp}: {}", server.output()));
        let mut c = Client::new(&server);
        for _ in 0..3 {
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
            let r = c.next(false).unwrap_or_else(|| panic!("{lp}"));
            assert_eq!(r.body, b"ok", "{lp}");
        }
        assert_eq!(server.get("/stream").text(), "part0\npart1\npart2\n");
    }
}

fn pid_on(c: &mut Client) -> (i32, Resp) {
    c.send(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.next(false).expect("a /pid response");
    assert_eq!(r.status, 200);
    let pid = String::from_utf8_lossy(&r.body).parse().expect("a pid");
    (pid, r)
}

#[test]
fn max_requests_recycles_the_worker() {
    let server = asgi(&["--max-requests", "3"], "asgi_app:app");
    let mut c = Client::new(&server);
    let (first, r) = pid_on(&mut c);
    assert_ne!(r.header("Connection").as_deref(), Some("close"));
    pid_on(&mut c);
    // The third request is the worker's last: it says so and closes.
    let (third, r) = pid_on(&mut c);
    assert_eq!(first, third);
    assert_eq!(
        r.header("Connection").as_deref(),
        Some("close"),
        "{}",
        r.head
    );
    assert!(c.closed_within(READ_TIMEOUT));
    server
        .wait_for(
            "Autorestarting worker after current request.",
            1,
            LOG_TIMEOUT,
        )
        .unwrap_or_else(|| panic!("{}", server.output()));
    server.wait_booted(2);
    let mut c = Client::new(&server);
    let (next, _) = pid_on(&mut c);
    assert_ne!(next, first, "a new worker serves");
}

#[test]
fn graceful_term_under_load_loses_no_request() {
    const CLIENTS: usize = 6;
    let server = asgi(&["-w", "2", "--graceful-timeout", "20"], "asgi_app:app");
    server.wait_booted(2);
    let port = server.port();
    let ok = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (ok, lost, stop) = (ok.clone(), lost.clone(), stop.clone());
            std::thread::spawn(move || {
                // Bounded: until told to stop, at most 2 000 requests or 30 s.
                for n in 0..2000 {
                    if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    // Half the clients' requests are in the app (sleeping) when TERM comes.
                    let path = if (i + n) % 2 == 0 { "/sleep?0.2" } else { "/" };
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        // Refused: the listeners are closed, nothing was sent.
                        break;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                    let req =
                        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                    let mut raw = Vec::new();
                    let sent = s.write_all(req.as_bytes());
                    let read = s.read_to_end(&mut raw);
                    match support::parse_response(&raw) {
                        Some(r) if r.status == 200 && sent.is_ok() && read.is_ok() => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => lost.lock().unwrap().push(format!(
                            "{path}: {sent:?} {read:?} {:?}",
                            String::from_utf8_lossy(&raw)
                        )),
                    }
                }
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(20), || ok.load(Ordering::SeqCst) >= 40),
        "the load never got going\n{}",
        server.output()
    );
    // No new request starts after this; those in flight must all be answered.
    stop.store(true, Ordering::SeqCst);
    server.signal(Signal::SIGTERM);
    for t in threads {
        t.join().unwrap();
    }
    let status = server.wait_exit(STOP_TIMEOUT).expect("the master exits");
    let lost = lost.lock().unwrap();
    assert!(
        lost.is_empty(),
        "{} lost:\n{}\n{}",
        lost.len(),
        lost.join("\n"),
        server.output()
    );
    assert!(status.success(), "{status:?}\n{}", server.output());
}

#[test]
fn a_request_that_blocks_the_loop_past_the_timeout_gets_the_worker_replaced() {
    let server = asgi(&["--timeout", "2"], "asgi_app:app");
    let first = server.worker_pids()[0];
    let mut c = Client::new(&server);
    c.send(b"GET /block?60 HTTP/1.1\r\nHost: x\r\n\r\n");
    server
        .wait_for("WORKER TIMEOUT", 1, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the blocked worker was not killed\n{}", server.output()));
    // The blocked request's connection ends without a response.
    assert!(c.next(false).is_none(), "a response from a killed worker");
    server.wait_booted(2);
    assert!(eventually(LOG_TIMEOUT, || !support::alive(first)));
    let r = server.get("/");
    assert_eq!(r.status, 200);
}

#[test]
fn idle_keep_alive_connections_close_after_the_keep_alive_timeout() {
    let server = asgi(&["--keep-alive", "1"], "asgi_app:app");
    let mut c = Client::new(&server);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.next(false).expect("first").status, 200);
    // Right away, the connection is still kept.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.next(false).expect("second").status, 200);
    // Then, idle: the server closes it (checked by the once-a-second heartbeat).
    assert!(
        c.closed_within(Duration::from_secs(10)),
        "an idle connection outlived --keep-alive 1"
    );
    // --keep-alive 0: every response closes.
    let server = asgi(&["--keep-alive", "0"], "asgi_app:app");
    let mut c = Client::new(&server);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.next(false).expect("response");
    assert_eq!(
        r.header("Connection").as_deref(),
        Some("close"),
        "{}",
        r.head
    );
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn an_app_that_ignores_the_disconnect_is_cancelled_after_the_grace_period() {
    let dir = TempDir::new("asgi-grace");
    let mark = dir.path().join("cancelled");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "--asgi-disconnect-grace-period", "1"])
        .arg("asgi_app:app")
        .env("ASGI_CANCEL_MARK", &mark)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let mut c = Client::new(&server);
    c.send(b"GET /cancelled HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    // The task sleeps for a minute unless the server cancels it.
    assert!(
        eventually(LOG_TIMEOUT, || mark.exists()),
        "the task outlived the grace period\n{}",
        server.output()
    );
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn a_large_response_reaches_a_slow_reader_whole() {
    // 16 MiB, far over the transport's buffer: send() waits for it to drain (asyncio's write
    // flow control) instead of buffering without bound or losing bytes.
    let server = asgi(&[], "asgi_app:app");
    let mut c = Client::new(&server);
    c.send(b"GET /big?64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let mut chunk = vec![0u8; 65536];
    let started = Instant::now();
    loop {
        match c.s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("after {} bytes: {e}", raw.len()),
        }
        // Slow at first: the server's buffer fills and its sends must wait.
        if started.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let r = support::parse_response(&raw).expect("a response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 64 * 262_144);
    for (i, part) in r.body.chunks(262_144).enumerate() {
        let want = b'A' + (i % 26) as u8;
        assert!(part.iter().all(|&b| b == want), "chunk {i} is damaged");
    }
}

#[test]
fn thousands_of_pipelined_requests_are_all_answered_in_order() {
    // More pipelined bytes than the connection buffers (reading pauses, then resumes as the
    // responses go out), with bodies among them.
    let server = asgi(&[], "asgi_app:app");
    let mut c = Client::new(&server);
    let mut batch = Vec::new();
    let n = 3000;
    for i in 0..n {
        if i % 3 == 0 {
            let body = format!("{i}");
            batch.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        } else {
            batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        }
    }
    let mut w = c.s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || w.write_all(&batch));
    for i in 0..n {
        let r = c
            .next(false)
            .unwrap_or_else(|| panic!("no response {i} of {n}\n{}", server.output()));
        assert_eq!(r.status, 200, "{i}");
        if i % 3 == 0 {
            assert_eq!(String::from_utf8_lossy(&r.body), i.to_string(), "{i}");
        } else {
            assert_eq!(r.body, b"Hello, world!", "{i}");
        }
    }
    writer.join().unwrap().expect("requests written");
}

#[test]
fn term_closes_an_open_websocket_with_1001() {
    let server = asgi(&["--graceful-timeout", "20"], "asgi_app:app");
    let mut c = Client::new(&server);
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let r = c.next(true).expect("the handshake's answer");
    assert_eq!(r.status, 101, "{}", r.head);
    // A masked text frame "hi" (RFC 6455 §5.3), echoed unmasked.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x82];
    frame.extend_from_slice(&mask);
    frame.extend(b"hi".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    c.send(&frame);
    let mut got = [0u8; 4];
    c.s.read_exact(&mut got).expect("the echo");
    assert_eq!(got, [0x81, 0x02, b'h', b'i']);
    server.signal(Signal::SIGTERM);
    // Close, code 1001 "going away" (RFC 6455 §7.4.1).
    let mut close = [0u8; 4];
    c.s.read_exact(&mut close).expect("a close frame");
    assert_eq!(close, [0x88, 0x02, 0x03, 0xE9], "{close:?}");
    // Our close answered: the server ends the connection and exits.
    let mut reply = vec![0x88, 0x82];
    reply.extend_from_slice(&mask);
    reply.extend([0x03u8, 0xE9].iter().zip(mask.iter()).map(|(b, m)| b ^ m));
    c.send(&reply);
    assert!(c.closed_within(READ_TIMEOUT));
    let status = server.wait_exit(STOP_TIMEOUT).expect("the master exits");
    assert!(status.success(), "{status:?}\n{}", server.output());
    assert!(
        !server.output().contains("graceful timeout"),
        "{}",
        server.output()
    );
}

/// `clients` threads send `GET /` for `time` (bounded), on kept-alive connections reopened
/// only after a `Connection: close` response or a close, as an HTTP client does. Returns
/// (answered, lost): a request written on a connection the server closed without answering
/// it is lost.
fn keep_alive_load(port: u16, clients: usize, time: Duration) -> (usize, Vec<String>) {
    let ok = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(Mutex::new(Vec::new()));
    let end = Instant::now() + time;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (ok, lost) = (ok.clone(), lost.clone());
            std::thread::spawn(move || {
                let mut conn: Option<Client> = None;
                for _ in 0..100_000 {
                    if Instant::now() >= end {
                        break;
                    }
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => {
                            let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
                                lost.lock().unwrap().push("connect refused".to_string());
                                continue;
                            };
                            s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
                            conn.insert(Client { s, buf: Vec::new() })
                        }
                    };
                    if c.s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_err() {
                        lost.lock().unwrap().push("write failed".to_string());
                        conn = None;
                        continue;
                    }
                    match c.next(false) {
                        Some(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if r.header("Connection").as_deref() == Some("close") {
                                conn = None;
                            }
                        }
                        other => {
                            lost.lock().unwrap().push(format!("{other:?}"));
                            conn = None;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let lost = lost.lock().unwrap().clone();
    (ok.load(Ordering::SeqCst), lost)
}

#[test]
fn max_requests_recycling_under_keep_alive_load_loses_no_request() {
    let server = asgi(
        &[
            "-w",
            "2",
            "--max-requests",
            "60",
            "--max-requests-jitter",
            "10",
        ],
        "asgi_app:app",
    );
    server.wait_booted(2);
    let (ok, lost) = keep_alive_load(server.port(), 6, Duration::from_secs(4));
    assert!(ok > 200, "only {ok} answered\n{}", server.output());
    assert!(
        server.worker_pids().len() > 2,
        "no worker recycled\n{}",
        server.output()
    );
    assert!(
        lost.is_empty(),
        "{} of {} lost: {:?}",
        lost.len(),
        ok + lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn a_request_sent_on_a_kept_alive_connection_while_draining_is_answered() {
    // The race behind lost requests on a recycle: the next request on a kept-alive connection
    // arrives just as the worker starts a graceful stop. It is answered, with
    // Connection: close, instead of the connection being closed under it.
    let server = asgi(&["--keep-alive", "60"], "asgi_app:app");
    let mut kept = Client::new(&server);
    kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(kept.next(false).expect("first").status, 200);
    // A request in flight keeps the worker draining for a while.
    let mut busy = Client::new(&server);
    busy.send(b"GET /sleep?2 HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = kept.next(false).expect("the request sent while draining");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Connection").as_deref(),
        Some("close"),
        "{}",
        r.head
    );
    assert!(kept.closed_within(READ_TIMEOUT));
    assert_eq!(busy.next(false).expect("the request in flight").status, 200);
    let status = server.wait_exit(STOP_TIMEOUT).expect("the master exits");
    assert!(status.success(), "{status:?}\n{}", server.output());
}

#[test]
fn pre_request_and_post_request_run_around_each_request() {
    let conf = support::fixtures_dir().join("asgi_hooks_conf.py");
    let server = asgi(&["-c", conf.to_str().unwrap()], "asgi_app:app");
    assert_eq!(server.get("/scope?x=1").status, 200);
    assert_eq!(server.get("/error").status, 500);
    let r = server.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(r.text(), "abc");
    server
        .wait_for("POST POST /echo", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    let out = server.output();
    let hooks: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("PRE ") || l.starts_with("POST "))
        .collect();
    assert_eq!(
        hooks,
        [
            "PRE GET /scope?x=1",
            "POST GET /scope 200 OK",
            "PRE GET /error?",
            "POST GET /error 500 Internal Server Error",
            "PRE POST /echo?",
            "POST POST /echo 200 OK",
        ],
        "{out}"
    );
}

#[test]
fn responses_that_would_break_the_framing_are_refused_or_cut() {
    let server = asgi(&[], "asgi_app:app");
    // A CR LF in a header value: a 500, and no injected field.
    let r = server.get("/inject");
    assert_eq!(r.status, 500);
    assert!(!String::from_utf8_lossy(&r.raw).contains("X-Injected"));
    server
        .wait_for("Error in ASGI application", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    // A body longer than its Content-Length: cut at the length, and the next response on the
    // connection is intact.
    let mut c = Client::new(&server);
    c.send(b"GET /overlong HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.next(false).expect("overlong").body, b"01234");
    let r = c.next(false).expect("the next response");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, b"Hello, world!");
}

#[test]
fn on_a_unix_socket_the_scope_has_no_client_and_the_path_as_server() {
    let dir = TempDir::new("asgi-unix");
    let sock = dir.path().join("s.sock");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "-b", &format!("unix:{}", sock.display())])
        .arg("asgi_app:app")
        .spawn();
    server.wait_booted(1);
    assert!(eventually(LOG_TIMEOUT, || sock.exists()));
    let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    let r = support::exchange(&mut s, support::get_request("/scope").as_bytes());
    assert_eq!(r.status, 200);
    let scope: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    // ASGI: `client` None for a unix socket, `server` [path, None]. (gunicorn 27 gives a
    // two-character split of the path as server.)
    assert_eq!(scope["client"], serde_json::Value::Null);
    assert_eq!(
        scope["server"],
        serde_json::json!([sock.to_str().unwrap(), null])
    );
}

#[test]
fn term_with_an_endless_stream_cuts_it_at_the_graceful_timeout_and_runs_the_shutdown() {
    let dir = TempDir::new("asgi-forever");
    let mark = dir.path().join("shutdown");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "--graceful-timeout", "3", "asgi_app:app"])
        .env("ASGI_SHUTDOWN_MARK", &mark)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let mut c = Client::new(&server);
    c.send(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut first = [0u8; 256];
    let n = c.s.read(&mut first).expect("the stream starts");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200 OK"));
    server.signal(Signal::SIGTERM);
    // The stream goes on during the drain, then is cut: its connection ends.
    let mut sink = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(30);
    let cut = loop {
        if Instant::now() > deadline {
            break false;
        }
        match c.s.read(&mut sink) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(cut, "the endless stream was never cut");
    let status = server.wait_exit(STOP_TIMEOUT).expect("the master exits");
    assert!(status.success(), "{status:?}\n{}", server.output());
    assert!(
        server.output().contains("graceful timeout"),
        "{}",
        server.output()
    );
    // The lifespan shutdown still ran.
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap_or_default(),
        "shutdown\n"
    );
}

#[test]
fn int_stops_at_once_without_waiting_for_requests() {
    let dir = TempDir::new("asgi-int");
    let mark = dir.path().join("shutdown");
    let server = Gunicorn::new()
        .args(["-k", "asgi", "--graceful-timeout", "60", "asgi_app:app"])
        .env("ASGI_SHUTDOWN_MARK", &mark)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let mut c = Client::new(&server);
    c.send(b"GET /sleep?50 HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGINT);
    // The request in flight is dropped rather than waited for (it sleeps 50 s; the graceful
    // timeout is 60 s): the connection ends well before either.
    // (Read with a bound below the app's 50 s: an end of stream, not a timeout.)
    assert!(
        c.closed_within(Duration::from_secs(40)),
        "the request in flight was waited for"
    );
    let status = server.wait_exit(STOP_TIMEOUT).expect("the master exits");
    assert!(status.success(), "{status:?}\n{}", server.output());
    // A quick stop skips the lifespan shutdown, as gunicorn 27's does.
    assert!(!mark.exists());
}

#[test]
fn a_config_file_naming_the_uvicorn_class_with_preload_serves() {
    // The usual FastAPI deployment: gunicorn.conf.py with uvicorn's class, several workers,
    // and --preload (the app imported in the master, each worker making its own loop).
    let dir = TempDir::new("asgi-conf");
    let conf = dir.write(
        "gunicorn.conf.py",
        "worker_class = \"uvicorn.workers.UvicornWorker\"\nworkers = 2\npreload_app = True\n",
    );
    let server = Gunicorn::new()
        .args(["-c", conf.to_str().unwrap(), "asgi_app:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    server
        .wait_for("is served by the native asgi worker", 2, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    let scope = scope_of(&server, &support::get_request("/scope"));
    assert_eq!(scope["state"]["started"], "yes");
    // Every answer comes from one of the two workers.
    let workers: Vec<String> = server.worker_pids().iter().map(|p| p.to_string()).collect();
    for _ in 0..10 {
        let r = server.get("/pid");
        assert_eq!(r.status, 200);
        assert!(
            workers.contains(&r.text()),
            "{} not in {workers:?}",
            r.text()
        );
    }
}

#[test]
fn one_worker_serves_many_requests_at_once() {
    // 50 requests that each wait until all 50 are in: they all get 200 only if one worker
    // (one event loop) holds them at the same time.
    let server = asgi(&[], "asgi_app:app");
    let port = server.port();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                support::send_to(
                    std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    support::get_request("/barrier?50").as_bytes(),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

#[test]
fn request_body_pieces_reach_the_app_as_they_arrive() {
    // A chunked upload answered piece by piece (more_body): the client sends a chunk only
    // after the previous one came back, so a server that waited for the whole body before
    // handing it to the app would stall here.
    let server = asgi(&[], "asgi_app:app");
    let mut c = Client::new(&server);
    c.send(b"POST /duplex HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut echoed = Vec::new();
    for word in ["alpha", "beta", "gamma"] {
        c.send(format!("{:x}\r\n{word}\r\n", word.len()).as_bytes());
        let want = [echoed.as_slice(), word.as_bytes()].concat();
        // Read until this piece came back (chunk framing and all).
        let deadline = Instant::now() + READ_TIMEOUT;
        while !String::from_utf8_lossy(&c.buf).contains(word) {
            assert!(Instant::now() < deadline, "{word} never came back");
            let mut chunk = [0u8; 4096];
            let n = c.s.read(&mut chunk).expect("the response streams");
            assert!(n > 0, "closed before {word}");
            c.buf.extend_from_slice(&chunk[..n]);
        }
        echoed = want;
    }
    c.send(b"0\r\n\r\n");
    // The whole response, as the keep-alive client reads it.
    let r = c.next(false).expect("the complete response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, echoed);
}

#[test]
fn an_awaiting_request_longer_than_the_timeout_does_not_kill_the_worker() {
    // The heartbeat runs on the loop: a request that awaits (asyncio.sleep) past --timeout is
    // no blocked loop, and is answered by the same worker.
    let server = asgi(&["--timeout", "2"], "asgi_app:app");
    let r = server.get("/sleep?4");
    assert_eq!(r.status, 200);
    assert!(
        !server.output().contains("WORKER TIMEOUT"),
        "{}",
        server.output()
    );
    assert_eq!(server.worker_pids().len(), 1, "{}", server.output());
}
