//! End-to-end tests of the gthread worker's connection handling (issue 5, parts 1, 2 and 4):
//! keep-alive, pipelining, `Connection: close` and HTTP/1.0, the keep-alive timeout, the
//! `--threads` pool running requests in parallel, `--worker-connections`, slow clients, and
//! errors. Every wait is bounded; nothing asserts how long something took.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Gunicorn, Server, TempDir};

/// The test application, written to a temp dir per test.
const APP: &str = r#"
import os, threading, time

BARRIER = {}
KEPT = {}

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/sleep/"):
        time.sleep(float(path.split("/")[2]))
    elif path.startswith("/barrier/"):
        # Passes only when N requests run at the same time (proves the pool's parallelism
        # without measuring time).
        n = int(path.split("/")[2])
        b = BARRIER.setdefault(n, threading.Barrier(n, timeout=30))
        b.wait()
    elif path == "/boom":
        raise ValueError("boom from the app")
    elif path == "/body":
        data = environ["wsgi.input"].read()
        body = b"got %d" % len(data)
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    elif path == "/ignore-body":
        pass
    elif path == "/hold":
        # Runs until the test creates the file named by the query (at most 30 s).
        for _ in range(600):
            if os.path.exists(environ["QUERY_STRING"]):
                path += " released"
                break
            time.sleep(0.05)
    elif path in ("/sock", "/sock-close"):
        sock = environ["gunicorn.socket"]
        body = ("%d %d %d" % (id(sock), sock.fileno() >= 0, sock.getpeername()[1])).encode()
        if path == "/sock-close":
            sock.close()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    elif path == "/headers":
        # One X-<name> header per name in the query ("a,b"), and a status named by it.
        names = [n for n in environ["QUERY_STRING"].split(",") if n]
        headers = [("X-" + n, n * 3) for n in names] + [("Content-Length", "2")]
        start_response("%d Named %s" % (200 + len(names), "".join(names)), headers)
        return [b"ok"]
    elif path.startswith("/env"):
        keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_HOST", "SERVER_PROTOCOL")
        body = " ".join("%s=%s" % (k, environ.get(k)) for k in keys).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    elif path == "/keep-input":
        # The app keeps its request's wsgi.input past the request.
        environ["wsgi.input"].read()
        KEPT["input"] = environ["wsgi.input"]
    elif path == "/old-input":
        try:
            got = repr(KEPT["input"].read())
        except Exception as e:
            got = type(e).__name__
        body = ("old input: " + got).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    elif path == "/marker":
        open(environ["QUERY_STRING"], "w").close()
        time.sleep(2)
    body = ("%s pid=%d mt=%s" % (path, os.getpid(), environ["wsgi.multithread"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

fn app_dir() -> TempDir {
    let dir = TempDir::new("gthread");
    dir.write("gtapp.py", APP);
    dir
}

/// A gthread server with one worker on the test app.
fn server(dir: &TempDir, extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-k", "gthread", "-w", "1"])
        .args(extra)
        .arg("gtapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

/// How long a read on a test's own connection may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One response read off a connection that may stay open.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Reads responses with Content-Length bodies from a kept-alive connection.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    fn new(stream: TcpStream) -> Reader {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("send");
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 8192];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// The next response, or None if the connection closed (or timed out) first.
    fn response(&mut self) -> Option<Resp> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let len = support::content_length(&head);
        while self.buf.len() < end + 4 + len {
            if !self.fill() {
                return None;
            }
        }
        let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
        self.buf.drain(..end + 4 + len);
        Some(Resp { status, head, body })
    }

    /// True when the server closed the connection (EOF) with nothing more sent.
    fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let dir = app_dir();
    let server = server(&dir, &["--threads", "2"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    let mut pids = Vec::new();
    for i in 0..5 {
        conn.send(get(&format!("/r{i}")).as_bytes());
        let r = conn
            .response()
            .expect("response on the kept-alive connection");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.starts_with(&format!("/r{i} ")), "{r:?}");
        assert_eq!(
            r.header("Connection").as_deref(),
            Some("keep-alive"),
            "{r:?}"
        );
        assert!(r.body.ends_with("mt=True"), "wsgi.multithread: {r:?}");
        pids.push(r.body.split("pid=").nth(1).unwrap().to_string());
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one worker served them all");
}

#[test]
fn pipelined_requests_are_answered_in_order_without_waiting() {
    let dir = app_dir();
    // A long keep-alive: a request stalled in the buffer would wait for it (or forever).
    let server = server(&dir, &["--threads", "4", "--keep-alive", "60"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    let mut batch = String::new();
    for p in ["/a", "/b", "/c"] {
        batch.push_str(&get(p));
    }
    // A POST with a body in the middle of the pipeline.
    batch.push_str("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    batch.push_str(&get("/d"));
    conn.send(batch.as_bytes());
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = conn
            .response()
            .expect("every pipelined request is answered");
        assert_eq!(r.status, 200, "{r:?}");
        seen.push(r.body.split(' ').next().unwrap().to_string());
    }
    assert_eq!(seen, ["/a", "/b", "/c", "got", "/d"]);
    // The connection is still usable afterwards.
    conn.send(get("/e").as_bytes());
    assert!(conn.response().unwrap().body.starts_with("/e "));
}

#[test]
fn a_pipelined_burst_larger_than_the_read_buffer_is_answered_in_full() {
    // More than one 64 KiB read of pipelined requests: after each response the rest must be
    // read from the socket although no new readiness event announces it.
    let dir = app_dir();
    let server = server(&dir, &["--threads", "2"]);
    let n = 3000;
    let burst: String = (0..n).map(|i| get(&format!("/p{i}"))).collect();
    assert!(burst.len() > 64 * 1024);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    let mut writer = conn.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(burst.as_bytes()));
    for i in 0..n {
        let r = conn.response().unwrap_or_else(|| panic!("response {i}"));
        assert!(r.body.starts_with(&format!("/p{i} ")), "{i}: {r:?}");
    }
    sender.join().unwrap().unwrap();
}

#[test]
fn a_client_that_sends_its_request_and_closes_gets_its_response_and_a_close() {
    // The request and the FIN arrive together: one readiness event for both. The response is
    // sent, then the connection is closed at once (not after the keep-alive timeout).
    let dir = app_dir();
    let server = server(&dir, &["--threads", "2", "--keep-alive", "60"]);
    for path in ["/a", "/b", "/c"] {
        let mut conn = Reader::new(server.connect(READ_TIMEOUT));
        conn.send(get(path).as_bytes());
        conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let r = conn.response().expect("response");
        assert!(r.body.starts_with(&format!("{path} ")), "{r:?}");
        let mut rest = [0u8; 16];
        let eof = conn.stream.read(&mut rest);
        assert!(matches!(eof, Ok(0)), "closed at once: {eof:?}");
    }
}

#[test]
fn connection_close_and_http_1_0_close_the_connection() {
    let dir = app_dir();
    let server = server(&dir, &["--keep-alive", "60"]);
    let cases: &[(&str, &str, bool)] = &[
        // (request, expected Connection header, server closes)
        (
            "GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "close",
            true,
        ),
        ("GET /2 HTTP/1.0\r\n\r\n", "close", true),
        (
            "GET /3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "keep-alive",
            false,
        ),
    ];
    for (req, want_header, closes) in cases {
        let mut conn = Reader::new(server.connect(READ_TIMEOUT));
        conn.send(req.as_bytes());
        let r = conn.response().expect("a response");
        assert_eq!(r.status, 200, "{req:?}: {r:?}");
        assert_eq!(
            r.header("Connection").as_deref(),
            Some(*want_header),
            "{req:?}: {r:?}"
        );
        if *closes {
            assert!(
                conn.closed(),
                "{req:?}: the server closes after the response"
            );
        } else {
            conn.send(b"GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            let r = conn.response().expect("the connection was kept");
            assert!(r.body.starts_with("/again "), "{r:?}");
        }
    }
}

#[test]
fn keep_alive_0_closes_after_each_response() {
    let dir = app_dir();
    let server = server(&dir, &["--keep-alive", "0"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    conn.send(get("/x").as_bytes());
    let r = conn.response().expect("a response");
    assert_eq!(r.header("Connection").as_deref(), Some("close"), "{r:?}");
    assert!(conn.closed());
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let dir = app_dir();
    let server = server(&dir, &["--keep-alive", "1"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    conn.send(get("/x").as_bytes());
    assert_eq!(conn.response().expect("a response").status, 200);
    // Nothing more is sent: the server closes (the read timeout of 20 s would fail this).
    let started = Instant::now();
    assert!(conn.closed(), "the idle connection was closed");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn the_pool_runs_threads_requests_at_the_same_time() {
    let dir = app_dir();
    let n = 4;
    let server = server(&dir, &["--threads", &n.to_string()]);
    // Each request waits on a barrier of 4: they all complete only if all 4 run at once.
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
            std::thread::spawn(move || {
                support::send_to(addr, support::get_request("/barrier/4").as_bytes())
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn a_request_in_progress_does_not_stop_the_worker_serving_others() {
    // The thread that read a request runs it itself; while it is in the app, another thread
    // takes over accepting and reading (the main thread's rescue hands the event loop to the
    // idle pool thread).
    for threads in ["2", "4"] {
        let dir = app_dir();
        let server = server(&dir, &["--threads", threads]);
        let release = dir.path().join("release");
        let mut held = Reader::new(server.connect(READ_TIMEOUT));
        held.send(get(&format!("/hold?{}", release.display())).as_bytes());
        // Until the held request is released, other clients are answered, on new
        // connections and on a kept-alive one.
        for i in 0..5 {
            let r = server.get(&format!("/n{i}"));
            assert_eq!(r.status, 200, "{r:?}");
        }
        let mut conn = Reader::new(server.connect(READ_TIMEOUT));
        for i in 0..5 {
            conn.send(get(&format!("/k{i}")).as_bytes());
            let r = conn.response().expect("served");
            assert!(r.body.starts_with(&format!("/k{i} ")), "{r:?}");
        }
        std::fs::write(&release, b"").unwrap();
        let r = held.response().expect("the held request completes");
        // Released by the test, not expired: the others were served while it ran.
        assert!(r.body.starts_with("/hold released "), "{r:?}");
    }
}

/// How many sockets the worker holds (its listener included).
fn open_sockets(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|link| link.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits (bounded) until the worker holds at most `want` sockets; returns how many it holds.
fn settle_sockets(pid: i32, want: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let n = open_sockets(pid);
        if n <= want || Instant::now() > end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn gunicorn_socket_is_one_object_per_connection_and_closed_with_it() {
    let dir = app_dir();
    let server = server(&dir, &["--threads", "2", "--keep-alive", "1"]);
    let pid = server.worker_pids()[0];
    let sock_of = |r: &Resp| -> (String, String, String) {
        let mut it = r.body.split(' ').map(str::to_owned);
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    // gunicorn's gthread passes the connection's socket: the same object for each request
    // on a connection, a socket on the client's own connection.
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    let port = conn.stream.local_addr().unwrap().port().to_string();
    conn.send(get("/sock").as_bytes());
    let (first, open, peer) = sock_of(&conn.response().unwrap());
    assert_eq!((open.as_str(), peer.as_str()), ("1", port.as_str()));
    conn.send(get("/sock-close").as_bytes());
    assert_eq!(sock_of(&conn.response().unwrap()).0, first);
    // The app closed its socket: the connection goes on, and the next request gets a new one.
    conn.send(get("/sock").as_bytes());
    let (_, open, _) = sock_of(&conn.response().unwrap());
    assert_eq!(open, "1");
    // The server closes the idle connection after --keep-alive although the app's socket is a
    // duplicate of it, and no descriptor is left behind.
    let mut rest = [0u8; 64];
    let eof = conn.stream.read(&mut rest);
    assert!(matches!(eof, Ok(0)), "closed by the server: {eof:?}");
    // Clients that close their connections leave nothing behind either.
    for i in 0..20 {
        let mut c = Reader::new(server.connect(READ_TIMEOUT));
        c.send(get(&format!("/sock?{i}")).as_bytes());
        assert_eq!(c.response().unwrap().status, 200);
    }
    // Only the listener is left.
    assert_eq!(settle_sockets(pid, 1), 1);
}

#[test]
fn worker_connections_caps_open_connections() {
    let dir = app_dir();
    let server = server(
        &dir,
        &[
            "--worker-connections",
            "1",
            "--keep-alive",
            "60",
            "--threads",
            "2",
        ],
    );
    // The first connection takes the only slot and sends nothing.
    let holder = server.connect(READ_TIMEOUT);
    std::thread::sleep(Duration::from_millis(300));
    // The second one is left in the listen backlog: no answer while the first is open.
    let mut waiting = Reader::new(server.connect(READ_TIMEOUT));
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    waiting.send(get("/second").as_bytes());
    assert!(
        waiting.response().is_none(),
        "served beyond --worker-connections"
    );
    // Closing the first frees the slot: the second is accepted and answered.
    drop(holder);
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let r = waiting.response().expect("served once a slot is free");
    assert!(r.body.starts_with("/second "), "{r:?}");
}

#[test]
fn a_slowloris_client_does_not_hold_up_the_only_thread() {
    let dir = app_dir();
    let server = server(&dir, &["--threads", "1", "--keep-alive", "60"]);
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for b in head {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Meanwhile normal clients, on new and kept-alive connections, are served.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        let r = server.get(&format!("/n{i}"));
        assert_eq!(r.status, 200, "{r:?}");
    }
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    for i in 0..10 {
        conn.send(get(&format!("/k{i}")).as_bytes());
        assert_eq!(conn.response().expect("served").status, 200);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    slow.join().unwrap();
}

#[test]
fn a_head_slower_than_the_timeout_is_dropped() {
    let dir = app_dir();
    let server = server(&dir, &["--timeout", "2", "--keep-alive", "60"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    // The head never completes: the connection is closed without a response.
    assert!(conn.closed(), "the incomplete head was dropped");
    // The worker kept running (its heartbeat is independent of requests).
    assert_eq!(server.get("/after").status, 200);
}

#[test]
fn an_app_exception_gives_500_and_the_worker_goes_on() {
    let dir = app_dir();
    let server = server(&dir, &["--keep-alive", "60"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    conn.send(get("/boom").as_bytes());
    let r = conn.response().expect("an error page");
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.header("Connection").as_deref(), Some("close"), "{r:?}");
    assert!(conn.closed(), "closed after the error page");
    assert!(server
        .wait_for("Error handling request /boom", 1, Duration::from_secs(10))
        .is_some());
    assert!(server.output().contains("ValueError: boom from the app"));
    // Later requests, also kept alive, are fine.
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    for _ in 0..2 {
        conn.send(get("/ok").as_bytes());
        assert_eq!(conn.response().expect("served").status, 200);
    }
}

#[test]
fn malformed_requests_get_the_sync_workers_error_page_and_log_line() {
    let dir = app_dir();
    let server = server(&dir, &[]);
    let r = server.send(b"GARBAGE\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text().contains("Invalid Request Line"), "{}", r.text());
    assert!(server
        .wait_for(
            "Invalid request from ip=127.0.0.1: Invalid HTTP request line",
            1,
            Duration::from_secs(10)
        )
        .is_some());
    // A header field over --limit-request-field_size: gunicorn's 431 page.
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    let r = server.send(big.as_bytes());
    assert_eq!(r.status, 431, "{r:?}");
}

#[test]
fn each_response_on_a_connection_has_only_its_own_head() {
    // One thread: each response's head is written into the buffer of the one before.
    let dir = app_dir();
    let server = server(&dir, &["--threads", "1"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    for names in ["longname,b,c", "", "d", "longname,b,c", "e"] {
        conn.send(get(&format!("/headers?{names}")).as_bytes());
        let r = conn.response().expect("a response");
        let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
        // The status line is sent stripped of trailing spaces (gunicorn).
        let status = format!("HTTP/1.1 {} Named {}", 200 + names.len(), names.concat());
        assert_eq!(r.head.lines().next(), Some(status.trim_end()), "{r:?}");
        let x: Vec<String> = r
            .head
            .lines()
            .filter(|l| l.starts_with("X-"))
            .map(str::to_string)
            .collect();
        let want: Vec<String> = names
            .iter()
            .map(|n| format!("X-{n}: {}", n.repeat(3)))
            .collect();
        assert_eq!(x, want, "{r:?}");
        assert_eq!(r.body, "ok");
    }
}

#[test]
fn each_request_on_a_connection_gets_its_own_environ_values() {
    // The same and then different values, key by key: a value shared with the request before
    // must never outlive a change.
    let dir = app_dir();
    let server = server(&dir, &["--threads", "1"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    let cases: &[(&str, &str)] = &[
        (
            "GET /env?a=1 HTTP/1.1\r\nHost: one\r\n\r\n",
            "REQUEST_METHOD=GET PATH_INFO=/env QUERY_STRING=a=1 HTTP_HOST=one SERVER_PROTOCOL=HTTP/1.1",
        ),
        (
            "GET /env?a=1 HTTP/1.1\r\nHost: one\r\n\r\n",
            "REQUEST_METHOD=GET PATH_INFO=/env QUERY_STRING=a=1 HTTP_HOST=one SERVER_PROTOCOL=HTTP/1.1",
        ),
        (
            "POST /env/x HTTP/1.1\r\nHost: two\r\nContent-Length: 0\r\n\r\n",
            "REQUEST_METHOD=POST PATH_INFO=/env/x QUERY_STRING= HTTP_HOST=two SERVER_PROTOCOL=HTTP/1.1",
        ),
        (
            "GET /env/%C3%A9?b HTTP/1.1\r\n\r\n",
            "REQUEST_METHOD=GET PATH_INFO=/env/\u{c3}\u{a9} QUERY_STRING=b HTTP_HOST=None SERVER_PROTOCOL=HTTP/1.1",
        ),
        (
            "GET /env HTTP/1.0\r\nHost: one\r\nConnection: keep-alive\r\n\r\n",
            "REQUEST_METHOD=GET PATH_INFO=/env QUERY_STRING= HTTP_HOST=one SERVER_PROTOCOL=HTTP/1.0",
        ),
    ];
    for (request, want) in cases {
        conn.send(request.as_bytes());
        let r = conn.response().expect("a response");
        assert_eq!(r.body, *want, "{request:?}");
    }
}

#[test]
fn a_request_body_kept_by_the_app_never_reads_a_later_request() {
    // One thread: the exchanges of the requests after the first are the thread's recycled
    // ones; the kept wsgi.input must stay with its own (finished) request all the same.
    let dir = app_dir();
    let server = server(&dir, &["--threads", "1"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    conn.send(b"POST /keep-input HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst");
    assert_eq!(conn.response().expect("a response").status, 200);
    for i in 0..20 {
        conn.send(get(&format!("/r{i}")).as_bytes());
        assert_eq!(conn.response().expect("a response").status, 200);
    }
    conn.send(b"POST /old-input HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond");
    let r = conn.response().expect("a response");
    assert_eq!(r.body, "old input: b''", "{r:?}");
}

#[test]
fn an_unread_request_body_is_drained_and_the_connection_kept() {
    let dir = app_dir();
    let server = server(&dir, &["--keep-alive", "60"]);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    // The app ignores a 10 KiB body; the worker drains it, then reads the next request.
    let body = "z".repeat(10 * 1024);
    conn.send(
        format!(
            "POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(conn.response().expect("first").status, 200);
    conn.send(get("/next").as_bytes());
    let r = conn.response().expect("the connection was kept");
    assert!(r.body.starts_with("/next "), "{r:?}");
}

#[test]
fn sync_with_threads_runs_the_gthread_worker() {
    let dir = app_dir();
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-k", "sync", "--threads", "3", "gtapp:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert!(
        server.output().contains("Using worker: gthread"),
        "{}",
        server.output()
    );
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    for _ in 0..2 {
        conn.send(get("/t").as_bytes());
        let r = conn.response().expect("kept alive, unlike the sync worker");
        assert!(r.body.ends_with("mt=True"), "{r:?}");
    }
}

#[test]
fn flask_app_under_gthread() {
    if !support::python_has("flask") {
        support::skip("flask is not installed");
        return;
    }
    let server = Gunicorn::new()
        .args(["-k", "gthread", "--threads", "4", "flask_app:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let mut conn = Reader::new(server.connect(READ_TIMEOUT));
    conn.send(b"GET /json?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = conn.response().expect("json");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("\"path\":\"/json\""), "{r:?}");
    conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nping");
    let r = conn.response().expect("echo");
    assert_eq!(r.body, "ping");
}
