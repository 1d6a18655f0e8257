//! End-to-end test of the gthread worker's held responses: under load, a pool thread runs the
//! requests queued behind a quick one before sending its small response, so that several
//! responses leave together (gthread `pool.rs`, `MAX_HELD`). A request run meanwhile that turns
//! out slow must not delay the responses held before it: the main thread sends them.
//! Nothing asserts how long something took: the slow request blocks until the test releases it.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{Gunicorn, TempDir};

/// `/spin` keeps the only thread busy (without sleeping, under the main thread's 1 ms rescue
/// delay) while the test sends the next requests, so that one turn of the event loop finds
/// them all and queues them; `/hold` blocks until the test creates the file in its query.
const APP: &str = r#"
import os, time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/spin":
        end = time.perf_counter() + 0.0006
        while time.perf_counter() < end:
            pass
    elif path == "/hold":
        for _ in range(600):
            if os.path.exists(environ["QUERY_STRING"]):
                path += " released"
                break
            time.sleep(0.05)
    body = path.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

/// Reads one Content-Length response off `stream`; None on EOF or timeout.
fn response(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = support::content_length(&head);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        match stream.read(&mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

#[test]
fn responses_held_before_a_slow_request_go_out_while_it_runs() {
    let dir = TempDir::new("gthread-held");
    dir.write("heldapp.py", APP);
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-k", "gthread", "-w", "1", "--threads", "1"])
        .arg("heldapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let release = dir.path().join("release");
    // Several rounds: each gives the event loop a chance to queue the quick requests and the
    // slow one in one turn (the client's sends must all land while /spin runs).
    for round in 0..5 {
        let mut conns: Vec<TcpStream> = (0..5)
            .map(|_| server.connect(Duration::from_secs(20)))
            .collect();
        // Every connection accepted and idle in the event loop first.
        for c in &mut conns {
            c.write_all(&get("/warm")).unwrap();
            assert_eq!(response(c).as_deref(), Some("/warm"));
        }
        let hold = format!("/hold?{}{round}", release.display());
        conns[0].write_all(&get("/spin")).unwrap();
        for c in &mut conns[1..4] {
            c.write_all(&get("/quick")).unwrap();
        }
        conns[4].write_all(&get(&hold)).unwrap();
        assert_eq!(response(&mut conns[0]).as_deref(), Some("/spin"));
        // The quick ones are answered while /hold still runs (it runs until released below).
        for (i, c) in conns[1..4].iter_mut().enumerate() {
            let got = response(c);
            assert_eq!(
                got.as_deref(),
                Some("/quick"),
                "round {round}, quick request {i}"
            );
        }
        std::fs::write(format!("{}{round}", release.display()), b"").unwrap();
        assert_eq!(
            response(&mut conns[4]).as_deref(),
            Some("/hold released"),
            "round {round}"
        );
    }
}
