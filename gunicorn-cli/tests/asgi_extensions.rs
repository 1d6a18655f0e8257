//! The ASGI extensions of the asgi worker: HTTP trailers (`trailers: True` in
//! `http.response.start`, then `http.response.trailers` messages whose fields follow the last
//! chunk, RFC 9112 §7.1.2; fields that may not be trailers are left out, and the connection
//! stays usable for the next request) and path send (`http.response.pathsend`: a file as the
//! body).

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::Gunicorn;

#[test]
fn trailer_fields_follow_the_last_chunk() {
    let server = Gunicorn::new()
        .args(["-k", "asgi", "-w", "1"])
        .arg("asgi_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let mut s = server.connect(Duration::from_secs(15));
    s.write_all(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(15);
    // Both responses: the second ends with the hello body.
    while !got.ends_with(b"Hello, world!") && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(
        text.contains(
            "\r\n\r\n4\r\ndata\r\n0\r\nx-checksum: abc\r\nx-status: done\r\n\r\nHTTP/1.1 200 OK"
        ),
        "{text}"
    );
    assert!(!text.contains("content-length: 9"), "{text}");
    assert!(text.ends_with("Hello, world!"), "{text}");
}

#[test]
fn pathsend_sends_the_file() {
    let server = Gunicorn::new()
        .args(["-k", "asgi", "-w", "1"])
        .arg("asgi_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let want = std::fs::read(support::apps_dir().join("asgi_app.py")).unwrap();
    let got = server.get("/pathsend");
    assert_eq!(got.status, 200, "{}", server.output());
    assert!(
        got.body == want,
        "{} of {} bytes",
        got.body.len(),
        want.len()
    );
}
