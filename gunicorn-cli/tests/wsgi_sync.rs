//! End-to-end tests of the sync worker and the WSGI bridge through the real binary (issue 2
//! part 6): one request per connection with `Connection: close`, request bodies, app errors,
//! malformed requests, max_requests, graceful TERM during a request, --preload, sendfile.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{exchange, Gunicorn, TempDir};

const STOP_TIMEOUT: Duration = Duration::from_secs(40);
const LOG_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn every_response_closes_the_connection() {
    let server = Gunicorn::new().arg("hello:app").bind_free_port().spawn();
    server.wait_booted(1);
    // Even a client asking for keep-alive gets exactly one response and a close.
    let r = server.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.header("Server"), Some("gunicorn"));
    assert_eq!(r.text(), "Hello, World!\n");
}

#[test]
fn request_bodies_reach_the_app() {
    let server = Gunicorn::new().arg("echo:app").bind_free_port().spawn();
    server.wait_booted(1);
    let cases: [(&[u8], &str); 2] = [
        (
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            "\"body\": \"hello\"",
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            "\"body\": \"abcde\"",
        ),
    ];
    for (req, want) in cases {
        let r = server.send(req);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(req));
        assert!(r.text().contains(want), "{}", r.text());
    }
    // Expect: 100-continue is answered before the final response.
    let r = server.send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok",
    );
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(
        raw.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{raw}"
    );
    assert!(raw.contains("\"body\": \"ok\""), "{raw}");
}

#[test]
fn an_app_exception_is_a_500_and_the_worker_keeps_serving() {
    let server = Gunicorn::new()
        .arg("responses:raises")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    for _ in 0..3 {
        let r = server.get("/boom?x=1");
        assert_eq!(r.status, 500);
        assert!(r.text().contains("Internal Server Error"));
    }
    let lines = server
        .wait_for("Error handling request /boom?x=1", 3, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    assert!(lines[0].contains("[ERROR]"), "{}", lines[0]);
    assert!(server.output().contains("ValueError: boom in the app"));
    assert_eq!(server.worker_pids().len(), 1, "{}", server.output());
}

#[test]
fn a_malformed_request_gets_an_error_page_and_a_log_line() {
    let server = Gunicorn::new().arg("hello:app").bind_free_port().spawn();
    server.wait_booted(1);
    let r = server.send(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Invalid HTTP Version"), "{}", r.text());
    assert!(server
        .wait_for("Invalid request from ip=127.0.0.1", 1, LOG_TIMEOUT)
        .is_some());
    // Still serving.
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn max_requests_restarts_the_worker() {
    let server = Gunicorn::new()
        .args(["hello:app", "--max-requests", "2"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    for _ in 0..2 {
        assert_eq!(server.get("/").status, 200);
    }
    assert!(server
        .wait_for(
            "Autorestarting worker after current request.",
            1,
            LOG_TIMEOUT
        )
        .is_some());
    server.wait_booted(2);
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn term_lets_the_current_request_finish() {
    let server = Gunicorn::new().arg("slow:app").bind_free_port().spawn();
    server.wait_booted(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        exchange(&mut s, b"GET /?s=1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
    });
    // Once the request is inside the app, ask for a graceful stop.
    assert!(server
        .wait_for("slow app: sleeping", 1, LOG_TIMEOUT)
        .is_some());
    server.signal(Signal::SIGTERM);
    let r = client.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "slept\n");
    let status = server.wait_exit(STOP_TIMEOUT).expect("master exits");
    assert_eq!(status.code(), Some(0), "{}", server.output());
}

#[test]
fn preload_loads_the_app_once_in_the_master() {
    let server = Gunicorn::new()
        .args(["pids:app", "--preload", "-w", "2"])
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    let r = server.get("/");
    let text = r.text();
    let imported: i32 = text
        .split("imported_in=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(imported, server.pid(), "{text}");
    assert!(server
        .worker_pids()
        .iter()
        .any(|p| text.contains(&format!("serving_in={p}"))));
}

#[test]
fn without_preload_each_worker_imports_the_app() {
    let server = Gunicorn::new().arg("pids:app").bind_free_port().spawn();
    server.wait_booted(1);
    let text = server.get("/").text();
    let worker = server.worker_pids()[0];
    assert_eq!(
        text.trim(),
        format!("imported_in={worker} serving_in={worker}")
    );
}

#[test]
fn file_wrapper_is_sent_whole_with_and_without_sendfile() {
    let dir = TempDir::new("sendfile");
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();
    let path = dir.path().join("big.bin");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    for extra in [None, Some("--no-sendfile")] {
        let server = Gunicorn::new()
            .arg("files:with_length")
            .args(extra)
            .env("FILE_PATH", &path)
            .bind_free_port()
            .spawn();
        server.wait_booted(1);
        let r = server.get("/");
        assert_eq!(r.status, 200, "{extra:?}");
        assert_eq!(r.header("Content-Length"), Some("500000"), "{extra:?}");
        assert!(r.body == data, "{extra:?}: {} bytes", r.body.len());
    }
}

#[test]
fn environ_over_a_unix_socket() {
    // Every class that builds a WSGI environ, with the access log (the environ built as Rust
    // strings first) and without: a unix peer has no REMOTE_PORT, and no key is left None.
    let cases: &[&[&str]] = &[
        &[],
        &["-k", "gthread", "--threads", "2"],
        &["-k", "gthread", "--threads", "2", "--access-logfile", "-"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let dir = TempDir::new(&format!("unix-environ-{i}"));
        let sock = dir.path().join("g.sock");
        let server = Gunicorn::new()
            .args(["echo:app", "-w", "2", "-b"])
            .arg(format!("unix:{}", sock.display()))
            .args(extra.iter().copied())
            .spawn();
        server.wait_booted(2);
        let mut stream = None;
        for _ in 0..100 {
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
                stream = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut stream = stream.expect("connect to the unix socket");
        let r = exchange(
            &mut stream,
            b"GET / HTTP/1.1\r\nHost: example.com:1234\r\n\r\n",
        );
        let text = r.text();
        for want in [
            "\"REMOTE_ADDR\": \"\"",
            "\"SERVER_NAME\": \"example.com\"",
            "\"SERVER_PORT\": \"1234\"",
            "\"wsgi.multiprocess\": true",
            "\"wsgi.input\": \"<",
            "\"gunicorn.socket\": \"<",
        ] {
            assert!(text.contains(want), "{extra:?}: {want} not in {text}");
        }
        assert!(!text.contains("REMOTE_PORT"), "{extra:?}: {text}");
        assert!(!text.contains("null"), "{extra:?}: {text}");
    }
}

#[test]
fn a_worker_whose_master_died_exits() {
    // --timeout 2: the worker checks its parent at least every second.
    let server = Gunicorn::new()
        .args(["hello:app", "-t", "2"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let worker = server.worker_pids()[0];
    server.signal(Signal::SIGKILL);
    assert!(
        support::eventually(Duration::from_secs(15), || !support::alive(worker)),
        "worker {worker} outlived its master"
    );
}

#[test]
fn a_request_past_the_timeout_gets_a_500_and_the_worker_is_replaced() {
    let server = Gunicorn::new()
        .args(["slow:app", "-t", "2"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let r = server.get("/?s=8");
    assert_eq!(r.status, 500, "{}", server.output());
    assert!(server.wait_for("WORKER TIMEOUT", 1, LOG_TIMEOUT).is_some());
    server.wait_booted(2);
    assert_eq!(server.get("/?s=0").status, 200);
}

#[test]
fn a_slow_body_past_the_timeout_gets_a_500_as_in_gunicorn() {
    // The app blocks in wsgi.input.read() on a client that sent 3 of 100 body bytes: the
    // timeout's 500 page goes out beside the blocked read, and (gunicorn 27) the master logs
    // WORKER TIMEOUT but no "exited with code" line.
    let server = Gunicorn::new()
        .args(["echo:app", "-t", "2"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 500 Internal Server Error"),
        "{reply}\n{}",
        server.output()
    );
    assert!(server.wait_for("WORKER TIMEOUT", 1, LOG_TIMEOUT).is_some());
    server.wait_booted(2);
    assert!(
        !server.output().contains("exited with code"),
        "{}",
        server.output()
    );
}

#[test]
fn a_stalled_partial_head_holds_a_sync_worker_no_longer_than_the_timeout() {
    // One sync worker; client A sends part of a valid head and stalls. Client B, behind it,
    // is answered once --timeout (3 s) frees the worker, as with gunicorn 27 (B answered after
    // 4.4 s there, 3.4 s here, side by side); never when A gives up.
    let server = Gunicorn::new()
        .args(["hello:app", "-w", "1", "-t", "3"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let mut a = TcpStream::connect(addr).unwrap();
    a.write_all(b"GET / HTTP/1.1\r\nHost: a").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = std::time::Instant::now();
    let mut b = TcpStream::connect(addr).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    b.write_all(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = b.read_to_end(&mut reply);
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}\n{}",
        String::from_utf8_lossy(&reply),
        server.output()
    );
    // Bounded by the timeout (plus the master's one-second tick and a loaded machine's slack),
    // far below the 30 s read timeout; A is still connected and silent.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    drop(a);
}

#[test]
fn quit_does_not_wait_for_the_request_in_progress() {
    let server = Gunicorn::new()
        .args(["slow:app", "--graceful-timeout", "60"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /?s=50 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(server
        .wait_for("slow app: sleeping", 1, LOG_TIMEOUT)
        .is_some());
    server.signal(Signal::SIGQUIT);
    // The master exits (well before the request's 50 s or the 60 s graceful timeout would end
    // it: STOP_TIMEOUT is shorter) ...
    let status = server.wait_exit(STOP_TIMEOUT).expect("master exits");
    assert_eq!(status.code(), Some(0), "{}", server.output());
    // ... and the request was cut: the connection closed without a response.
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
}
