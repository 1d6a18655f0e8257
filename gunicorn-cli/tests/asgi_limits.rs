//! `--worker-connections` on the asgi worker: past the limit a connection is accepted by the
//! event loop but not read until a served one closes (as connections wait in the listen
//! backlog of a gthread or gevent worker at its limit); a graceful stop serves the waiting
//! ones instead of dropping them.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Gunicorn, Server};

const HELLO: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn server(extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .args([
            "-k",
            "asgi",
            "-w",
            "1",
            "--worker-connections",
            "2",
            "--keep-alive",
            "60",
        ])
        .args(extra)
        .arg("asgi_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

/// Sends hello on `s` and reads until its body arrived; false when nothing came in `wait`.
fn hello(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"Hello, world!") {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) => panic!("{e}"),
        }
    }
    true
}

#[test]
fn a_connection_past_the_limit_waits_for_a_slot() {
    let server = server(&[]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = server.connect(Duration::from_secs(15));
        s.write_all(HELLO).unwrap();
        assert!(hello(&mut s, Duration::from_secs(15)));
        held.push(s);
    }
    // Both slots are held by kept-alive connections: the third is not read.
    let mut third = server.connect(Duration::from_secs(15));
    third.write_all(HELLO).unwrap();
    assert!(
        !hello(&mut third, Duration::from_millis(700)),
        "served past --worker-connections 2"
    );
    // One closes: the third takes its slot and is answered.
    drop(held.remove(0));
    assert!(
        hello(&mut third, Duration::from_secs(15)),
        "{}",
        server.output()
    );
    // Its connection is served from now on like any other.
    third.write_all(HELLO).unwrap();
    assert!(hello(&mut third, Duration::from_secs(15)));
}

#[test]
fn a_graceful_stop_serves_the_waiting_connections() {
    let server = server(&["--graceful-timeout", "20"]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = server.connect(Duration::from_secs(15));
        s.write_all(HELLO).unwrap();
        assert!(hello(&mut s, Duration::from_secs(15)));
        held.push(s);
    }
    let mut third = server.connect(Duration::from_secs(15));
    third.write_all(HELLO).unwrap();
    assert!(!hello(&mut third, Duration::from_millis(500)));
    server.signal(Signal::SIGTERM);
    assert!(
        hello(&mut third, Duration::from_secs(15)),
        "the waiting request was dropped:\n{}",
        server.output()
    );
}
