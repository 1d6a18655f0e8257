//! End-to-end tests of the asgi worker over TLS (`--certfile`: the scope's `https`, keep-alive,
//! a 1 MiB upload, a WebSocket over `wss://`, plain HTTP sent to the TLS port) and under
//! `--reload` (a SyntaxError served as a 500 page with its traceback until the file is fixed).
//! Certificates are made with the `openssl` command in a temp dir per test; every wait is
//! bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::tls::{have_openssl, start_https, Pki};
use support::{eventually, skip, Gunicorn, TempDir};

fn certs(tag: &str) -> Pki {
    Pki::new(tag, "/CN=Test CA").server("server", "/CN=localhost")
}

fn asgi_tls(certs: &Pki) -> (support::Server, u16) {
    start_https(
        Gunicorn::new()
            .args(["-k", "asgi", "-w", "1"])
            .args(certs.tls_args("server"))
            .arg("asgi_app:app"),
        1,
    )
}

#[test]
fn https_scope_keep_alive_and_a_large_upload() {
    if !have_openssl() {
        return skip("no openssl command");
    }
    let pki = certs("asgi-tls");
    let (server, port) = asgi_tls(&pki);
    let scope = pki.curl_status(&[], &format!("https://localhost:{port}/scope"));
    assert!(scope.ok(), "{}", scope.stderr);
    assert_eq!(scope.status, 200);
    assert!(
        scope.body.contains("\"scheme\": \"https\""),
        "{}",
        scope.body
    );
    // Two requests on one connection: curl reuses it and says so.
    let two = pki.curl(&[
        "-v",
        &format!("https://localhost:{port}/"),
        &format!("https://localhost:{port}/"),
    ]);
    let stderr = String::from_utf8_lossy(&two.stderr);
    assert!(two.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&two.stdout),
        "Hello, world!Hello, world!"
    );
    assert!(
        stderr.contains("Re-using existing connection"),
        "second request on a new connection:\n{stderr}"
    );
    // 1 MiB through TLS records both ways.
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let file = pki.dir.path().join("upload.bin");
    std::fs::write(&file, &body).unwrap();
    let echoed = pki.curl(&[
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("https://localhost:{port}/echo"),
    ]);
    assert!(echoed.status.success());
    assert!(echoed.stdout == body, "{} bytes back", echoed.stdout.len());
    drop(server);
}

#[test]
fn plain_http_to_the_tls_port_is_closed_and_serving_goes_on() {
    if !have_openssl() {
        return skip("no openssl command");
    }
    let pki = certs("asgi-tls-plain");
    let (server, port) = asgi_tls(&pki);
    // The server answers with a TLS alert at most, never HTTP, and closes.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    let ok = pki.curl_status(&[], &format!("https://localhost:{port}/"));
    assert_eq!((ok.status, ok.body.as_str()), (200, "Hello, world!"));
    drop(server);
}

/// A `wss://` echo with the `websockets` client, trusting the test CA.
const WSS_CLIENT: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.client import connect

async def main(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    async with connect(f"wss://localhost:{port}/ws", ssl=ctx, open_timeout=20) as ws:
        await ws.send("over tls")
        print(await asyncio.wait_for(ws.recv(), 20))
        await ws.send(b"\x00" * 70000)
        print(len(await asyncio.wait_for(ws.recv(), 20)))

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"#;

#[test]
fn a_websocket_over_wss() {
    if !have_openssl() {
        return skip("no openssl command");
    }
    if !support::python_has("websockets") {
        return skip("the websockets package is not installed");
    }
    let pki = certs("asgi-wss");
    let (server, port) = asgi_tls(&pki);
    let out = pki.python_script(WSS_CLIENT, port);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "over tls\n70000\n");
    drop(server);
}

const GOOD: &str = "async def app(scope, receive, send):\n    \
    if scope['type'] != 'http':\n        return\n    \
    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n    \
    await send({'type': 'http.response.body', 'body': b'VERSION'})\n";

#[test]
fn reload_serves_a_syntax_error_as_a_500_until_it_is_fixed() {
    let dir = TempDir::new("asgi-reload");
    dir.write("rapp.py", &GOOD.replace("VERSION", "one"));
    let server = Gunicorn::new()
        .args(["-k", "asgi", "-w", "1", "--reload", "--chdir"])
        .arg(dir.path().to_string_lossy())
        .arg("rapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/").body, b"one");
    // The reloader watches by inotify; a new mtime each time makes every change count.
    std::thread::sleep(Duration::from_millis(1100));
    dir.write("rapp.py", "async def app(scope, receive, send:\n");
    assert!(
        eventually(Duration::from_secs(30), || {
            let r = server.get("/");
            r.status == 500 && r.text().contains("SyntaxError")
        }),
        "no 500 page with the SyntaxError; output:\n{}",
        server.output()
    );
    std::thread::sleep(Duration::from_millis(1100));
    dir.write("rapp.py", &GOOD.replace("VERSION", "three"));
    assert!(
        eventually(Duration::from_secs(30), || server.get("/").body == b"three"),
        "the fixed app is not served; output:\n{}",
        server.output()
    );
}
