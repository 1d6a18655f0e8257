//! End-to-end tests of the log destinations (issue 7): the error log file with
//! `--capture-output`, syslog over UDP, and StatsD over UDP, each against a socket bound by
//! the test on 127.0.0.1.

mod support;

use std::io;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{eventually, Gunicorn, Server, TempDir};

const LOG_TIMEOUT: Duration = Duration::from_secs(10);

const APP: &str = r#"
import sys
def app(environ, start_response):
    if environ['PATH_INFO'] == '/print':
        print('printed-by-app', flush=True)
        sys.stderr.write('stderr-by-app\n')
        sys.stderr.flush()
    if environ['PATH_INFO'] == '/boom':
        raise RuntimeError('boom')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;

fn app_dir() -> TempDir {
    let dir = TempDir::new("logdest");
    dir.write("destapp.py", APP);
    dir
}

/// How long one receive on a collecting socket waits before the deadline is looked at again.
const RECV_WAIT: Duration = Duration::from_millis(200);

/// A UDP socket on 127.0.0.1 for the server to send to, and its port.
fn udp_collector() -> (UdpSocket, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(RECV_WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port();
    (sock, port)
}

/// A unix datagram socket bound at `path` for the server to send to.
fn unix_collector(path: &Path) -> UnixDatagram {
    let sock = UnixDatagram::bind(path).unwrap();
    sock.set_read_timeout(Some(RECV_WAIT)).unwrap();
    sock
}

/// gunicorn serving destapp with `extra` options and its log also sent to syslog at
/// `udp://127.0.0.1:<port>`.
fn syslog_udp_server(dir: &TempDir, port: u16, extra: &[&str]) -> Server {
    Gunicorn::new()
        .cwd(dir.path())
        .args([
            "--log-syslog",
            "--log-syslog-to",
            &format!("udp://127.0.0.1:{port}"),
        ])
        .args(extra)
        .arg("destapp:app")
        .bind_free_port()
        .spawn()
}

/// Collects the datagrams `recv` returns until `done` holds for what was received or the
/// time is up.
fn receive_until(
    mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut done: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + LOG_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline && !done(&got) {
        if let Ok(n) = recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[test]
fn capture_output_sends_app_prints_to_the_error_log_file() {
    let dir = app_dir();
    let log = dir.path().join("error.log");
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--error-logfile", log.to_str().unwrap(), "--capture-output"])
        .arg("destapp:app")
        .bind_free_port()
        .spawn();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(LOG_TIMEOUT, || read().contains("Booting worker with pid:")),
        "{}",
        read()
    );
    let port = support::listening_addr_in(&read()).port();
    let r = support::send_to(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        support::get_request("/print").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(
        eventually(LOG_TIMEOUT, || read().contains("printed-by-app")
            && read().contains("stderr-by-app")),
        "{}",
        read()
    );
    // Rotated away: USR1 reopens the file and points stdout/stderr at the new one.
    let rotated = dir.path().join("error.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(Signal::SIGUSR1);
    // The master logs the signal before it reopens: that line is the old file's last.
    assert!(eventually(LOG_TIMEOUT, || std::fs::read_to_string(
        &rotated
    )
    .unwrap_or_default()
    .contains("Handling signal: usr1")));
    let mut tries = 0;
    let moved = eventually(LOG_TIMEOUT, || {
        if tries < 50 {
            tries += 1;
            support::send_to(
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                support::get_request("/print").as_bytes(),
            );
        }
        read().contains("printed-by-app")
    });
    assert!(
        moved,
        "new file: {}\nold: {:?}",
        read(),
        std::fs::read_to_string(&rotated)
    );
    // With --capture-output nothing of the app's output reached the inherited stdout/stderr.
    assert!(
        !server.output().contains("printed-by-app"),
        "{}",
        server.output()
    );
}

#[test]
fn syslog_over_udp_carries_error_and_access_lines() {
    let (sock, port) = udp_collector();
    let dir = app_dir();
    let server = syslog_udp_server(
        &dir,
        port,
        &[
            "--log-syslog-prefix",
            "web",
            "--log-syslog-facility",
            "local0",
        ],
    );
    server.wait_booted(1);
    assert_eq!(server.get("/x").status, 200);
    let got = receive_until(
        |buf| sock.recv(buf),
        |got| {
            got.iter().any(|m| m.contains("gunicorn.web.access:"))
                && got.iter().any(|m| m.contains("Booting worker"))
        },
    );
    // local0 = 16: INFO is <134>.
    let boot = got
        .iter()
        .find(|m| m.contains("Booting worker"))
        .expect("boot line");
    assert!(boot.starts_with("<134>gunicorn.web.error: ["), "{boot:?}");
    assert!(boot.ends_with('\0'), "{boot:?}");
    let access = got
        .iter()
        .find(|m| m.contains("gunicorn.web.access:"))
        .expect("access line");
    assert!(
        access.starts_with("<134>gunicorn.web.access: ["),
        "{access:?}"
    );
    assert!(access.contains("] 127.0.0.1 - - ["), "{access:?}");
    assert!(
        access.contains("\"GET /x HTTP/1.1\" 200 2 \"-\" \"-\"\0"),
        "{access:?}"
    );
    // The error log keeps its own destination too.
    assert!(server.output().contains("[INFO] Booting worker"));
}

#[test]
fn disable_redirect_access_to_syslog_keeps_access_lines_out() {
    let (sock, port) = udp_collector();
    let dir = app_dir();
    let server = syslog_udp_server(
        &dir,
        port,
        &["--disable-redirect-access-to-syslog", "-n", "my:app"],
    );
    server.wait_booted(1);
    assert_eq!(server.get("/boom").status, 500);
    let got = receive_until(
        |buf| sock.recv(buf),
        |got| got.iter().any(|m| m.contains("Error handling request")),
    );
    let err = got
        .iter()
        .find(|m| m.contains("Error handling request"))
        .expect("error line");
    // user = 1: ERROR is <11>; the prefix is the process name with ':' as '.'.
    assert!(err.starts_with("<11>gunicorn.my.app.error: ["), "{err:?}");
    assert!(!got.iter().any(|m| m.contains(".access:")), "{got:?}");
}

#[test]
fn statsd_metrics_over_udp() {
    let (sock, port) = udp_collector();
    let dir = app_dir();
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args([
            "--statsd-host",
            &format!("127.0.0.1:{port}"),
            "--statsd-prefix",
            "svc",
        ])
        .args([
            "--dogstatsd-tags",
            "env:test",
            "-w",
            "2",
            "--log-level",
            "debug",
        ])
        .arg("destapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    assert_eq!(server.get("/x").status, 200);
    assert_eq!(server.get("/boom").status, 500);
    let want = [
        "svc.gunicorn.requests:1|c|@1.0|#env:test",
        "svc.gunicorn.request.status.200:1|c|@1.0|#env:test",
        "svc.gunicorn.request.status.500:1|c|@1.0|#env:test",
        "svc.gunicorn.log.exception:1|c|@1.0|#env:test",
        "svc.gunicorn.workers:2|g|#env:test",
    ];
    let got = receive_until(
        |buf| sock.recv(buf),
        |got| want.iter().all(|w| got.iter().any(|m| m == w)),
    );
    for w in want {
        assert!(got.iter().any(|m| m == w), "missing {w}: {got:?}");
    }
    let timer = got
        .iter()
        .find(|m| m.starts_with("svc.gunicorn.request.duration:"))
        .expect("duration timer");
    assert!(timer.ends_with("|ms|#env:test"), "{timer}");
    let value: f64 = timer["svc.gunicorn.request.duration:".len()..]
        .split('|')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value >= 0.0, "{timer}");
}

#[test]
fn syslog_over_unix_datagram_and_tcp_and_statsd_over_unix() {
    use std::io::Read;
    let dir = app_dir();
    let syslog_path = dir.path().join("syslog.sock");
    let syslog_sock = unix_collector(&syslog_path);
    let statsd_path = dir.path().join("statsd.sock");
    let statsd_sock = unix_collector(&statsd_path);
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--log-syslog", "--log-syslog-to"])
        .arg(format!("unix://{}#dgram", syslog_path.display()))
        .args(["--statsd-host"])
        .arg(format!("unix://{}", statsd_path.display()))
        .arg("destapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/u").status, 200);
    // The first datagram containing `needle`.
    let recv_until = |sock: &UnixDatagram, needle: &str| -> Option<String> {
        receive_until(
            |buf| sock.recv(buf),
            |got| got.iter().any(|m| m.contains(needle)),
        )
        .into_iter()
        .find(|m| m.contains(needle))
    };
    let access = recv_until(&syslog_sock, "\"GET /u HTTP/1.1\" 200").expect("syslog access line");
    assert!(
        access.starts_with("<14>gunicorn.destapp.app.access: ["),
        "{access:?}"
    );
    let metric = recv_until(&statsd_sock, "gunicorn.requests:").expect("statsd metric");
    assert_eq!(metric, "gunicorn.requests:1|c|@1.0");
    drop(server);

    // TCP: the same NUL-terminated messages on one stream.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args([
            "--log-syslog",
            "--log-syslog-to",
            &format!("tcp://127.0.0.1:{port}"),
        ])
        .arg("destapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(RECV_WAIT)).unwrap();
    let deadline = Instant::now() + LOG_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains("Booting worker") {
        if let Ok(n) = conn.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    let text = String::from_utf8_lossy(&got);
    let boot = text
        .split('\0')
        .find(|m| m.contains("Booting worker"))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        boot.starts_with("<14>gunicorn.destapp.app.error: ["),
        "{boot:?}"
    );
}

#[test]
fn an_unreachable_statsd_socket_disables_metrics_with_a_warning() {
    let dir = app_dir();
    let missing = dir.path().join("no-agent.sock");
    let server = Gunicorn::new()
        .cwd(dir.path())
        .arg("--statsd-host")
        .arg(format!("unix://{}", missing.display()))
        .arg("destapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert!(
        server.output().contains("StatsD metrics are disabled"),
        "{}",
        server.output()
    );
    assert_eq!(server.get("/").status, 200);
    let bad = Gunicorn::new()
        .args(["--statsd-host", "host:notaport", "destapp:app"])
        .cwd(dir.path())
        .run();
    assert_eq!(bad.code(), Some(1), "{bad:?}");
    assert!(bad.stderr.contains("invalid statsd address"), "{bad:?}");
}
