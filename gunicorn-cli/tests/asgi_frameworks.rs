//! The asgi worker under the frameworks people deploy it with: FastAPI (JSON, path and query
//! parameters, a form with a file upload, StreamingResponse, BackgroundTasks, an event stream
//! whose client leaves), Starlette (a WebSocket echo, a FileResponse through pathsend), the
//! `websockets` client against Starlette and a plain ASGI app (text, binary, fragmented
//! messages, ping, close codes, a message over --websocket-max-message-size, app errors
//! before and after accepting, the websocket scope, 20 connections at once), and a Django
//! project through its `asgi.py`. Each test skips with a note when its library is not in the
//! test Python.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use support::tls::{python, run_bounded};
use support::{eventually, fixtures_dir, have_module, Gunicorn, Server, TempDir};

const LOG_TIMEOUT: Duration = Duration::from_secs(10);

fn asgi_server(args: &[&str], app: &str, env: &[(&str, &std::path::Path)]) -> Server {
    let mut g = Gunicorn::new()
        .args(["-k", "asgi"])
        .args(args.iter().copied())
        .arg(app)
        .bind_free_port();
    for (k, v) in env {
        g = g.env(k, v);
    }
    let server = g.spawn();
    server.wait_booted(1);
    server
}

fn json_of(r: &support::Response) -> serde_json::Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&r.raw)))
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[test]
fn fastapi_json_params_and_validation() {
    if !have_module("fastapi") {
        return;
    }
    let server = asgi_server(&[], "asgi_fastapi_app:app", &[]);
    let r = server.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(json_of(&r), serde_json::json!({"message": "Hello, World!"}));
    let r = server.get("/items/42?q=caf%C3%A9&limit=3");
    assert_eq!(
        json_of(&r),
        serde_json::json!({"item_id": 42, "q": "café", "limit": 3})
    );
    // A path parameter that is not an int: FastAPI's 422.
    let r = server.get("/items/abc");
    assert_eq!(r.status, 422, "{}", r.text());
    let r = server.send(&post(
        "/items",
        "application/json",
        br#"{"name": "pen", "price": 1.25, "tags": ["a", "b"]}"#,
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json_of(&r),
        serde_json::json!({"name": "pen", "price_cents": 125, "tags": ["a", "b"]})
    );
    let r = server.send(&post("/items", "application/json", b"{not json"));
    assert_eq!(r.status, 422, "{}", r.text());
}

#[test]
fn fastapi_form_with_a_file_upload() {
    if !have_module("fastapi") || !have_module("multipart") {
        return;
    }
    let server = asgi_server(&[], "asgi_fastapi_app:app", &[]);
    let file: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let boundary = "----gunicornTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nreport\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"data.bin\"\r\nContent-Type: application/x-test\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = server.send(&post(
        "/upload",
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let sum: u64 = file.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(
        json_of(&r),
        serde_json::json!({
            "name": "report",
            "filename": "data.bin",
            "content_type": "application/x-test",
            "size": file.len(),
            "sum": sum,
        })
    );
}

#[test]
fn fastapi_streaming_response_and_background_tasks() {
    if !have_module("fastapi") {
        return;
    }
    let dir = TempDir::new("asgi-fastapi-bg");
    let go = dir.path().join("go");
    let mark = dir.path().join("mark");
    let server = asgi_server(
        &[],
        "asgi_fastapi_app:app",
        &[("FASTAPI_BG_GO", &go), ("FASTAPI_BG_MARK", &mark)],
    );
    let r = server.get("/stream?n=4");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.text(), "line 0\nline 1\nline 2\nline 3\n");
    // The response comes while the background task still waits for `go`: the task runs
    // after the response, not before it.
    let r = server.send(&post("/background", "application/json", b""));
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r), serde_json::json!({"queued": true}));
    assert!(!mark.exists(), "the task ended before the response");
    std::fs::write(&go, "").expect("write go");
    assert!(
        eventually(LOG_TIMEOUT, || mark.exists()),
        "the background task never ran\n{}",
        server.output()
    );
    // The worker serves on, with nothing logged as an error.
    assert_eq!(server.get("/").status, 200);
    assert!(!server.output().contains("[ERROR]"), "{}", server.output());
}

/// `python asgi_ws_client.py PORT ARGS...`: its JSON output.
fn ws_client(port: u16, args: &[&str]) -> serde_json::Value {
    let out = run_bounded(
        Command::new(python())
            .arg(fixtures_dir().join("asgi_ws_client.py"))
            .arg(port.to_string())
            .args(args),
    );
    assert!(
        out.status.success(),
        "asgi_ws_client {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn starlette_websocket_echo_with_the_websockets_client() {
    if !have_module("starlette") || !have_module("websockets") {
        return;
    }
    let server = asgi_server(
        &["--websocket-max-message-size", "150000"],
        "asgi_starlette_ws:app",
        &[],
    );
    let port = server.port();
    let got = ws_client(port, &["echo", "/ws"]);
    assert_eq!(
        got,
        serde_json::json!({
            "text": "hello",
            "unicode": "h\u{e9}llo \u{2713}",
            "binary": "0001feff",
            "fragmented": "fragmented",
            "fragmented_binary": "010203",
            "big_ok": true,
            "ping": true,
            "after_ping": "after ping",
            "close": {"code": 4001, "reason": "asked"},
            "client_close": {"code": 1000, "reason": "done"},
        })
    );
    // A message over --websocket-max-message-size: close 1009 (RFC 6455 §7.4.1), after the
    // small one went through.
    let got = ws_client(port, &["too_big", "/ws", "200000"]);
    assert_eq!(got, serde_json::json!({"small": "small", "code": 1009}));
    // The app closes before accepting: the handshake gets a 403.
    let got = ws_client(port, &["refuse", "/refuse"]);
    assert_eq!(got, serde_json::json!({"status": 403}));
    // No route for the path: Starlette closes before accepting, a 403 too.
    let got = ws_client(port, &["refuse", "/nothere"]);
    assert_eq!(got, serde_json::json!({"status": 403}));
    // The worker serves plain HTTP alongside: Starlette's 404 for a path it does not route.
    assert_eq!(server.get("/ws").status, 404);
}

#[test]
fn the_plain_asgi_websocket_with_the_websockets_client() {
    if !have_module("websockets") {
        return;
    }
    let server = asgi_server(&[], "asgi_app:app", &[]);
    let port = server.port();
    let got = ws_client(port, &["too_big", "/ws", "100"]);
    assert_eq!(
        got,
        serde_json::json!({"small": "small", "code": "no close"})
    );
    // The default limit is 16 MiB (gunicorn's websocket_max_message_size). The client is
    // still sending when the server fails the connection: the close frame must reach it all
    // the same (a close at once lost it to the RST of the unread bytes in most runs).
    for run in 0..3 {
        let got = ws_client(port, &["too_big", "/ws", "17000000"]);
        assert_eq!(
            got,
            serde_json::json!({"small": "small", "code": 1009}),
            "run {run}"
        );
    }
    let got = ws_client(port, &["refuse", "/ws/refuse"]);
    assert_eq!(got, serde_json::json!({"status": 403}));
    // An app that raises before accepting: a 500 for the handshake; after: close 1011
    // (RFC 6455 §7.4.1, internal error). Both as gunicorn 27 answers, both logged.
    let got = ws_client(port, &["refuse", "/ws/raise"]);
    assert_eq!(got, serde_json::json!({"status": 500}));
    let got = ws_client(port, &["send_close", "/ws", "raise"]);
    assert_eq!(got, serde_json::json!({"code": 1011}));
    let got = ws_client(port, &["send_close", "/ws", "close"]);
    assert_eq!(got, serde_json::json!({"code": 4000}));
    server
        .wait_for("boom after accept", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    assert!(server.output().contains("boom before accept"));
    // The websocket scope.
    let got = ws_client(port, &["first", "/ws/scope?x=1"]);
    assert_eq!(got["subprotocol"], serde_json::Value::Null);
    let scope: serde_json::Value =
        serde_json::from_str(got["message"].as_str().expect("a text message")).expect("json");
    assert_eq!(scope["type"], "websocket");
    assert_eq!(scope["scheme"], "ws");
    assert_eq!(scope["path"], "/ws/scope");
    assert_eq!(scope["query_string"], "x=1");
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["subprotocols"], serde_json::json!(["a", "b"]));
    assert_eq!(scope["server"], serde_json::json!(["127.0.0.1", port]));
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert!(scope.get("method").is_none(), "{scope}");
}

#[test]
fn a_django_project_through_its_asgi_py() {
    if !have_module("django") {
        return;
    }
    let server = asgi_server(
        &["--root-path", "/app"],
        "django_asgi_site.asgi:application",
        &[],
    );
    // A sync view (Django runs it in a thread): path parameter, query, and the root path
    // as SCRIPT_NAME. As gunicorn 27 does, the scope's path does not repeat the root path
    // (uvicorn since 0.26 prefixes it), so Django's request.path is the path as sent.
    let r = server.get("/hello/bob/?q=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json_of(&r),
        serde_json::json!({
            "hello": "bob", "q": "1", "script_name": "/app", "path": "/hello/bob/"
        })
    );
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
    // An async view.
    let r = server.get("/slow/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "async ok");
    // A body read by a view.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let r = server.send(&post("/echo/", "application/octet-stream", &body));
    assert_eq!(r.status, 200);
    assert!(r.body == body, "the echoed body differs");
    // CommonMiddleware's redirect for a missing slash, and a 404.
    let r = server.get("/slow");
    assert_eq!(r.status, 301, "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(server.get("/nothere/").status, 404);
    // The same project's wsgi.py under -k sync answers the same view alike (no root path).
    let sync = Gunicorn::new()
        .arg("django_asgi_site.wsgi:application")
        .bind_free_port()
        .spawn();
    sync.wait_booted(1);
    let r = sync.get("/hello/bob/?q=1");
    assert_eq!(
        json_of(&r),
        serde_json::json!({"hello": "bob", "q": "1", "script_name": "", "path": "/hello/bob/"})
    );
}

#[test]
fn a_starlette_file_response_arrives_whole() {
    if !have_module("starlette") {
        return;
    }
    let dir = TempDir::new("asgi-starlette-file");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let path = dir.path().join("data.bin");
    std::fs::write(&path, &data).expect("write the file");
    let server = asgi_server(&[], "asgi_starlette_ws:app", &[("STARLETTE_FILE", &path)]);
    let r = server.get("/file");
    assert_eq!(
        r.status,
        200,
        "{}",
        String::from_utf8_lossy(&r.raw[..200.min(r.raw.len())])
    );
    assert_eq!(r.header("content-length"), Some("3000000"));
    assert!(
        r.body == data,
        "the file arrived damaged ({} bytes)",
        r.body.len()
    );
    // HEAD: the head only.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    s.set_read_timeout(Some(LOG_TIMEOUT)).expect("timeout");
    s.write_all(b"HEAD /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "a body after HEAD: {} bytes",
        raw.len()
    );
}

#[test]
fn many_websockets_at_once_echo_every_message() {
    if !have_module("websockets") {
        return;
    }
    // 20 connections at once, 200 messages each (text and binary, up to 5 kB), in bursts:
    // every message comes back whole and in order, on the plain app and on Starlette.
    for (app, path) in [("asgi_app:app", "/ws"), ("asgi_starlette_ws:app", "/ws")] {
        if app.starts_with("asgi_starlette") && !have_module("starlette") {
            continue;
        }
        let server = asgi_server(&[], app, &[]);
        let got = ws_client(server.port(), &["many", path, "20", "200"]);
        assert_eq!(
            got,
            serde_json::json!({"echoed": 4000, "errors": []}),
            "{app}\n{}",
            server.output()
        );
    }
}

#[test]
fn a_fastapi_event_stream_ends_when_its_client_leaves() {
    if !have_module("fastapi") {
        return;
    }
    let dir = TempDir::new("asgi-fastapi-sse");
    let mark = dir.path().join("closed");
    // A grace period longer than the test's wait: the stream's end must not hang on it.
    let server = asgi_server(
        &[
            "--log-level",
            "debug",
            "--asgi-disconnect-grace-period",
            "60",
        ],
        "asgi_fastapi_app:app",
        &[("FASTAPI_STREAM_MARK", &mark)],
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    s.set_read_timeout(Some(LOG_TIMEOUT)).expect("timeout");
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.windows(10).filter(|w| w == b"data: tick").count() < 3 {
        let n = s.read(&mut chunk).expect("the stream");
        assert!(n > 0, "the stream ended");
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(!mark.exists());
    drop(s);
    // The next send fails (the client is gone: an OSError, ASGI 2.4), Starlette ends the
    // response with ClientDisconnect, and the generator's cleanup runs once the finished
    // task is released (not held by the grace period's timer): the stream does not go on.
    server
        .wait_for("ClientDisconnect", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("no send failed\n{}", server.output()));
    assert!(
        eventually(LOG_TIMEOUT, || mark.exists()),
        "the stream outlived its client\n{}",
        server.output()
    );
    assert_eq!(server.get("/").status, 200);
}
