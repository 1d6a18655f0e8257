//! The WSGI bridge end to end inside one process: a raw request goes in one end of a socket
//! pair, the bridge runs a fixture app from tests/apps on the other end, and the bytes the
//! client receives are checked.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Once};

use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer, RequestParser};
use gunicorn_python::wsgi::{Bridge, BridgeOptions, Exchange, Outcome};
use gunicorn_python::App;
use pyo3::prelude::*;

const APPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/apps");

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gunicorn_python::ensure_initialized().unwrap();
        Python::attach(|py| {
            let path = py.import("sys").unwrap().getattr("path").unwrap();
            path.call_method1("insert", (0, APPS)).unwrap();
        });
    });
}

struct Reply {
    head: String,
    body: Vec<u8>,
    outcome: Outcome,
}

impl Reply {
    fn status_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits the raw response into head and body; the body is de-chunked when chunked and
/// complete. Leading 1xx responses are dropped (returned in `interim`).
fn split(raw: &[u8]) -> (Vec<String>, String, Vec<u8>) {
    let mut rest = raw;
    let mut interim = Vec::new();
    loop {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        if head.starts_with("HTTP/1.1 1") && !head.starts_with("HTTP/1.1 101") {
            interim.push(head);
            continue;
        }
        return (interim, head, rest.to_vec());
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..eol]).ok()?, 16).ok()?;
        body = &body[eol + 2..];
        if size == 0 {
            return (body == b"\r\n").then_some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        if body.get(size..size + 2)? != b"\r\n" {
            return None;
        }
        body = &body[size + 2..];
    }
}

fn serve_with(uri: &str, request: &[u8], opts: BridgeOptions) -> (Vec<String>, Reply) {
    setup();
    let (mut client, server) = UnixStream::pair().unwrap();
    let req_bytes = request.to_vec();
    let writer = {
        let mut c = client.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = c.write_all(&req_bytes);
            // The client sends nothing more: a short body ends at this EOF.
            let _ = c.shutdown(std::net::Shutdown::Write);
        })
    };
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = client.read_to_end(&mut out);
        out
    });
    let http = Arc::new(HttpConfig::default());
    let conn = ConnInfo {
        peer: Peer::Tcp("127.0.0.1:40000".parse().unwrap()),
        local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        tls: None,
    };
    let mut parser = RequestParser::new(http.clone(), conn.clone());
    let mut buf = Vec::new();
    let mut server_r = server.try_clone().unwrap();
    let (req, used) = loop {
        if let Some(parsed) = parser.parse_head(&buf).unwrap() {
            break parsed;
        }
        let mut chunk = [0u8; 4096];
        let n = server_r.read(&mut chunk).unwrap();
        assert!(n > 0, "request head incomplete");
        buf.extend_from_slice(&chunk[..n]);
    };
    drop(server_r);
    let exchange = Exchange::new(
        Box::new(server),
        buf.split_off(used),
        &req,
        http.clone(),
        true,
    );
    let outcome = Python::attach(|py| {
        let (module, name) = uri.split_once(':').unwrap();
        let callable = py.import(module).unwrap().getattr(name).unwrap().unbind();
        let bridge = Bridge::new(py, &App::from_callable(callable), opts).unwrap();
        bridge
            .handle_request(py, &req, &conn, parser.proxy_info(), &http, &exchange)
            .unwrap()
    });
    drop(exchange.take_transport());
    writer.join().unwrap();
    let raw = reader.join().unwrap();
    if raw.is_empty() {
        let head = String::new();
        return (
            Vec::new(),
            Reply {
                head,
                body: raw,
                outcome,
            },
        );
    }
    let (interim, head, body) = split(&raw);
    let chunked = head
        .to_ascii_lowercase()
        .contains("\r\ntransfer-encoding: chunked");
    let body = if chunked {
        dechunk(&body).unwrap_or(body)
    } else {
        body
    };
    (
        interim,
        Reply {
            head,
            body,
            outcome,
        },
    )
}

fn opts() -> BridgeOptions {
    BridgeOptions {
        multithread: false,
        multiprocess: false,
        always_close: true,
        sendfile: true,
    }
}

fn serve(uri: &str, request: &[u8]) -> Reply {
    serve_with(uri, request, opts()).1
}

fn get(uri: &str) -> Reply {
    serve(uri, b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
}

#[test]
fn hello_world() {
    let r = get("hello:app");
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.header("Server"), Some("gunicorn"));
    assert!(r.header("Date").is_some());
    assert_eq!(r.header("Content-Length"), Some("14"));
    assert_eq!(r.text(), "Hello, World!\n");
    assert_eq!(r.outcome.status, Some(200));
    assert_eq!(r.outcome.body_bytes, 14);
}

#[test]
fn head_sends_no_body() {
    let r = serve("hello:app", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    assert_eq!(r.header("Content-Length"), Some("14"));
    assert_eq!(r.body, b"");
}

#[test]
fn response_shapes() {
    let cases = [
        (
            "responses:write_callable",
            "HTTP/1.1 200 OK",
            "one two three",
        ),
        ("responses:generator", "HTTP/1.1 200 OK", "gen-erated"),
        ("responses:too_long", "HTTP/1.1 200 OK", "01234"),
        (
            "responses:exc_info_before_headers",
            "HTTP/1.1 500 Oops",
            "replaced",
        ),
        (
            "responses:second_start_response",
            "HTTP/1.1 200 OK",
            "Response headers already set!",
        ),
        ("responses:no_content", "HTTP/1.1 204 No Content", ""),
        ("responses:errors_stream", "HTTP/1.1 200 OK", "ok"),
        ("responses:list_headers", "HTTP/1.1 200 OK", "ok"),
    ];
    for (uri, status, body) in cases {
        let r = get(uri);
        assert_eq!(r.status_line(), status, "{uri}");
        assert_eq!(r.text(), body, "{uri}");
    }
}

#[test]
fn header_lists_of_every_kind_are_read_as_python_iterates_them() {
    let cases = [
        ("tuple", "X-Tuple"),
        ("subclass", "X-Iterated"),
        ("generator", "X-Generated"),
    ];
    for (kind, header) in cases {
        let request = format!("GET /?{kind} HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = serve("responses:header_containers", request.as_bytes());
        assert_eq!(r.status_line(), "HTTP/1.1 200 OK", "{kind}");
        assert_eq!(r.header(header), Some("yes"), "{kind}: {}", r.head);
        assert_eq!(r.header("X-Stored"), None, "{kind}: {}", r.head);
        assert_eq!(r.text(), "ok", "{kind}");
    }
}

#[test]
fn start_response_reports_the_first_error_of_the_kind_that_wins() {
    let r = get("responses:start_response_errors");
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    let want = [
        "TypeError: 1 is not a string",
        "ValueError: ",
        "TypeError: 2 is not a string",
        "ValueError: ",
        "ValueError: ",
        "TypeError: header must be a (name, value) tuple, not ('bad',)",
    ];
    assert_eq!(lines.len(), want.len(), "{text}");
    for (got, want) in lines.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} is not {want:?}...");
    }
    assert!(lines[1].contains("2x OK"), "{}", lines[1]);
    assert!(lines[3].contains("X A"), "{}", lines[3]);
    assert!(lines[4].contains("conflicting"), "{}", lines[4]);
}

#[test]
fn app_errors_give_a_500_page() {
    for uri in [
        "responses:raises",
        "responses:str_body",
        "responses:bad_header",
    ] {
        let r = get(uri);
        assert_eq!(
            r.status_line(),
            "HTTP/1.1 500 Internal Server Error",
            "{uri}"
        );
        assert_eq!(r.header("Connection"), Some("close"), "{uri}");
        assert!(
            r.text().contains("<h1><p>Internal Server Error</p></h1>"),
            "{uri}"
        );
        assert_eq!(r.outcome.status, Some(500));
        assert!(!r.outcome.reusable);
    }
}

#[test]
fn errors_after_the_head_close_the_connection() {
    let r = get("responses:exc_info_after_headers");
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    // The body is cut: "partial" went out as a chunk, and no terminating chunk follows.
    assert!(dechunk(&r.body).is_none());
    assert!(r.text().contains("partial"));
    assert!(!r.outcome.reusable);
}

fn close_marker(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gunicorn-close-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    Python::attach(|py| {
        let environ = py.import("os").unwrap().getattr("environ").unwrap();
        environ
            .set_item("CLOSE_MARKER", p.to_str().unwrap())
            .unwrap();
    });
    p
}

#[test]
fn close_is_always_called() {
    setup();
    // Serialized in one test: the marker path is process-global.
    let marker = close_marker("ok");
    let r = get("responses:closing");
    assert_eq!(r.text(), "abc");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "closed\n");

    let marker = close_marker("fail");
    let r = get("responses:closing_fails");
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "closed\n");
    assert!(!r.outcome.reusable);
}

#[test]
fn early_hints_come_first() {
    let (interim, r) = serve_with(
        "responses:early_hints",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        opts(),
    );
    assert_eq!(interim.len(), 1);
    assert!(
        interim[0].starts_with("HTTP/1.1 103 Early Hints\r\n"),
        "{interim:?}"
    );
    assert!(interim[0].contains("Link: </style.css>; rel=preload"));
    assert_eq!(r.text(), "ok");
}

fn echo(request: &[u8]) -> serde_like::Json {
    let r = serve("echo:app", request);
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    serde_like::parse(&r.text())
}

/// A tiny JSON reader through Python's json module (no serde dependency needed).
mod serde_like {
    use pyo3::prelude::*;
    pub type Json = Py<PyAny>;
    pub fn parse(s: &str) -> Json {
        Python::attach(|py| {
            py.import("json")
                .unwrap()
                .call_method1("loads", (s,))
                .unwrap()
                .unbind()
        })
    }
    pub fn get(j: &Json, path: &[&str]) -> Option<String> {
        Python::attach(|py| {
            let mut v = j.bind(py).clone();
            for p in path {
                v = v.get_item(p).ok()?;
            }
            Some(v.str().ok()?.to_string())
        })
    }
}

#[test]
fn environ_keys() {
    let j = echo(b"POST /a%20b?x=1 HTTP/1.1\r\nHost: example.com:81\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Thing: 1\r\nX-Thing: 2\r\n\r\nhello");
    let env = |k: &str| serde_like::get(&j, &["environ", k]);
    let cases = [
        ("REQUEST_METHOD", Some("POST")),
        ("PATH_INFO", Some("/a b")),
        ("QUERY_STRING", Some("x=1")),
        ("RAW_URI", Some("/a%20b?x=1")),
        ("SERVER_PROTOCOL", Some("HTTP/1.1")),
        ("CONTENT_TYPE", Some("text/plain")),
        ("CONTENT_LENGTH", Some("5")),
        ("HTTP_HOST", Some("example.com:81")),
        ("HTTP_X_THING", Some("1,2")),
        ("REMOTE_ADDR", Some("127.0.0.1")),
        ("REMOTE_PORT", Some("40000")),
        ("SERVER_NAME", Some("127.0.0.1")),
        ("SERVER_PORT", Some("8000")),
        ("SCRIPT_NAME", Some("")),
        ("wsgi.url_scheme", Some("http")),
        ("wsgi.version", Some("[1, 0]")),
        ("wsgi.multithread", Some("False")),
        ("wsgi.multiprocess", Some("False")),
        ("wsgi.run_once", Some("False")),
        ("wsgi.input_terminated", Some("True")),
        ("wsgi.input", Some("<Body>")),
        ("wsgi.errors", Some("<WSGIErrorsWrapper>")),
        ("wsgi.file_wrapper", Some("<type>")),
        ("wsgi.early_hints", Some("<EarlyHints>")),
        ("gunicorn.socket", Some("<socket>")),
        ("SERVER_SOFTWARE", Some(gunicorn_http::SERVER_SOFTWARE)),
    ];
    for (k, want) in cases {
        assert_eq!(env(k).as_deref(), want, "{k}");
    }
    assert_eq!(serde_like::get(&j, &["body"]).as_deref(), Some("hello"));
}

#[test]
fn request_bodies() {
    let cases: [(&[u8], &str); 4] = [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", "hello world"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc", "abc"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ""),
    ];
    for (req, want) in cases {
        let j = echo(req);
        assert_eq!(serde_like::get(&j, &["body"]).as_deref(), Some(want));
    }
}

#[test]
fn expect_continue_is_answered_before_the_app_runs() {
    let (interim, r) = serve_with(
        "echo:app",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
        opts(),
    );
    assert_eq!(interim, vec!["HTTP/1.1 100 Continue".to_string()]);
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
}

#[test]
fn input_line_reading() {
    let body = b"first line\nsecond\nthird\nlast";
    let req = [
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.to_vec(),
    ]
    .concat();
    let r = serve("echo:lines", &req);
    assert_eq!(
        r.text(),
        r#"["first line\n", "sec", ["ond\n", "third\n", "last"]]"#
    );
    let r = serve("echo:readlines", &req);
    assert_eq!(
        r.text(),
        r#"["first line\n", "second\n", "third\n", "last"]"#
    );
    let r = serve("echo:sized_reads", &req);
    assert_eq!(
        r.text(),
        r#"["fir", "st ", "lin", "e\ns", "eco", "nd\n", "thi", "rd\n", "las", "t"]"#
    );
}

fn big_file() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gunicorn-sendfile-{}", std::process::id()));
    if !p.exists() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, data).unwrap();
    }
    setup();
    Python::attach(|py| {
        let environ = py.import("os").unwrap().getattr("environ").unwrap();
        environ.set_item("FILE_PATH", p.to_str().unwrap()).unwrap();
    });
    p
}

#[test]
fn file_wrapper_with_and_without_sendfile() {
    let path = big_file();
    let data = std::fs::read(&path).unwrap();
    for sendfile in [true, false] {
        let o = BridgeOptions { sendfile, ..opts() };
        let (_, r) = serve_with("files:with_length", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", o);
        assert_eq!(r.header("Content-Length"), Some("300000"));
        assert!(r.body == data, "with_length sendfile={sendfile}");
        assert_eq!(r.outcome.body_bytes, 300_000);

        let (_, r) = serve_with("files:chunked", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", o);
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
        assert!(r.body == data, "chunked sendfile={sendfile}");

        let (_, r) = serve_with("files:offset", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", o);
        assert_eq!(r.body, &data[10..30], "offset sendfile={sendfile}");

        let (_, r) = serve_with(
            "files:with_length",
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            o,
        );
        assert_eq!(r.body, b"", "HEAD sendfile={sendfile}");
    }
    let r = get("files:in_memory");
    assert_eq!(r.body, vec![b'x'; 20000]);
}

#[test]
fn http_10_gets_no_chunking() {
    let r = serve("responses:generator", b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status_line(), "HTTP/1.0 200 OK");
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.text(), "gen-erated");
}

#[test]
fn body_errors() {
    // A short Content-Length body: the app gets what came (gunicorn's LengthReader).
    let j = echo(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(serde_like::get(&j, &["body"]).as_deref(), Some("abc"));
    // Broken chunk framing raises in the app; uncaught, it is answered like a bad request.
    for req in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"[..],
    ] {
        let r = serve("echo:app", req);
        assert_eq!(r.status_line(), "HTTP/1.1 400 Bad Request", "{}", String::from_utf8_lossy(req));
        assert_eq!(r.outcome.status, Some(400));
        assert!(!r.outcome.reusable);
    }
    // A chunked body cut by EOF: the client is gone, nothing is sent.
    let r = serve(
        "echo:app",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    );
    assert_eq!(r.head, "");
    assert_eq!(r.outcome.status, None);
    assert!(!r.outcome.reusable);
}

#[test]
fn large_bodies_arrive_whole() {
    let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    // Content-Length.
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = serve("echo:sized_reads", &req);
    let pieces = serde_like::parse(&r.text());
    let joined = Python::attach(|py| -> String {
        let list = pieces.bind(py);
        let parts: Vec<String> = list.extract().unwrap();
        assert!(parts[..parts.len() - 1].iter().all(|p| p.len() == 3));
        parts.concat()
    });
    assert!(joined.as_bytes() == body.as_slice());
    // Chunked, in chunks of 1000 bytes with extensions and a trailer.
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(1000) {
        req.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    let j = echo(&req);
    let got = serde_like::get(&j, &["body"]).unwrap();
    assert!(got.as_bytes() == body.as_slice());
}
