//! End-to-end tests of the gthread worker's life cycle: graceful TERM with an in-flight request
//! and an idle keep-alive connection, the request sent on a kept-alive connection while the
//! worker drains, INT's quick stop, `--max-requests` recycling, and a heartbeat that does not
//! depend on requests. Every wait is bounded; nothing asserts timings.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{alive, eventually, Gunicorn, Server, TempDir};

const APP: &str = r#"
import os, time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/marker":
        # Tells the test the request is in flight, then takes a while.
        open(environ["QUERY_STRING"], "w").close()
        time.sleep(2)
    elif path.startswith("/sleep/"):
        time.sleep(float(path.split("/")[2]))
    body = ("%s pid=%d" % (path, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

fn server(dir: &TempDir, extra: &[&str]) -> Server {
    dir.write("lifeapp.py", APP);
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-k", "gthread", "-w", "1", "--threads", "2"])
        .args(extra)
        .arg("lifeapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

/// How long a read on a test's own connection may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `GET /marker?<marker>` (the app creates the file, then takes its time) on a new
/// connection and returns the connection, the response still to come.
fn start_marker_request(server: &Server, marker: &Path) -> TcpStream {
    let mut busy = server.connect(READ_TIMEOUT);
    let request = format!(
        "GET /marker?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        marker.display()
    );
    busy.write_all(request.as_bytes()).unwrap();
    busy
}

/// Reads until the head and `Content-Length` body of one response arrived; returns the text.
fn read_one(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf).into_owned();
            }
        }
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

/// True when the peer closed the connection (EOF within the read timeout).
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut tmp = [0u8; 64];
    matches!(s.read(&mut tmp), Ok(0))
}

#[test]
fn term_finishes_the_in_flight_request_and_closes_idle_keep_alive_soon() {
    let dir = TempDir::new("gthread-term");
    let server = server(&dir, &["--keep-alive", "60", "--graceful-timeout", "30"]);
    let worker = server.worker_pids()[0];

    // An idle keep-alive connection: one request answered, then silence.
    let mut idle = server.connect(READ_TIMEOUT);
    idle.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_one(&mut idle).contains("200 OK"));

    // A request in flight when TERM arrives.
    let marker = dir.path().join("in-flight");
    let mut busy = start_marker_request(&server, &marker);
    assert!(
        eventually(Duration::from_secs(20), || Path::new(&marker).exists()),
        "the request did not start"
    );

    server.signal(Signal::SIGTERM);
    // The idle connection is closed without waiting for the keep-alive timeout (60 s): after
    // at most 2 s (gunicorn's STOP_KEEPALIVE_LINGER), during which a request sent on it would
    // still be answered.
    let t0 = std::time::Instant::now();
    assert!(
        closed_by_server(&mut idle),
        "idle keep-alive connection closed"
    );
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    // The in-flight request completes, and says the connection will close.
    let resp = read_one(&mut busy);
    assert!(resp.contains("200 OK"), "{resp}");
    assert!(resp.contains("/marker pid="), "{resp}");
    assert!(closed_by_server(&mut busy));

    let status = server
        .wait_exit(Duration::from_secs(40))
        .expect("the master exits after TERM");
    assert_eq!(status.code(), Some(0), "{}", server.output());
    assert!(eventually(Duration::from_secs(10), || !alive(worker)));
}

#[test]
fn int_finishes_running_requests_and_drops_waiting_connections() {
    // gunicorn 27's gthread on INT/QUIT: no more accepts, the requests already running in
    // the pool finish (the interpreter joins its pool threads at exit), nothing else waits.
    let dir = TempDir::new("gthread-int");
    let server = server(&dir, &["--graceful-timeout", "60", "--keep-alive", "60"]);
    let worker = server.worker_pids()[0];
    let mut idle = server.connect(READ_TIMEOUT);
    idle.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_one(&mut idle).contains("200 OK"));
    let marker = dir.path().join("in-flight");
    let mut busy = start_marker_request(&server, &marker);
    assert!(eventually(Duration::from_secs(20), || Path::new(&marker).exists()));
    // INT to the worker itself: a quick stop; the master replaces it.
    kill(Pid::from_raw(worker), Signal::SIGINT).unwrap();
    assert!(
        closed_by_server(&mut idle),
        "the idle connection is dropped"
    );
    let resp = read_one(&mut busy);
    assert!(resp.contains("200 OK"), "{resp}");
    assert!(eventually(Duration::from_secs(20), || !alive(worker)));
    server.wait_booted(2);
}

#[test]
fn a_request_sent_on_a_kept_alive_connection_while_draining_is_answered() {
    // The race behind lost requests on recycle: the client sends its next request on a
    // kept-alive connection just as the worker starts a graceful stop. It is answered, with
    // Connection: close, instead of the connection being closed under it.
    let dir = TempDir::new("gthread-drain-race");
    let server = server(&dir, &["--keep-alive", "60"]);
    let mut kept = server.connect(READ_TIMEOUT);
    kept.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_one(&mut kept).contains("200 OK"));
    // A request in flight keeps the worker draining (not exited) for a while.
    let marker = dir.path().join("in-flight");
    let mut busy = start_marker_request(&server, &marker);
    assert!(eventually(Duration::from_secs(20), || Path::new(&marker).exists()));
    server.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    kept.write_all(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let resp = read_one(&mut kept);
    assert!(
        resp.contains("200 OK") && resp.contains("/second"),
        "{resp}"
    );
    assert!(resp.contains("Connection: close"), "{resp}");
    assert!(closed_by_server(&mut kept));
    assert!(read_one(&mut busy).contains("200 OK"));
}

#[test]
fn max_requests_recycles_the_worker() {
    let dir = TempDir::new("gthread-max");
    let server = server(&dir, &["--max-requests", "3", "--keep-alive", "60"]);
    let first = server.worker_pids()[0];
    // Three requests on one keep-alive connection: the third says Connection: close.
    let mut conn = server.connect(READ_TIMEOUT);
    let mut last = String::new();
    for i in 0..3 {
        conn.write_all(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        last = read_one(&mut conn);
        assert!(last.contains("200 OK"), "{last}");
    }
    assert!(last.contains("Connection: close"), "{last}");
    assert!(server
        .wait_for(
            "Autorestarting worker after current request.",
            1,
            Duration::from_secs(20)
        )
        .is_some());
    // A new worker takes over and serves.
    server.wait_booted(2);
    assert!(eventually(Duration::from_secs(20), || !alive(first)));
    let r = server.get("/after");
    assert_eq!(r.status, 200);
    assert!(!r.text().contains(&format!("pid={first}")), "{}", r.text());
}

#[test]
fn a_request_longer_than_the_timeout_does_not_kill_the_worker() {
    // gthread's heartbeat comes from the poller, not from finished requests.
    let dir = TempDir::new("gthread-beat");
    let server = server(&dir, &["--timeout", "2"]);
    let worker = server.worker_pids()[0];
    let r = server.get("/sleep/4");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().contains(&format!("pid={worker}")), "{}", r.text());
    assert!(
        !server.output().contains("WORKER TIMEOUT"),
        "{}",
        server.output()
    );
}

#[test]
fn the_worker_exits_when_its_master_is_gone() {
    let dir = TempDir::new("gthread-orphan");
    let server = server(&dir, &["--keep-alive", "60"]);
    let worker = server.worker_pids()[0];
    // An idle keep-alive connection must not keep the orphaned worker alive.
    let mut idle = server.connect(READ_TIMEOUT);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_one(&mut idle).contains("200 OK"));
    server.signal(Signal::SIGKILL);
    assert!(
        eventually(Duration::from_secs(20), || !alive(worker)),
        "worker {worker} outlived its master"
    );
    assert!(closed_by_server(&mut idle));
}
