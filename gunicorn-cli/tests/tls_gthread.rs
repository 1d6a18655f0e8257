//! End-to-end tests of TLS on the gthread worker (issue 14): HTTPS with curl and Python's `ssl`
//! (the environ's TLS keys, keep-alive and pipelined requests on one connection, a 1 MiB upload,
//! a response through `wsgi.file_wrapper`, large responses to a slow reader, close_notify when
//! the server ends a connection), client certificates (`--cert-reqs 2` and `1`), certificate
//! files refused before any fork, and what must be closed without tying the worker up: plain
//! HTTP and garbage sent to the TLS port (at once), a client that stalls before or during its
//! handshake (after the deadline), all reported at debug level only. The certificates (a CA, a
//! server certificate for 127.0.0.1 and localhost, a client certificate) are made with the
//! `openssl` command in a temp dir per test. Every wait is bounded; nothing asserts how long
//! something took beyond an upper bound.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::tls::{run_to_end, start_https, Pki};
use support::{Gunicorn, Server};

/// A CA, a server certificate signed by it for 127.0.0.1 and localhost, and a client
/// certificate signed by it, as PEM files in a temp dir.
fn certs() -> Pki {
    Pki::new("tls-gthread", "/CN=Test CA")
        .server("server", "/CN=localhost")
        .client("client", "/O=Test Org/CN=test-client")
}

/// gthread (one worker, `threads` threads) over TLS with `extra` flags.
fn gthread(certs: &Pki, threads: &str, extra: &[&str]) -> Gunicorn {
    Gunicorn::new()
        .args(["-k", "gthread", "-w", "1", "--threads", threads])
        .args(certs.tls_args("server"))
        .args(extra)
}

/// A gthread server (one worker, two threads) on `app` over TLS with `extra` flags; its port.
fn server(certs: &Pki, app: &str, extra: &[&str]) -> (Server, u16) {
    start_https(gthread(certs, "2", extra).arg(app), 1)
}

/// `curl` with the test CA and `args`; returns (success, stdout, stderr).
fn curl(certs: &Pki, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = certs.curl(args);
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of environ key `key` in the JSON the echo app returns (a string value).
fn environ_value(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\": ");
    let start = json.find(&needle)? + needle.len();
    let rest = &json[start..];
    if let Some(s) = rest.strip_prefix('"') {
        // Enough for the values looked at here (no escaped quotes in them).
        let end = s.find('"')?;
        return Some(s[..end].to_string());
    }
    let end = rest.find([',', '}'])?;
    Some(rest[..end].trim().to_string())
}

/// Asserts that `count` handshake failures were logged, at debug level, and that the server
/// logged no error line at all.
fn assert_failures_at_debug(server: &Server, count: usize) {
    let lines = server.wait_for(
        "TLS handshake failed from ip=127.0.0.1",
        count,
        Duration::from_secs(30),
    );
    assert!(
        lines.is_some(),
        "expected {count} handshake failure line(s); output:\n{}",
        server.output()
    );
    for line in server.output().lines() {
        if line.contains("TLS handshake failed") {
            assert!(line.contains("[DEBUG]"), "not at debug level: {line}");
        }
        assert!(
            !line.contains("[ERROR]"),
            "an error line: {line}\n{}",
            server.output()
        );
    }
}

/// Reads from a raw TCP connection until the server closes it (EOF or reset), at most `limit`;
/// panics if it stays open that long.
fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Only the read timeout means the server kept the connection open; any other error
            // (a reset, an abort after the server's alert) is the close being waited for.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the connection was not closed within {limit:?}: {e}; got {got:?}")
            }
            Err(_) => return got,
        }
        assert!(
            Instant::now() < deadline,
            "the connection was not closed within {limit:?}"
        );
    }
}

fn connect(port: u16) -> TcpStream {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect")
}

#[test]
fn curl_gets_https_environ() {
    let certs = certs();
    let (server, port) = server(&certs, "echo:app", &[]);
    for host in ["127.0.0.1", "localhost"] {
        let (ok, body, err) = curl(&certs, &[&format!("https://{host}:{port}/hello?x=1")]);
        assert!(ok, "curl failed: {err}\n{}", server.output());
        let json = String::from_utf8_lossy(&body);
        assert_eq!(
            environ_value(&json, "wsgi.url_scheme").as_deref(),
            Some("https"),
            "{json}"
        );
        assert_eq!(
            environ_value(&json, "HTTPS").as_deref(),
            Some("on"),
            "{json}"
        );
        assert_eq!(
            environ_value(&json, "PATH_INFO").as_deref(),
            Some("/hello"),
            "{json}"
        );
        let protocol = environ_value(&json, "SSL_PROTOCOL").unwrap_or_default();
        assert!(protocol.starts_with("TLSv1."), "{json}");
        assert!(environ_value(&json, "SSL_CIPHER").is_some(), "{json}");
        // No client certificate was asked for.
        assert_eq!(environ_value(&json, "SSL_CLIENT_S_DN"), None, "{json}");
    }
    // Served without an error line.
    assert!(!server.output().contains("[ERROR]"), "{}", server.output());
}

/// curl with two URLs reuses its connection; Python's `ssl` sends requests one after the
/// other and then five pipelined in one write (decrypted together: the ones after the first
/// wait inside the TLS stream, `has_buffered_input`), all on one connection.
#[test]
fn keep_alive_and_pipelining_on_one_connection() {
    let certs = certs();
    let (server, port) = server(&certs, "echo:app", &[]);
    let (ok, out, err) = curl(
        &certs,
        &[
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{num_connects}\n",
            &format!("https://127.0.0.1:{port}/a"),
            &format!("https://127.0.0.1:{port}/b"),
        ],
    );
    assert!(ok, "curl failed: {err}\n{}", server.output());
    assert_eq!(
        String::from_utf8_lossy(&out),
        "200 1\n200 0\n",
        "the second request reconnected"
    );

    let script = r#"
import json, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20), server_hostname="localhost")
f = s.makefile("rb")

def response():
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, value = line.decode().split(":", 1)
        if name.lower() == "content-length":
            length = int(value)
    env = json.loads(f.read(length))["environ"]
    ports.add(env["REMOTE_PORT"])
    print(status.decode().strip(), env["PATH_INFO"])

ports = set()
for i in range(3):
    s.sendall(b"GET /seq%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % i)
    response()
s.sendall(b"".join(b"GET /pipe%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % i for i in range(5)))
for i in range(5):
    response()
print("client ports", len(ports))
"#;
    let out = certs.python_script(script, port);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );
    let mut want: String = (0..3)
        .map(|i| format!("HTTP/1.1 200 OK /seq{i}\n"))
        .chain((0..5).map(|i| format!("HTTP/1.1 200 OK /pipe{i}\n")))
        .collect();
    // One connection: every request saw the same client port.
    want.push_str("client ports 1\n");
    assert_eq!(stdout, want);
}

/// A 1 MiB request body, echoed back in a response of over 1 MiB (more than a socket buffer:
/// the records a write leaves queued must still reach the client), then a file through
/// `wsgi.file_wrapper` (no sendfile over TLS: the bridge writes it through the stream).
#[test]
fn large_upload_and_file_wrapper() {
    let certs = certs();
    let body = certs.dir.write("body.bin", &"a".repeat(1 << 20));
    let file: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let file_path = certs.dir.write("file.txt", &file);
    let gunicorn = gthread(&certs, "2", &[])
        .env("FILE_PATH", &file_path)
        .arg("echo:app");
    let (server, port) = start_https(gunicorn, 1);
    let url = format!("https://127.0.0.1:{port}/upload");
    let (ok, out, err) = curl(
        &certs,
        &["--data-binary", &format!("@{}", body.display()), &url, &url],
    );
    assert!(ok, "curl failed: {err}\n{}", server.output());
    let text = String::from_utf8_lossy(&out);
    // Two responses on one connection, each with the whole body.
    assert_eq!(
        text.matches(&"a".repeat(1 << 20)).count(),
        2,
        "{} bytes",
        out.len()
    );
    drop(server);

    let gunicorn = gthread(&certs, "2", &[])
        .env("FILE_PATH", &file_path)
        .arg("files:with_length");
    let (server, port) = start_https(gunicorn, 1);
    let url = format!("https://127.0.0.1:{port}/file");
    let (ok, out, err) = curl(&certs, &[&url, &url]);
    assert!(ok, "curl failed: {err}\n{}", server.output());
    assert_eq!(out.len(), 2 * file.len());
    assert_eq!(&out[..file.len()], file.as_bytes());
    assert_eq!(&out[file.len()..], file.as_bytes());
}

/// `--cert-reqs 2`: a client without a certificate is refused in the handshake (reported at
/// debug level), one with a certificate signed by `--ca-certs` is served and its subject is in
/// the environ.
#[test]
fn client_certificates_required() {
    let certs = certs();
    let ca = certs.path("ca.pem");
    let extra = [
        "--cert-reqs",
        "2",
        "--ca-certs",
        &ca,
        "--log-level",
        "debug",
    ];
    let (server, port) = server(&certs, "echo:app", &extra);
    let url = format!("https://127.0.0.1:{port}/mtls");
    let (ok, _, err) = curl(&certs, &[&url]);
    assert!(!ok, "served without a client certificate");
    assert!(!err.contains("timed out"), "{err}");
    assert_failures_at_debug(&server, 1);

    let cert = certs.path("client.pem");
    let key = certs.path("client.key");
    let (ok, body, err) = curl(&certs, &["--cert", &cert, "--key", &key, &url]);
    assert!(ok, "curl failed: {err}\n{}", server.output());
    let json = String::from_utf8_lossy(&body);
    let subject = environ_value(&json, "SSL_CLIENT_S_DN").unwrap_or_default();
    assert!(subject.contains("CN=test-client"), "{json}");
    assert_eq!(
        environ_value(&json, "SSL_CLIENT_VERIFY").as_deref(),
        Some("SUCCESS"),
        "{json}"
    );
    assert!(environ_value(&json, "SSL_CLIENT_I_DN")
        .unwrap_or_default()
        .contains("CN=Test CA"));
    assert!(json.contains("BEGIN CERTIFICATE"), "{json}");
}

/// `--cert-reqs 1`: the client certificate is optional: without one the request is served
/// with no `SSL_CLIENT_*` subject, with one its subject is in the environ.
#[test]
fn client_certificates_optional() {
    let certs = certs();
    let ca = certs.path("ca.pem");
    let (server, port) = server(&certs, "echo:app", &["--cert-reqs", "1", "--ca-certs", &ca]);
    let url = format!("https://127.0.0.1:{port}/optional");
    let (ok, body, err) = curl(&certs, &[&url]);
    assert!(ok, "curl failed: {err}\n{}", server.output());
    let json = String::from_utf8_lossy(&body);
    assert_eq!(
        environ_value(&json, "HTTPS").as_deref(),
        Some("on"),
        "{json}"
    );
    assert_eq!(environ_value(&json, "SSL_CLIENT_S_DN"), None, "{json}");

    let cert = certs.path("client.pem");
    let key = certs.path("client.key");
    let (ok, body, err) = curl(&certs, &["--cert", &cert, "--key", &key, &url]);
    assert!(ok, "curl failed: {err}\n{}", server.output());
    let json = String::from_utf8_lossy(&body);
    let subject = environ_value(&json, "SSL_CLIENT_S_DN").unwrap_or_default();
    assert!(subject.contains("CN=test-client"), "{json}");
}

/// Plain HTTP and garbage sent to the TLS port are closed at once (after rustls's alert), never
/// a hang; the worker keeps serving, and the failures are logged at debug level only.
#[test]
fn plain_http_and_garbage_closed_at_once() {
    let certs = certs();
    let (server, port) = server(&certs, "echo:app", &["--log-level", "debug"]);
    let inputs: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x00\x01garbage garbage garbage\r\n\r\n",
        // A record header claiming a handshake record of an impossible length.
        b"\x16\x03\x01\xff\xff\x01\x00\x00",
    ];
    for input in inputs {
        let mut s = connect(port);
        s.write_all(input).expect("send");
        let got = wait_closed(&mut s, Duration::from_secs(10));
        // At most a TLS alert record, never an HTTP response in the clear.
        assert!(!got.starts_with(b"HTTP/"), "{got:?}");
        if let Some(&first) = got.first() {
            assert_eq!(first, 0x15, "not an alert record: {got:?}");
        }
    }
    assert_failures_at_debug(&server, inputs.len());
    let (ok, _, err) = curl(&certs, &[&format!("https://127.0.0.1:{port}/after")]);
    assert!(
        ok,
        "curl failed after the bad clients: {err}\n{}",
        server.output()
    );
}

/// A client that stops half-way through its ClientHello is closed after `--timeout`, one that
/// sends nothing after a new connection's grace (5 s + `--keep-alive`); meanwhile the worker
/// serves others. Neither holds a pool thread (one thread here).
#[test]
fn stalled_handshakes_closed_after_deadline() {
    let certs = certs();
    let extra = [
        "--timeout",
        "2",
        "--keep-alive",
        "1",
        "--log-level",
        "debug",
    ];
    let (server, port) = start_https(gthread(&certs, "1", &extra).arg("echo:app"), 1);
    // A TLS record header and the start of a ClientHello: the record is never completed.
    let mut half = connect(port);
    half.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .expect("send");
    let mut silent = connect(port);
    let started = Instant::now();
    // Others are served while both stall.
    for i in 0..3 {
        let (ok, _, err) = curl(&certs, &[&format!("https://127.0.0.1:{port}/meanwhile{i}")]);
        assert!(
            ok,
            "curl failed while handshakes stall: {err}\n{}",
            server.output()
        );
    }
    let closer = std::thread::spawn(move || {
        wait_closed(&mut silent, Duration::from_secs(30));
        Instant::now()
    });
    let got = wait_closed(&mut half, Duration::from_secs(20));
    assert!(got.is_empty(), "{got:?}");
    let half_closed = started.elapsed();
    let silent_closed = closer
        .join()
        .expect("silent client")
        .duration_since(started);
    // Upper bounds only (deadlines are swept every 100 ms): --timeout for the half handshake,
    // 5 s + --keep-alive for the silent connection.
    assert!(half_closed < Duration::from_secs(15), "{half_closed:?}");
    assert!(silent_closed < Duration::from_secs(25), "{silent_closed:?}");
    assert_failures_at_debug(&server, 1);
    let (ok, _, err) = curl(&certs, &[&format!("https://127.0.0.1:{port}/after")]);
    assert!(
        ok,
        "curl failed after the stalled clients: {err}\n{}",
        server.output()
    );
}

/// A certificate file that cannot be read, or a key that does not belong to the certificate,
/// stops the server before any worker is forked: one line naming the setting, exit 1.
#[test]
fn bad_certificate_files_refused_before_fork() {
    let certs = certs();
    let missing = certs.path("missing.pem");
    let client_cert = certs.path("client.pem");
    let server_key = certs.path("server.key");
    let cases = [
        (
            vec!["--certfile", &missing, "--keyfile", &server_key],
            "certfile",
        ),
        (
            vec!["--certfile", &client_cert, "--keyfile", &server_key],
            "does not match",
        ),
    ];
    for (args, needle) in cases {
        let done = run_to_end("gthread", &args, "echo:app");
        assert_eq!(done.code(), Some(1), "{args:?}: {}", done.stderr);
        assert!(done.stderr.contains(needle), "{args:?}: {}", done.stderr);
        assert!(!done.stderr.contains("Booting worker"), "{}", done.stderr);
    }
}

/// A client with a small receive buffer that reads slowly gets two 1 MiB responses whole on one
/// connection: the pool thread's writes wait for the socket (bounded) and push out every record
/// the TLS stream queued before the connection goes back to the event loop.
#[test]
fn slow_reader_gets_large_responses_whole() {
    let certs = certs();
    let (server, port) = server(&certs, "echo:app", &[]);
    let script = r#"
import socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.settimeout(20)
raw.connect(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost")
body = b"b" * (1 << 20)
for i in range(2):
    s.sendall(b"POST /slow%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (i, len(body)) + body)
    time.sleep(0.3)
    data, want = b"", None
    while want is None or len(data) < want:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
        if want is None and b"\r\n\r\n" in data:
            head = data.split(b"\r\n\r\n", 1)[0].decode()
            length = [l for l in head.split("\r\n") if l.lower().startswith("content-length")][0]
            want = len(head) + 4 + int(length.split(":")[1])
        time.sleep(0.0002)
    print(i, len(data) == want, data.count(body))
"#;
    let out = certs.python_script(script, port);
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0 True 1\n1 True 1\n");
}

/// A TLS connection the server ends says so with close_notify (Python's `ssl` with
/// `suppress_ragged_eofs=False` raises on a bare TCP close): after a `Connection: close`
/// response, and when an idle keep-alive connection times out.
#[test]
fn connections_end_with_close_notify() {
    let certs = certs();
    let (server, port) = server(&certs, "echo:app", &["--keep-alive", "1"]);
    let script = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
for close in (True, False):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    extra = b"Connection: close\r\n" if close else b""
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ssl.SSLEOFError as e:
            print("ragged EOF", e)
            break
        if not chunk:
            print("close_notify" if data.startswith(b"HTTP/1.1 200 OK") else "no response")
            break
        data += chunk
"#;
    let out = certs.python_script(script, port);
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "close_notify\nclose_notify\n"
    );
}
