//! End-to-end tests of TLS on the greenlet worker classes (`-k gevent`, `-k eventlet`) through
//! the real binary: certificates made with the `openssl` command in a temporary directory,
//! clients that are real TLS stacks (curl, Python's `ssl` with `http.client`).
//!
//! Covered for each library installed in the test Python: a request over HTTPS with the TLS
//! keys in the environ; two requests and a pipelined pair on one kept-alive TLS connection; a
//! 1 MiB upload; client certificates (`--cert-reqs 2 --ca-certs`); plain HTTP sent to the TLS
//! port; a client that stalls inside the handshake (closed at the keep-alive deadline, or at
//! `--timeout` with keep-alive off, while other clients are served); TERM with an idle TLS
//! keep-alive connection. Failed handshakes are debug lines, never errors.
//!
//! Every wait is bounded: curl by `--max-time`, the Python clients by socket timeouts and a
//! kill after [`support::tls::CLIENT_TIMEOUT`], raw sockets by read timeouts.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::tls::{have_curl, have_openssl, python, start_https, Pki};
use support::{have_module, Gunicorn, Server, TempDir};

const LIBRARIES: [&str; 2] = ["gevent", "eventlet"];
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
const LOG_TIMEOUT: Duration = Duration::from_secs(20);

/// The app: `/upload` answers the length and Adler-32 of the body it read; every other path
/// answers the environ's TLS keys, one `KEY=value` per line.
const APP: &str = r#"
import zlib


def app(environ, start_response):
    if environ["PATH_INFO"] == "/upload":
        data = environ["wsgi.input"].read()
        body = ("%d %d" % (len(data), zlib.adler32(data))).encode()
    else:
        keys = ["wsgi.url_scheme", "HTTPS", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_CLIENT_VERIFY",
                "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN", "REMOTE_PORT"]
        body = "".join("%s=%s\n" % (k, environ.get(k, "")) for k in keys).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

/// Two requests on one connection with `http.client`, then a pipelined pair written at once
/// on another (the second `Connection: close`), then a malformed request on a third. Prints
/// what the test checks.
const KEEP_ALIVE_CLIENT: &str = r#"
import http.client, socket, ssl, sys

port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
for i in range(2):
    c.request("GET", "/environ")
    r = c.getresponse()
    body = r.read().decode()
    remote = dict(l.split("=", 1) for l in body.splitlines())["REMOTE_PORT"]
    print("request %d status=%d local=%d remote=%s" % (i, r.status, c.sock.getsockname()[1], remote))
c.close()

raw = socket.create_connection(("127.0.0.1", port), timeout=20)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("pipelined responses=%d" % data.count(b"HTTP/1.1 200 OK"))

# A malformed head: the error page comes back encrypted, then the close.
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                    server_hostname="localhost")
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("invalid %s" % data.split(b"\r\n", 1)[0].decode())
"#;

/// One request on a kept-alive connection, then waits for the server to close it.
const IDLE_CLIENT: &str = r#"
import http.client, ssl, sys, time

port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
c.request("GET", "/environ")
r = c.getresponse()
r.read()
print("ready status=%d" % r.status, flush=True)
c.sock.settimeout(40)
try:
    data = c.sock.recv(1)
    print("closed %r" % data, flush=True)
except Exception as e:
    print("error %s" % type(e).__name__, flush=True)
"#;

/// Kills a client process that is still running when dropped.
struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The certificates of a test: a CA, a server certificate for 127.0.0.1/localhost and a
/// client certificate, all signed by the CA; None (the test skips) without `openssl`.
fn certs() -> Option<Pki> {
    have_openssl().then(|| {
        Pki::new("tls-greenlet-certs", "/CN=Greenlet Test CA")
            .server("server", "/CN=localhost")
            .client("client", "/O=Acme/CN=client one")
    })
}

fn app_dir() -> TempDir {
    let dir = TempDir::new("tls-greenlet");
    dir.write("tls_app.py", APP);
    dir
}

/// A TLS server of `lib` (debug log, one worker) and its port.
fn start(dir: &TempDir, certs: &Pki, lib: &str, extra: &[&str]) -> (Server, u16) {
    let gunicorn = Gunicorn::new()
        .cwd(dir.path())
        .args(["-k", lib, "--log-level", "debug"])
        .args(certs.tls_args("server"))
        .args(extra.iter().copied())
        .arg("tls_app:app");
    start_https(gunicorn, 1)
}

/// `curl` to `https://127.0.0.1:port{path}` trusting the test CA: (success, status, body).
fn curl(certs: &Pki, port: u16, path: &str, extra: &[&str]) -> (bool, String, String) {
    let r = certs.curl_status(extra, &format!("https://127.0.0.1:{port}{path}"));
    (
        r.ok(),
        format!("{:03}", r.status),
        format!("{}{}", r.body, r.stderr),
    )
}

/// The server's output has no error-level line (failed handshakes are debug lines).
fn assert_no_error_lines(server: &Server, what: &str) {
    let output = server.output();
    assert!(
        !output
            .lines()
            .any(|l| l.contains("[ERROR]") || l.contains("panicked")),
        "{what}: an error line:\n{output}"
    );
}

/// The Adler-32 checksum (RFC 1950 §9), as Python's `zlib.adler32`.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

#[test]
fn serves_https_with_the_tls_keys_in_the_environ() {
    let Some(certs) = certs() else { return };
    if !have_curl() {
        return;
    }
    for lib in LIBRARIES {
        if !have_module(lib) {
            continue;
        }
        let dir = app_dir();
        let (server, port) = start(&dir, &certs, lib, &[]);
        let (ok, status, body) = curl(&certs, port, "/environ", &[]);
        assert!(ok, "{lib}: curl failed: {body}\n{}", server.output());
        assert_eq!(status, "200", "{lib}: {body}");
        assert!(body.contains("wsgi.url_scheme=https\n"), "{lib}: {body}");
        assert!(body.contains("HTTPS=on\n"), "{lib}: {body}");
        assert!(body.contains("SSL_PROTOCOL=TLSv1."), "{lib}: {body}");
        assert!(!body.contains("SSL_CIPHER=\n"), "{lib}: {body}");
        // No client certificate asked for: none verified, no SSL_CLIENT_* values.
        assert!(body.contains("SSL_CLIENT_VERIFY=NONE\n"), "{lib}: {body}");
        assert!(body.contains("SSL_CLIENT_S_DN=\n"), "{lib}: {body}");

        // A 1 MiB upload arrives whole (many TLS records, read through wsgi.input).
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        let file = dir.path().join("upload.bin");
        std::fs::write(&file, &data).expect("write upload");
        let upload = format!("@{}", file.display());
        let (ok, status, body) = curl(&certs, port, "/upload", &["--data-binary", &upload]);
        assert!(ok && status == "200", "{lib}: {status} {body}");
        assert_eq!(body, format!("{} {}", data.len(), adler32(&data)), "{lib}");
        assert_no_error_lines(&server, lib);
    }
}

#[test]
fn keep_alive_pipelining_and_error_pages_over_tls() {
    let Some(certs) = certs() else { return };
    for lib in LIBRARIES {
        if !have_module(lib) {
            continue;
        }
        let dir = app_dir();
        let (server, port) = start(&dir, &certs, lib, &["--keep-alive", "10"]);
        let out = certs.python_script(KEEP_ALIVE_CLIENT, port);
        let ok = out.status.success();
        let err = String::from_utf8_lossy(&out.stderr);
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(ok, "{lib}: client failed: {out}{err}\n{}", server.output());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{lib}: {out}");
        // Both requests came on the client's one connection: the server saw its port twice.
        let mut remotes = Vec::new();
        for (i, line) in lines[..2].iter().enumerate() {
            assert!(
                line.starts_with(&format!("request {i} status=200 ")),
                "{lib}: {line}"
            );
            let local = line
                .split("local=")
                .nth(1)
                .and_then(|r| r.split(' ').next());
            let remote = line.split("remote=").nth(1);
            assert_eq!(local, remote, "{lib}: {line}");
            remotes.push(remote.map(str::to_string));
        }
        assert_eq!(remotes[0], remotes[1], "{lib}: two connections: {out}");
        assert_eq!(lines[2], "pipelined responses=2", "{lib}: {out}");
        assert_eq!(lines[3], "invalid HTTP/1.1 400 Bad Request", "{lib}: {out}");
        assert_no_error_lines(&server, lib);
    }
}

#[test]
fn client_certificates_are_required_and_reported() {
    let Some(certs) = certs() else { return };
    if !have_curl() {
        return;
    }
    for lib in LIBRARIES {
        if !have_module(lib) {
            continue;
        }
        let dir = app_dir();
        let ca = certs.path("ca.pem");
        let (server, port) = start(&dir, &certs, lib, &["--cert-reqs", "2", "--ca-certs", &ca]);
        // Without a client certificate: refused in the handshake, no response.
        let (_, status, body) = curl(&certs, port, "/environ", &[]);
        assert_ne!(
            status, "200",
            "{lib}: served without a client certificate: {body}"
        );
        assert!(
            server
                .wait_for("TLS handshake failed", 1, LOG_TIMEOUT)
                .is_some(),
            "{lib}: no handshake failure line:\n{}",
            server.output()
        );
        // With one: served, its subject and issuer in the environ.
        let cert = certs.path("client.pem");
        let key = certs.path("client.key");
        let (ok, status, body) = curl(&certs, port, "/environ", &["--cert", &cert, "--key", &key]);
        assert!(
            ok && status == "200",
            "{lib}: {status} {body}\n{}",
            server.output()
        );
        let subject = body
            .lines()
            .find_map(|l| l.strip_prefix("SSL_CLIENT_S_DN="))
            .unwrap_or_default();
        assert!(subject.contains("CN=client one"), "{lib}: {body}");
        assert!(
            body.contains("SSL_CLIENT_VERIFY=SUCCESS\n"),
            "{lib}: {body}"
        );
        assert!(subject.contains("O=Acme"), "{lib}: {body}");
        assert!(
            body.contains("SSL_CLIENT_I_DN=CN=Greenlet Test CA\n"),
            "{lib}: {body}"
        );
        assert_no_error_lines(&server, lib);
    }
}

#[test]
fn plain_http_to_the_tls_port_is_closed_at_once_and_probes_are_quiet() {
    let Some(certs) = certs() else { return };
    for lib in LIBRARIES {
        if !have_module(lib) {
            continue;
        }
        let dir = app_dir();
        // A long keep-alive: the close must come from the failed handshake, not a timer.
        let (server, port) = start(&dir, &certs, lib, &["--keep-alive", "30"]);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // First a port probe (a health check: connect, close): not reported as a failure.
        let probe = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        drop(probe);
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let started = Instant::now();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // A reset is a close too (our request bytes may be unread by then).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{lib}: no close after {:?}: {e}", started.elapsed()),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{lib}: closed after {:?}",
            started.elapsed()
        );
        // Whatever came back (a TLS alert) is no HTTP response.
        assert!(!got.starts_with(b"HTTP/"), "{lib}: {got:?}");
        assert!(
            server
                .wait_for("TLS handshake failed", 1, LOG_TIMEOUT)
                .is_some(),
            "{lib}: {}",
            server.output()
        );
        // The probe's connection (served before) left no line: one failure only.
        std::thread::sleep(Duration::from_millis(300));
        let failures = server.output().matches("TLS handshake failed").count();
        assert_eq!(failures, 1, "{lib}: {}", server.output());
        assert_no_error_lines(&server, lib);
    }
}

/// Opens a connection that sends the first 3 bytes of a TLS record, then nothing; returns it
/// with the time it was opened.
fn stall(port: u16) -> (TcpStream, Instant) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&[0x16, 0x03, 0x01]).unwrap();
    (stream, Instant::now())
}

/// Opens a connection that announces a 512-byte handshake record and sends it one byte every
/// 200 ms (each read of the server gets a byte well within any per-read timeout); the writes
/// stop once the server closed or after 60 s.
fn trickle(port: u16) -> (TcpStream, Instant) {
    let (stream, since) = stall(port);
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = writer.write_all(&[0x02, 0x00]);
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end && writer.write_all(&[0]).is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    (stream, since)
}

/// Waits for the server to close `stream`; how long after `since`.
fn closed_after(stream: &mut TcpStream, since: Instant, lib: &str) -> Duration {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => continue,
            // Only the read timeout means the server kept the connection open; any other error
            // (a reset, an abort after the server's alert) is the close being checked for.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{lib}: the stalled handshake was not closed: {e}")
            }
            Err(_) => return since.elapsed(),
        }
    }
}

#[test]
fn a_stalled_handshake_is_closed_at_the_deadline_while_others_are_served() {
    let Some(certs) = certs() else { return };
    if !have_curl() {
        return;
    }
    for lib in LIBRARIES {
        if !have_module(lib) {
            continue;
        }
        // With keep-alive on: the handshake shares the first head's deadline (2 s).
        let dir = app_dir();
        let (server, port) = start(&dir, &certs, lib, &["--keep-alive", "2"]);
        let (mut stalled, since) = stall(port);
        for _ in 0..3 {
            let (ok, status, body) = curl(&certs, port, "/environ", &[]);
            assert!(
                ok && status == "200",
                "{lib}: {status} {body}\n{}",
                server.output()
            );
        }
        let after = closed_after(&mut stalled, since, lib);
        eprintln!("{lib}: stalled handshake closed after {after:?} (keep-alive 2 s)");
        assert!(
            after >= Duration::from_millis(1500),
            "{lib}: closed early: {after:?}"
        );
        assert!(
            after < Duration::from_secs(15),
            "{lib}: closed late: {after:?}"
        );
        assert!(
            server
                .wait_for("no complete handshake before the deadline", 1, LOG_TIMEOUT)
                .is_some(),
            "{lib}: {}",
            server.output()
        );
        // A client trickling its handshake gets the same deadline (one for the whole
        // handshake, not per read).
        let (mut trickling, since) = trickle(port);
        let after = closed_after(&mut trickling, since, lib);
        eprintln!("{lib}: trickled handshake closed after {after:?} (keep-alive 2 s)");
        assert!(
            after >= Duration::from_millis(1500),
            "{lib}: closed early: {after:?}"
        );
        assert!(
            after < Duration::from_secs(15),
            "{lib}: closed late: {after:?}"
        );
        assert_no_error_lines(&server, lib);
        drop(server);

        // With keep-alive off: bounded by --timeout instead of waiting forever.
        let (server, port) = start(&dir, &certs, lib, &["--keep-alive", "0", "--timeout", "4"]);
        let (mut stalled, since) = stall(port);
        let (ok, status, body) = curl(&certs, port, "/environ", &[]);
        assert!(
            ok && status == "200",
            "{lib}: {status} {body}\n{}",
            server.output()
        );
        let after = closed_after(&mut stalled, since, lib);
        eprintln!("{lib}: stalled handshake closed after {after:?} (keep-alive 0, timeout 4 s)");
        assert!(
            after >= Duration::from_secs(3),
            "{lib}: closed early: {after:?}"
        );
        assert!(
            after < Duration::from_secs(20),
            "{lib}: closed late: {after:?}"
        );
        assert_no_error_lines(&server, lib);
    }
}

#[test]
fn term_closes_an_idle_tls_keep_alive_connection_at_once() {
    let Some(certs) = certs() else { return };
    for lib in LIBRARIES {
        if !have_module(lib) {
            continue;
        }
        let dir = app_dir();
        let (server, port) = start(
            &dir,
            &certs,
            lib,
            &["--keep-alive", "60", "--graceful-timeout", "30"],
        );
        let child = Command::new(python())
            .args(["-c", IDLE_CLIENT])
            .arg(port.to_string())
            .arg(certs.path("ca.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python");
        let mut client = Client(child);
        // The client's socket timeouts (20 s, 40 s) bound these reads.
        let mut lines = BufReader::new(client.0.stdout.take().expect("stdout"));
        let mut line = String::new();
        lines.read_line(&mut line).expect("read client");
        assert_eq!(
            line.trim(),
            "ready status=200",
            "{lib}: {}",
            server.output()
        );
        // The connection now idles in keep-alive; TERM must not wait for it.
        let started = Instant::now();
        server.signal(Signal::SIGTERM);
        let status = server.wait_exit(STOP_TIMEOUT).expect("master exits");
        let took = started.elapsed();
        eprintln!("{lib}: exited {took:?} after TERM with an idle TLS connection");
        assert_eq!(status.code(), Some(0), "{lib}: {}", server.output());
        assert!(took < Duration::from_secs(15), "{lib}: took {took:?}");
        assert!(
            !server.output().contains("Worker graceful timeout"),
            "{lib}: {}",
            server.output()
        );
        line.clear();
        lines.read_line(&mut line).expect("read client");
        assert_eq!(line.trim(), "closed b''", "{lib}");
    }
}
