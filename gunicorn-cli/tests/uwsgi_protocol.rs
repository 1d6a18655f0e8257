//! `--protocol uwsgi` (issue 18, item 12) through the real binary: a uWSGI client written from
//! the protocol's documentation (a 4-byte header, modifier1 / datasize little-endian /
//! modifier2, then `u16 size + key, u16 size + value` pairs, then the body) sends packets to
//! the sync, gthread, gevent and eventlet workers and reads the environ the echo app saw. Limits,
//! malformed packets, peers outside `--uwsgi-allow-from`, unix sockets, and the same packets
//! to gunicorn 27 (`target/package/venvs/gunicorn27`, skipped when absent). Where nginx is
//! installed, nginx's own `uwsgi_pass` in front of the server (skipped otherwise).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::reference::{gunicorn27, Reference};
use support::{eventually, free_port, have_module, parse_response, skip, Gunicorn, Response};
use support::{Server, TempDir};

const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A uWSGI packet: modifier1, the vars block's size (u16 little-endian), modifier2, the vars.
fn packet_mod(modifier1: u8, modifier2: u8, vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (key, value) in vars {
        for item in [key.as_bytes(), value.as_bytes()] {
            let size = u16::try_from(item.len()).expect("a variable fits in 64 KiB");
            block.extend_from_slice(&size.to_le_bytes());
            block.extend_from_slice(item);
        }
    }
    let size = u16::try_from(block.len()).expect("a vars block fits in 64 KiB");
    let mut out = vec![modifier1];
    out.extend_from_slice(&size.to_le_bytes());
    out.push(modifier2);
    out.extend_from_slice(&block);
    out
}

fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
    packet_mod(0, 0, vars)
}

/// The variables nginx sends with Debian's `uwsgi_params` for a request with a body.
fn nginx_post(body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let mut p = packet(&[
        ("QUERY_STRING", "x=1&y=%20"),
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", &len),
        ("REQUEST_URI", "/p%2Fq%252e?x=1&y=%20"),
        ("PATH_INFO", "/p/q%2e"),
        ("DOCUMENT_ROOT", "/srv/www"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("REMOTE_ADDR", "203.0.113.9"),
        ("REMOTE_PORT", "40000"),
        ("SERVER_PORT", "443"),
        ("SERVER_NAME", "example.com"),
        ("HTTP_HOST", "example.com"),
        ("HTTP_USER_AGENT", "curl/8"),
        ("HTTP_X_FOO", "a"),
        ("HTTP_X_FOO", "b"),
        ("HTTP_CONTENT_LENGTH", &len),
        ("HTTP_CONTENT_TYPE", "text/plain"),
    ]);
    p.extend_from_slice(body);
    p
}

/// Writes `bytes` on a new connection to `addr` and reads until the server closes it.
fn send_tcp(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    exchange(&mut s, bytes)
}

fn exchange(s: &mut (impl Read + Write), bytes: &[u8]) -> Vec<u8> {
    // The server may answer (and close) before taking everything, as for a refused packet.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < 64 << 20 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(&out)),
        }
    }
    out
}

fn response(raw: &[u8]) -> Response {
    parse_response(raw)
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(raw)))
}

fn addr(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.port()))
}

/// The environ `corpus_echo:app` wrote: `NAME LENGTH\n<bytes>\n` items, the body last as
/// `wsgi.input`.
fn environ(body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').expect("item head");
        let head = std::str::from_utf8(&rest[..nl]).expect("ascii head");
        let (name, len) = head.rsplit_once(' ').expect("NAME LENGTH");
        let len: usize = len.parse().expect("length");
        let value = &rest[nl + 1..nl + 1 + len];
        out.insert(
            name.to_string(),
            value.iter().map(|&b| char::from(b)).collect(),
        );
        rest = &rest[nl + 1 + len + 1..];
    }
    out
}

/// A server speaking uWSGI with `args` (a worker class and more), on a free port.
fn uwsgi_server(args: &[&str]) -> Server {
    let server = Gunicorn::new()
        .args(["--protocol", "uwsgi"])
        .args(args)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

/// The worker classes to run: sync, gthread, and gevent and eventlet when the test Python has
/// them.
fn classes() -> Vec<&'static [&'static str]> {
    let mut out: Vec<&'static [&'static str]> =
        vec![&["-k", "sync"], &["-k", "gthread", "--threads", "2"]];
    if have_module("gevent") {
        out.push(&["-k", "gevent"]);
    }
    if have_module("eventlet") {
        out.push(&["-k", "eventlet"]);
    }
    out
}

#[test]
fn environ_and_body_on_every_worker_class() {
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for class in classes() {
        let mut args = class.to_vec();
        args.push("corpus_echo:app");
        let server = uwsgi_server(&args);
        let r = response(&send_tcp(addr(&server), &nginx_post(b"hello")));
        assert_eq!(r.status, 200, "{class:?}: {}", r.text());
        let env = environ(&r.body);
        let want: &[(&str, &str)] = &[
            ("REQUEST_METHOD", "POST"),
            // PATH_INFO as nginx sent it: decoded once, never twice.
            ("PATH_INFO", "/p/q%2e"),
            ("QUERY_STRING", "x=1&y=%20"),
            ("RAW_URI", "/p%2Fq%252e?x=1&y=%20"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("CONTENT_LENGTH", "5"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_HOST", "example.com"),
            ("HTTP_USER_AGENT", "curl/8"),
            ("HTTP_X_FOO", "a,b"),
            ("wsgi.url_scheme", "https"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("SERVER_NAME", "127.0.0.1"),
            ("SCRIPT_NAME", ""),
            ("wsgi.input", "hello"),
        ];
        for (k, v) in want {
            assert_eq!(env.get(*k).map(String::as_str), Some(*v), "{class:?} {k}");
        }
        // The other CGI variables are not passed on (gunicorn 27).
        for k in [
            "DOCUMENT_ROOT",
            "REQUEST_SCHEME",
            "HTTPS",
            "HTTP_CONTENT_LENGTH",
        ] {
            assert!(!env.contains_key(k), "{class:?} {k}");
        }
        assert_eq!(
            env.get("SERVER_PORT"),
            Some(&server.port().to_string()),
            "{class:?}"
        );
        // A body larger than any read buffer, sent in one go.
        let r = response(&send_tcp(addr(&server), &nginx_post(&big)));
        assert_eq!(r.status, 200, "{class:?}");
        assert_eq!(
            environ(&r.body)["wsgi.input"].as_bytes(),
            &big[..],
            "{class:?}"
        );
    }
}

#[test]
fn responses_are_never_chunked_and_connections_are_kept() {
    for class in classes() {
        let mut args = class.to_vec();
        args.push("responses:generator");
        let server = uwsgi_server(&args);
        // No Content-Length: the body ends with the connection, without chunk markers.
        let raw = send_tcp(addr(&server), &packet(&[("PATH_INFO", "/")]));
        let r = response(&raw);
        assert_eq!(r.status, 200, "{class:?}");
        assert_eq!(r.header("Transfer-Encoding"), None, "{class:?}");
        assert_eq!(r.header("Connection"), Some("close"), "{class:?}");
        assert_eq!(r.body, b"gen-erated", "{class:?}");
    }
    // gthread and the greenlet workers keep a connection between packets whose responses have
    // a length, and close it after `HTTP_CONNECTION: close`, as gunicorn 27; sync answers one
    // packet per connection (`Connection: close`), as for HTTP.
    let mut bytes = packet(&[("PATH_INFO", "/1")]);
    bytes.extend_from_slice(&packet(&[("PATH_INFO", "/2"), ("CONTENT_LENGTH", "2")]));
    bytes.extend_from_slice(b"hi");
    bytes.extend_from_slice(&packet(&[
        ("PATH_INFO", "/3"),
        ("HTTP_CONNECTION", "close"),
    ]));
    for class in classes() {
        let mut args = class.to_vec();
        args.push("corpus_echo:app");
        let server = uwsgi_server(&args);
        let raw = send_tcp(addr(&server), &bytes);
        let text = String::from_utf8_lossy(&raw);
        let connection: Vec<&str> = text
            .split("\r\n")
            .filter_map(|l| l.strip_prefix("Connection: "))
            .collect();
        if class[1] == "sync" {
            assert_eq!(connection, ["close"], "{text}");
            continue;
        }
        assert_eq!(
            text.matches("HTTP/1.1 200 OK").count(),
            3,
            "{class:?}: {text}"
        );
        assert_eq!(
            connection,
            ["keep-alive", "keep-alive", "close"],
            "{class:?}"
        );
        assert!(text.contains("wsgi.input 2\nhi\n"), "{class:?}: {text}");
    }
}

#[test]
fn malformed_packets_are_refused_with_a_status() {
    let server = uwsgi_server(&["corpus_echo:app"]);
    // A 7-byte block whose only value announces 9 bytes but holds 2.
    let truncated = vec![0, 7, 0, 0, 1, 0, b'K', 9, 0, b'a', b'b'];
    // (packet, status, text in the page and the log line)
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (packet_mod(5, 0, &[]), 501, "Unsupported uWSGI modifier1: 5"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            501,
            "Unsupported uWSGI modifier1: 71",
        ),
        (truncated, 400, "Invalid uWSGI header: truncated value"),
        (
            packet(&[("CONTENT_LENGTH", "5x")]),
            400,
            "Invalid HTTP Header: 'CONTENT-LENGTH'",
        ),
        (
            packet(&[("HTTP_X", "a\r\nInjected: yes")]),
            400,
            "Invalid uWSGI header: invalid value for HTTP_X",
        ),
        (
            packet(&[("HTTP_HOST", "a"), ("HTTP_HOST", "b")]),
            400,
            "Invalid HTTP Header: 'HOST'",
        ),
        (
            packet(&[("REQUEST_METHOD", "get")]),
            400,
            "Invalid Method 'get'",
        ),
        (
            packet(&[("wsgi.url_scheme", "gopher")]),
            400,
            "Invalid uWSGI header: invalid wsgi.url_scheme 'gopher'",
        ),
    ];
    for (bytes, status, text) in &cases {
        let r = response(&send_tcp(addr(&server), bytes));
        assert_eq!(r.status, *status, "{text}: {}", r.text());
        let page = r.text().replace("&#x27;", "'");
        assert!(page.contains(text), "{text}: {page}");
        assert_eq!(r.header("Connection"), Some("close"));
    }
    assert!(
        server
            .wait_for(
                "Invalid request from ip=127.0.0.1: Unsupported uWSGI modifier1: 5",
                1,
                READ_TIMEOUT
            )
            .is_some(),
        "{}",
        server.output()
    );
    // A packet cut short by the peer's close is a premature end: no answer, as for HTTP.
    let full = packet(&[("PATH_INFO", "/")]);
    let mut s = TcpStream::connect(addr(&server)).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    s.write_all(&full[..full.len() - 1]).expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    assert!(exchange(&mut s, b"").is_empty());
    // The server still answers.
    assert_eq!(response(&send_tcp(addr(&server), &full)).status, 200);
}

#[test]
fn limits_apply_as_for_http() {
    let server = uwsgi_server(&[
        "--limit-request-fields",
        "3",
        "--limit-request-field_size",
        "40",
        "--limit-request-line",
        "60",
        "corpus_echo:app",
    ]);
    let long_value = "v".repeat(40);
    let long_uri = format!("/{}", "u".repeat(60));
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("HTTP_A", "1"), ("HTTP_B", "2"), ("HTTP_C", "3")], 200),
        (
            vec![
                ("HTTP_A", "1"),
                ("HTTP_B", "2"),
                ("HTTP_C", "3"),
                ("HTTP_D", "4"),
            ],
            431,
        ),
        (vec![("HTTP_A", long_value.as_str())], 431),
        (vec![("REQUEST_URI", long_uri.as_str())], 414),
        (vec![("PATH_INFO", long_uri.as_str())], 414),
    ];
    for (vars, status) in &cases {
        let r = response(&send_tcp(addr(&server), &packet(vars)));
        assert_eq!(r.status, *status, "{vars:?}: {}", r.text());
    }
}

/// Connects to `to` from the loopback address `from` (any 127/8 address is local on Linux).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::empty(),
        None,
    )
    .expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("address");
    nix::sys::socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &nix::sys::socket::SockaddrStorage::from(local),
    )
    .expect("bind the source address");
    nix::sys::socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &nix::sys::socket::SockaddrStorage::from(to),
    )
    .expect("connect");
    let s = TcpStream::from(sock);
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    s
}

#[test]
fn peers_outside_the_allow_list_get_403() {
    let p = packet(&[("PATH_INFO", "/")]);
    for class in classes() {
        let mut args = class.to_vec();
        args.push("corpus_echo:app");
        let server = uwsgi_server(&args);
        let r = response(&exchange(&mut connect_from("127.0.0.2", addr(&server)), &p));
        assert_eq!(r.status, 403, "{class:?}");
        assert!(
            r.text()
                .contains("uWSGI request from &#x27;127.0.0.2&#x27; not allowed"),
            "{}",
            r.text()
        );
        assert!(server
            .wait_for(
                "Invalid request from ip=127.0.0.2: uWSGI request from '127.0.0.2' not allowed",
                1,
                READ_TIMEOUT
            )
            .is_some());
        // The default list has 127.0.0.1.
        let r = response(&exchange(&mut connect_from("127.0.0.1", addr(&server)), &p));
        assert_eq!(r.status, 200, "{class:?}");
    }
    // A network, and `*`.
    for allow in ["127.0.0.0/29", "*"] {
        let server = uwsgi_server(&["--uwsgi-allow-from", allow, "corpus_echo:app"]);
        let r = response(&exchange(&mut connect_from("127.0.0.2", addr(&server)), &p));
        assert_eq!(r.status, 200, "{allow}");
        assert_eq!(environ(&r.body)["REMOTE_ADDR"], "127.0.0.2");
    }
}

#[test]
fn unix_socket_peers_are_always_allowed() {
    let dir = TempDir::new("uwsgi-unix");
    let path = dir.path().join("u.sock");
    let server = Gunicorn::new()
        .args(["--protocol", "uwsgi", "--uwsgi-allow-from", "192.0.2.1"])
        .args(["-b", &format!("unix:{}", path.display()), "corpus_echo:app"])
        .spawn();
    server.wait_booted(1);
    let mut s = UnixStream::connect(&path).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    let raw = exchange(
        &mut s,
        &packet(&[("PATH_INFO", "/u"), ("HTTP_HOST", "site.example:8080")]),
    );
    let r = response(&raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = environ(&r.body);
    assert_eq!(env["REMOTE_ADDR"], "");
    assert_eq!(
        (env["SERVER_NAME"].as_str(), env["SERVER_PORT"].as_str()),
        ("site.example", "8080")
    );
}

#[test]
fn settings_from_a_config_file_and_the_environment() {
    let dir = TempDir::new("uwsgi-conf");
    let conf = dir.write(
        "gunicorn.conf.py",
        "protocol = 'uwsgi'\nuwsgi_allow_ips = '127.0.0.2, 127.0.0.1'\n",
    );
    let p = packet(&[("PATH_INFO", "/c")]);
    let server = Gunicorn::new()
        .args(["-c", conf.to_str().expect("utf-8 path"), "corpus_echo:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let r = response(&exchange(&mut connect_from("127.0.0.2", addr(&server)), &p));
    assert_eq!(r.status, 200, "{}", r.text());
    drop(server);
    // $GUNICORN_CMD_ARGS, and the command line over the config file.
    let server = Gunicorn::new()
        .env("GUNICORN_CMD_ARGS", "--protocol uwsgi")
        .args(["-c", conf.to_str().expect("utf-8 path")])
        .args(["--uwsgi-allow-from", "127.0.0.1", "corpus_echo:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let r = response(&exchange(&mut connect_from("127.0.0.2", addr(&server)), &p));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = response(&send_tcp(addr(&server), &p));
    assert_eq!(environ(&r.body)["PATH_INFO"], "/c");
}

/// A uWSGI client over TLS (nginx's `uwsgi_pass suwsgi://`): Python's `ssl` sends the packet
/// written to a file and prints the response.
const TLS_CLIENT: &str = "import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname='localhost') as s:
        s.sendall(open(sys.argv[3], 'rb').read())
        out = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
sys.stdout.buffer.write(out)
";

#[test]
fn over_tls() {
    use support::tls::{have_openssl, python, run_bounded, start_https, Pki};
    if !have_openssl() {
        return skip("openssl is not installed");
    }
    let pki = Pki::new("uwsgi-tls", "/CN=uWSGI Test CA").server("server", "/CN=localhost");
    for class in classes() {
        let gunicorn = Gunicorn::new()
            .args(["--protocol", "uwsgi"])
            .args(pki.tls_args("server"))
            .args(class.iter().copied())
            .arg("corpus_echo:app");
        let (server, port) = start_https(gunicorn, 1);
        let mut p = packet(&[("PATH_INFO", "/t"), ("CONTENT_LENGTH", "2")]);
        p.extend_from_slice(b"ok");
        let packet_file = pki.dir.write("packet.bin", "");
        std::fs::write(&packet_file, &p).expect("write the packet");
        let client = pki.dir.write("client.py", TLS_CLIENT);
        let out = run_bounded(
            Command::new(python())
                .arg(&client)
                .arg(port.to_string())
                .arg(pki.path("ca.pem"))
                .arg(&packet_file),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = response(&out.stdout);
        assert_eq!(r.status, 200, "{class:?}: {}", r.text());
        let env = environ(&r.body);
        // TLS on our listener: https unless the packet says otherwise (gunicorn's `is_ssl`).
        assert_eq!(env["wsgi.url_scheme"], "https", "{class:?}");
        assert_eq!(
            (env["PATH_INFO"].as_str(), env["wsgi.input"].as_str()),
            ("/t", "ok"),
            "{class:?}"
        );
        drop(server);
    }
}

#[test]
fn bad_settings_are_one_line_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--protocol", "spdy"], "protocol"),
        (
            &["--protocol", "uwsgi", "--uwsgi-allow-from", "nginx"],
            "uwsgi_allow_ips",
        ),
    ];
    for (args, name) in cases {
        let done = Gunicorn::new()
            .args(*args)
            .arg("corpus_echo:app")
            .bind_free_port()
            .run();
        assert_ne!(done.code(), Some(0), "{args:?}");
        assert!(done.stderr.contains(name), "{args:?}: {}", done.stderr);
    }
}

// ---- the same packets to gunicorn 27 ----

/// One packet to gunicorn 27's server, its answer read to the end.
fn send_g27(reference: &Reference, bytes: &[u8]) -> Response {
    response(&send_tcp(
        SocketAddr::from(([127, 0, 0, 1], reference.port)),
        bytes,
    ))
}

#[test]
fn same_packets_as_gunicorn_27() {
    let Some(g27) = gunicorn27() else {
        return skip("gunicorn 27 is not installed in target/package/venvs/gunicorn27");
    };
    let dir = TempDir::new("uwsgi-g27");
    let args = ["--protocol", "uwsgi", "corpus_echo:app"];
    let Some(theirs) = Reference::start(&g27, &args, &dir, "Booting worker") else {
        return skip("gunicorn 27 did not boot");
    };
    let ours = uwsgi_server(&args);
    // Packets both serve the same way: the same status and the same environ (but for the
    // values that differ by run: the client's port, the server's port and software).
    let same: Vec<Vec<u8>> = vec![
        packet(&[]),
        packet(&[("PATH_INFO", "/a b"), ("QUERY_STRING", "q=1")]),
        packet(&[
            ("REQUEST_METHOD", "PUT"),
            ("PATH_INFO", "/x"),
            ("CONTENT_LENGTH", "3"),
        ])
        .into_iter()
        .chain(*b"abc")
        .collect(),
        packet(&[("HTTPS", "on"), ("HTTP_HOST", "h"), ("HTTP_ACCEPT", "*/*")]),
        packet(&[("HTTPS", "off"), ("wsgi.url_scheme", "https")]),
        packet(&[("CONTENT_TYPE", ""), ("CONTENT_LENGTH", "")]),
        packet(&[("HTTP_X_CAF", "caf\u{e9}")]),
        packet(&[("HTTP_CONNECTION", "close"), ("REMOTE_ADDR", "9.9.9.9")]),
        packet_mod(0, 9, &[("PATH_INFO", "/modifier2-is-ignored")]),
    ];
    let varying = ["REMOTE_PORT", "SERVER_PORT", "SERVER_SOFTWARE"];
    for p in &same {
        let (a, b) = (ours.send(p), send_g27(&theirs, p));
        assert_eq!(a.status, b.status, "{p:?}");
        let (mut ea, mut eb) = (environ(&a.body), environ(&b.body));
        for k in varying {
            ea.remove(k);
            eb.remove(k);
        }
        // gunicorn 27 builds RAW_URI from PATH_INFO; without REQUEST_URI ours does too.
        assert_eq!(ea, eb, "{p:?}");
    }
    // Where we differ on purpose (docs/uwsgi.md): gunicorn 27 answers a malformed packet or
    // a refused peer with a 500 and a traceback; ours gives the status its own exception
    // classes declare. It decodes PATH_INFO a second time; ours does not.
    let differs: Vec<(Vec<u8>, u16, u16)> = vec![
        (packet_mod(1, 0, &[]), 501, 500),
        (vec![0, 3, 0, 0, 1, 0, b'K'], 400, 500),
        (packet(&[("CONTENT_LENGTH", "abc")]), 400, 200),
    ];
    for (p, ours_status, theirs_status) in &differs {
        assert_eq!(ours.send(p).status, *ours_status, "{p:?}");
        assert_eq!(send_g27(&theirs, p).status, *theirs_status, "{p:?}");
    }
    let p = packet(&[("PATH_INFO", "/a%2e%2e/b")]);
    assert_eq!(environ(&ours.send(&p).body)["PATH_INFO"], "/a%2e%2e/b");
    assert_eq!(environ(&send_g27(&theirs, &p).body)["PATH_INFO"], "/a../b");
    // A UTF-8 path (`/café`, nginx's decoding of `/caf%C3%A9`): PEP 3333's latin-1 string of
    // its bytes here; gunicorn 27 encodes that string as UTF-8 again before decoding it.
    let p = packet(&[("PATH_INFO", "/caf\u{e9}")]);
    assert_eq!(
        environ(&ours.send(&p).body)["PATH_INFO"],
        "/caf\u{c3}\u{a9}"
    );
    assert_eq!(
        environ(&send_g27(&theirs, &p).body)["PATH_INFO"],
        "/caf\u{c3}\u{83}\u{c2}\u{a9}"
    );
}

// ---- nginx in front ----

/// nginx from Debian's package, if installed.
fn nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// An nginx that listens on a free port and passes every request to `upstream` with
/// `uwsgi_pass` and Debian's `uwsgi_params`; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Nginx {
    fn start(bin: &Path, upstream: SocketAddr) -> Option<Nginx> {
        let dir = TempDir::new("uwsgi-nginx");
        let port = free_port();
        let d = dir.path().display();
        let params = if Path::new("/etc/nginx/uwsgi_params").exists() {
            "include /etc/nginx/uwsgi_params;".to_string()
        } else {
            [
                "QUERY_STRING $query_string",
                "REQUEST_METHOD $request_method",
                "CONTENT_TYPE $content_type",
                "CONTENT_LENGTH $content_length",
                "REQUEST_URI $request_uri",
                "PATH_INFO $document_uri",
                "HTTPS $https if_not_empty",
            ]
            .iter()
            .map(|p| format!("uwsgi_param {p};"))
            .collect::<Vec<_>>()
            .join(" ")
        };
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; uwsgi_temp_path {d}/uwsgi;\n\
               proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi; scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port};\n\
                 location / {{ {params} uwsgi_pass {upstream}; }} }} }}\n"
        );
        let conf_path = dir.write("nginx.conf", &conf);
        let child = Command::new(bin)
            .args(["-e", &format!("{d}/error.log"), "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let n = Nginx {
            child,
            port,
            _dir: dir,
        };
        let up = eventually(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        up.then_some(n)
    }

    fn send(&self, request: &str) -> Response {
        support::send_to(
            SocketAddr::from(([127, 0, 0, 1], self.port)),
            request.as_bytes(),
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn behind_nginx_uwsgi_pass() {
    let Some(bin) = nginx() else {
        return skip("nginx is not installed (apt-get install nginx)");
    };
    for class in classes() {
        let mut args = class.to_vec();
        args.push("corpus_echo:app");
        let server = uwsgi_server(&args);
        let Some(front) = Nginx::start(&bin, addr(&server)) else {
            return skip("nginx did not start");
        };
        let body = "x".repeat(100_000);
        let r = front.send(&format!(
            "POST /a%20b/../c%2Fd?q=%41 HTTP/1.1\r\nHost: site.example\r\nX-Foo: 1\r\nX-Foo: 2\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(r.status, 200, "{class:?}: {}", r.text());
        let env = environ(&r.body);
        let want: &[(&str, &str)] = &[
            ("REQUEST_METHOD", "POST"),
            // nginx normalised and decoded the path once; it reaches the app as it is.
            ("PATH_INFO", "/c/d"),
            ("QUERY_STRING", "q=%41"),
            ("RAW_URI", "/a%20b/../c%2Fd?q=%41"),
            ("HTTP_HOST", "site.example"),
            ("HTTP_X_FOO", "1,2"),
            ("CONTENT_TYPE", "text/plain"),
            ("wsgi.url_scheme", "http"),
            ("wsgi.input", &body),
        ];
        for (k, v) in want {
            assert_eq!(env.get(*k).map(String::as_str), Some(*v), "{class:?} {k}");
        }
        // A GET: nginx sends empty CONTENT_LENGTH and CONTENT_TYPE.
        let r = front.send("GET /g HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{class:?}");
        assert_eq!(environ(&r.body)["wsgi.input"], "");
        drop(front);
        drop(server);
    }
    // A response without a length reaches the client whole, with no chunk markers in the body.
    let server = uwsgi_server(&["-k", "gthread", "--threads", "2", "responses:generator"]);
    let Some(front) = Nginx::start(&bin, addr(&server)) else {
        return skip("nginx did not start");
    };
    let r = front.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "gen-erated"));
    // Early hints are dropped: nginx would take the 103 for the response and pass the real
    // head on as body (gunicorn 27 sends them).
    let server = uwsgi_server(&["-k", "gthread", "--threads", "2", "responses:early_hints"]);
    let Some(front) = Nginx::start(&bin, addr(&server)) else {
        return skip("nginx did not start");
    };
    let r = front.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{:?}", r.raw);
    // A peer outside the list: nginx passes our 403 on.
    let server = uwsgi_server(&["--uwsgi-allow-from", "192.0.2.1", "corpus_echo:app"]);
    let Some(front) = Nginx::start(&bin, addr(&server)) else {
        return skip("nginx did not start");
    };
    let r = front.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 403, "{}", r.text());
}
