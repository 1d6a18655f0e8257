//! `--enable-backlog-metric` (gunicorn 24.1+) end to end: the arbiter sends the
//! `gunicorn.backlog` StatsD histogram, the connections waiting in the listen socket's accept
//! queue (TCP_INFO's `tcpi_unacked` on Linux), every turn of its loop; without the flag it does
//! not. The StatsD server is a UDP socket bound by the test on 127.0.0.1; the backlog is made
//! by one sync worker held in a slow request while more clients connect.
#![cfg(target_os = "linux")]

mod support;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::{Gunicorn, Server, TempDir};

/// Holds `/slow` until the file `release` appears next to the app (at most 60 s).
const APP: &str = r#"
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
def app(environ, start_response):
    if environ['PATH_INFO'] == '/slow':
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(HERE, 'release')) and time.time() < deadline:
            time.sleep(0.05)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;

const METRIC: &str = "gunicorn.backlog:";

/// A UDP socket on 127.0.0.1 standing in for the StatsD server, and its port.
fn statsd_collector() -> (UdpSocket, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    (sock, port)
}

/// Receives datagrams for up to `timeout`, or until `done` holds for the ones received.
fn receive(
    sock: &UdpSocket,
    timeout: Duration,
    mut done: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline && !done(&got) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

/// The values of the `gunicorn.backlog` histograms among `got` (each must be a `|h`).
fn backlog_values(got: &[String], prefix: &str) -> Vec<u64> {
    got.iter()
        .filter_map(|m| m.strip_prefix(prefix)?.strip_prefix(METRIC))
        .map(|rest| {
            let (value, kind) = rest.split_once('|').expect("a metric type");
            assert_eq!(kind, "h", "gunicorn.backlog must be a histogram: {rest}");
            value.parse().expect("an integer value")
        })
        .collect()
}

fn server(dir: &TempDir, port: u16, extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--statsd-host", &format!("127.0.0.1:{port}")])
        .args(["-w", "1", "-k", "sync", "-t", "120", "--log-level", "debug"])
        .args(extra)
        .arg("slowapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

/// Sends `GET path` on a new connection and leaves it open (its response is not read).
fn start_request(server: &Server, path: &str) -> TcpStream {
    let mut s = server.connect(Duration::from_secs(30));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

#[test]
fn backlog_histogram_counts_unaccepted_connections() {
    let (sock, port) = statsd_collector();
    let dir = TempDir::new("backlog");
    dir.write("slowapp.py", APP);
    let server = server(
        &dir,
        port,
        &["--enable-backlog-metric", "--statsd-prefix", "svc"],
    );

    // Idle: the queue is empty, and the metric is still sent every loop turn.
    let got = receive(&sock, Duration::from_secs(10), |g| {
        backlog_values(g, "svc.").len() >= 2
    });
    let idle = backlog_values(&got, "svc.");
    assert!(idle.len() >= 2, "no periodic gunicorn.backlog: {got:?}");
    assert!(idle.iter().all(|&v| v == 0), "idle backlog not 0: {got:?}");

    // The only worker takes /slow and stops accepting; three more clients wait in the queue.
    let slow = start_request(&server, "/slow");
    std::thread::sleep(Duration::from_millis(500));
    let queued: Vec<TcpStream> = (0..3).map(|_| start_request(&server, "/")).collect();
    let got = receive(&sock, Duration::from_secs(10), |g| {
        backlog_values(g, "svc.").contains(&3)
    });
    assert!(
        backlog_values(&got, "svc.").contains(&3),
        "gunicorn.backlog never reported the 3 queued connections: {got:?}"
    );
    assert!(
        server
            .wait_for("socket backlog: 3", 1, Duration::from_secs(10))
            .is_some(),
        "no debug line; output:\n{}",
        server.output()
    );

    // Released, the worker drains the queue and the metric falls back to 0.
    dir.write("release", "");
    for mut s in std::iter::once(slow).chain(queued) {
        let resp = support::exchange(&mut s, b"");
        assert_eq!(resp.status, 200);
    }
    let got = receive(&sock, Duration::from_secs(10), |g| {
        backlog_values(g, "svc.").contains(&0)
    });
    assert!(
        backlog_values(&got, "svc.").contains(&0),
        "gunicorn.backlog did not return to 0: {got:?}"
    );
}

#[test]
fn no_backlog_metric_without_the_flag() {
    let (sock, port) = statsd_collector();
    let dir = TempDir::new("nobacklog");
    dir.write("slowapp.py", APP);
    let server = server(&dir, port, &[]);
    let slow = start_request(&server, "/slow");
    std::thread::sleep(Duration::from_millis(500));
    let queued: Vec<TcpStream> = (0..2).map(|_| start_request(&server, "/")).collect();
    // Several loop turns (one a second) with a non-empty queue.
    let got = receive(&sock, Duration::from_secs(4), |_| false);
    assert!(
        got.iter().any(|m| m.starts_with("gunicorn.workers:")),
        "StatsD itself should work: {got:?}"
    );
    assert!(
        !got.iter().any(|m| m.contains(METRIC)),
        "gunicorn.backlog sent without --enable-backlog-metric: {got:?}"
    );
    assert!(
        !server.output().contains("socket backlog"),
        "{}",
        server.output()
    );
    dir.write("release", "");
    drop((slow, queued));
}
