//! End-to-end tests of HTTP/2 on the gthread worker (issue 15): ALPN over TLS with curl, h2c
//! with prior knowledge (curl, Python's `h2` package) and by `Upgrade: h2c` (curl, and gunicorn
//! 27 answering the same requests when its reference venv is there), the settings (`--http-protocols`,
//! `--http2-cleartext`, the limits), the WSGI environ and access log of a stream, streams of one
//! connection running concurrently, large bodies both ways with small windows, early hints,
//! GOAWAY on HUP with zero failed streams (the Rust `h2` client, which handles GOAWAY as
//! browsers do), and the attacks of the last years sent as raw frames: rapid reset, the
//! CONTINUATION flood, an HPACK bomb, SETTINGS and PING floods, a zero-window stall, too many
//! streams. After each attack the server must go on serving another client. Every wait is
//! bounded; nothing asserts how long something took beyond an upper bound.

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::h2::*;
use support::tls::{have_curl, have_openssl, start_https, Pki};
use support::{Gunicorn, Server};

// ---- servers and clients ----------------------------------------------------------------------

/// A gthread server (one worker) serving h2c with prior knowledge to loopback, with `extra`
/// flags, on `app`.
fn h2c_server(app: &str, extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .args(["-k", "gthread", "-w", "1", "--threads", "4"])
        .args([
            "--http-protocols",
            "h2,h1",
            "--http2-cleartext",
            "prior-knowledge",
        ])
        .args(extra)
        .arg(app)
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    server
}

fn certs() -> Pki {
    Pki::new("http2", "/CN=Test CA").server("server", "/CN=localhost")
}

fn have_tools() -> bool {
    if have_openssl() && have_curl() {
        return true;
    }
    support::skip("openssl or curl is missing");
    false
}

/// The worker pids alive now.
fn same_worker(server: &Server, before: &[i32]) -> bool {
    let now: Vec<i32> = support::children_of(server.pid());
    before.iter().all(|p| now.contains(p))
}

// ---- ALPN over TLS ------------------------------------------------------------------------------

#[test]
fn alpn_negotiates_h2_and_the_environ_says_http_2() {
    if !have_tools() {
        return;
    }
    let pki = certs();
    let (server, port) = start_https(
        Gunicorn::new()
            .args(["-k", "gthread", "-w", "1", "--threads", "4"])
            .args(pki.tls_args("server"))
            .args(["--http-protocols", "h2,h1", "--access-logfile", "-"])
            .arg("h2_app:app"),
        1,
    );
    let url = format!("https://localhost:{port}/env?x=1");
    let ca = pki.path("ca.pem");
    let (code, body, err) = curl(&["--http2", "--cacert", &ca, "-w", "\n%{http_version}", &url]);
    assert_eq!(code, 0, "{err}");
    let (json, version) = body.rsplit_once('\n').unwrap();
    assert_eq!(version, "2", "curl did not speak HTTP/2: {err}");
    for needle in [
        "\"SERVER_PROTOCOL\": \"HTTP/2.0\"",
        "\"wsgi.url_scheme\": \"https\"",
        &format!("\"HTTP_HOST\": \"localhost:{port}\""),
        "\"QUERY_STRING\": \"x=1\"",
        "\"HTTPS\": \"on\"",
    ] {
        assert!(json.contains(needle), "{needle} not in {json}");
    }
    // The access log counts the stream as a request, `%(H)s` = HTTP/2.0.
    assert!(
        server
            .wait_for("\"GET /env?x=1 HTTP/2.0\" 200", 1, Duration::from_secs(10))
            .is_some(),
        "no access line: {}",
        server.output()
    );
    // HTTP/1.1 is still offered on the same port.
    let (code, _, err) = curl(&["--http1.1", "--cacert", &ca, "-w", "%{http_version}", &url]);
    assert_eq!(code, 0, "{err}");
    // A large response and wsgi.file_wrapper over TLS.
    for (path, size) in [("file", "100000"), ("big?3000000", "3000000")] {
        let url = format!("https://localhost:{port}/{path}");
        let (code, out, err) = curl(&[
            "--http2",
            "--cacert",
            &ca,
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &url,
        ]);
        assert_eq!((code, out.as_str()), (0, size), "{path}: {err}");
    }
}

#[test]
fn h1_only_unless_asked_and_sync_warns_as_gunicorn() {
    if !have_tools() {
        return;
    }
    let pki = certs();
    for (worker, protocols) in [("gthread", None), ("sync", Some("h2,h1"))] {
        let mut g = Gunicorn::new()
            .args(["-k", worker, "-w", "1"])
            .args(pki.tls_args("server"));
        if let Some(p) = protocols {
            g = g.args(["--http-protocols", p]);
        }
        let (server, port) = start_https(g.arg("hello:app"), 1);
        let (code, out, err) = curl(&[
            "--http2",
            "--cacert",
            &pki.path("ca.pem"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            &format!("https://localhost:{port}/"),
        ]);
        assert_eq!((code, out.as_str()), (0, "1.1"), "{worker}: {err}");
        if worker == "sync" {
            assert!(
                server
                    .output()
                    .contains("HTTP/2 is not supported by the sync worker. Use gthread, gevent, or asgi workers for HTTP/2 support. Falling back to HTTP/1.1 only."),
                "{}",
                server.output()
            );
        }
    }
}

// ---- h2c ----------------------------------------------------------------------------------------

#[test]
fn h2c_prior_knowledge_for_trusted_peers_only() {
    if !have_curl() {
        support::skip("curl is missing");
        return;
    }
    let server = h2c_server("h2_app:app", &[]);
    let url = format!("http://127.0.0.1:{}/env", server.port());
    let (code, body, err) = curl(&["--http2-prior-knowledge", "-w", "\n%{http_version}", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        body.ends_with("\n2") && body.contains("\"SERVER_PROTOCOL\": \"HTTP/2.0\""),
        "{body}"
    );
    // A stream refused before the app (more than limit_request_fields fields) gets its 431
    // page on the stream; a HEAD gets the head of it only (a body would be a protocol error).
    let many: Vec<String> = (0..105).map(|i| format!("x{i}: v")).collect();
    let mut args: Vec<&str> = many.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    args.extend([
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_code} %{http_version}",
    ]);
    for head in [false, true] {
        let mut args = args.clone();
        if head {
            args.push("-I");
        }
        args.push(&url);
        let (code, out, err) = curl(&args);
        assert_eq!(code, 0, "HEAD {head}: {err}");
        assert!(out.ends_with("\n431 2"), "HEAD {head}: {out}");
        assert_eq!(
            out.contains("Request Header Fields Too Large</p>"),
            !head,
            "{out}"
        );
    }
    // A trusted peer on a prior-knowledge port must speak HTTP/2 (gunicorn 27): 400.
    let resp = server.get("/env");
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text()
            .contains("Expected HTTP/2 connection preface, got b&#x27;GET /env HTTP/1.1"),
        "{}",
        resp.text()
    );
    drop(server);
    // Anyone else is served HTTP/1.x as if h2c were off.
    let server = h2c_server("h2_app:app", &["--forwarded-allow-ips", "192.0.2.1"]);
    assert_eq!(server.get("/env").status, 200);
    let (_, out, _) = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{}/", server.port()),
    ]);
    assert_ne!(out, "200", "an untrusted peer got h2c");
}

/// gunicorn 27's binary in the reference venv (made by scripts/test-package), with h2.
fn gunicorn27() -> Option<std::path::PathBuf> {
    let bin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/package/venvs/gunicorn27/bin");
    let has_h2 = Command::new(bin.join("python"))
        .args(["-c", "import h2"])
        .output()
        .is_ok_and(|o| o.status.success());
    has_h2.then(|| bin.join("gunicorn"))
}

/// What curl saw for `args`: the HTTP version, status and body.
fn curl_seen(args: &[&str], url: &str) -> (String, String) {
    let mut all = vec!["-w", "\n%{http_version} %{http_code}"];
    all.extend_from_slice(args);
    all.push(url);
    let (code, out, err) = curl(&all);
    assert_eq!(code, 0, "curl {args:?} {url}: {err}");
    let (body, seen) = out.rsplit_once('\n').unwrap();
    (seen.to_string(), body.to_string())
}

#[test]
fn h2c_upgrade_as_curl_asks_for_it_and_as_gunicorn_27_answers() {
    if !have_curl() {
        support::skip("curl is missing");
        return;
    }
    let server = Gunicorn::new()
        .args(["-k", "gthread", "-w", "1", "--threads", "4"])
        .args(["--http-protocols", "h2,h1", "--http2-cleartext", "both"])
        .arg("h2_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let base = format!("http://127.0.0.1:{}", server.port());
    // `curl --http2` on http:// asks for the upgrade; the request becomes stream 1.
    let (seen, body) = curl_seen(&["--http2"], &format!("{base}/env?q=1"));
    assert_eq!(seen, "2 200", "{body}");
    assert!(
        body.contains("\"SERVER_PROTOCOL\": \"HTTP/2.0\"")
            && body.contains("\"QUERY_STRING\": \"q=1\""),
        "{body}"
    );
    // A small body goes along.
    let (seen, body) = curl_seen(
        &["--http2", "--data-binary", "hello"],
        &format!("{base}/upload"),
    );
    assert_eq!(seen, "2 200");
    assert!(body.contains("\"size\": 5"), "{body}");
    // With `both`, prior knowledge and plain HTTP/1.1 work on the same port.
    assert_eq!(
        curl_seen(&["--http2-prior-knowledge"], &format!("{base}/")).0,
        "2 200"
    );
    assert_eq!(curl_seen(&["--http1.1"], &format!("{base}/")).0, "1.1 200");
    // A chunked body is not upgraded (RFC 7540 §3.2 lets a server ignore the upgrade).
    let (seen, _) = curl_seen(
        &[
            "--http2",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "hello",
        ],
        &format!("{base}/upload"),
    );
    assert_eq!(seen, "1.1 200");
    drop(server);
    // An untrusted peer's upgrade is ignored: HTTP/1.1.
    let server = Gunicorn::new()
        .args(["-k", "gthread", "-w", "1"])
        .args(["--http-protocols", "h2,h1", "--http2-cleartext", "upgrade"])
        .args(["--forwarded-allow-ips", "192.0.2.1"])
        .arg("h2_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let url = format!("http://127.0.0.1:{}/", server.port());
    assert_eq!(curl_seen(&["--http2"], &url).0, "1.1 200");
    drop(server);
    // gunicorn 27 answers the same requests the same way.
    let Some(g27) = gunicorn27() else {
        support::skip("gunicorn 27 with h2 is not in target/package/venvs/gunicorn27");
        return;
    };
    let port = support::free_port();
    let mut reference = Command::new(g27)
        .args([
            "-k",
            "gthread",
            "-w",
            "1",
            "--threads",
            "4",
            "--no-control-socket",
        ])
        .args(["--http-protocols", "h2,h1", "--http2-cleartext", "both"])
        .args([
            "-b",
            &format!("127.0.0.1:{port}"),
            "--chdir",
            &support::apps_dir().to_string_lossy(),
        ])
        .arg("h2_app:app")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = support::eventually(Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let seen = up.then(|| {
        [
            curl_seen(&["--http2"], &format!("{base}/env?q=1")).0,
            curl_seen(&["--http2-prior-knowledge"], &format!("{base}/")).0,
            curl_seen(&["--http1.1"], &format!("{base}/")).0,
        ]
    });
    let _ = reference.kill();
    let _ = reference.wait();
    assert_eq!(
        seen,
        Some([
            "2 200".to_string(),
            "2 200".to_string(),
            "1.1 200".to_string()
        ])
    );
}

#[test]
fn settings_are_checked_before_any_fork() {
    let cases: &[(&[&str], &str)] = &[
        (&["--http-protocols", "h3"], "http_protocols"),
        (&["--http-protocols", "h2,h2"], "http_protocols"),
        (&["--http2-cleartext", "sometimes"], "http2_cleartext"),
        (&["--http2-max-frame-size", "1000"], "http2_max_frame_size"),
        (
            &["--http2-max-concurrent-streams", "0"],
            "http2_max_concurrent_streams",
        ),
        (
            &["--http2-initial-window-size", "2147483648"],
            "http2_initial_window_size",
        ),
    ];
    for (args, needle) in cases {
        let done = Gunicorn::new()
            .args(["-k", "gthread"])
            .args(*args)
            .arg("hello:app")
            .bind_free_port()
            .run();
        assert_ne!(done.code(), Some(0), "{args:?}");
        assert!(done.stderr.contains(needle), "{args:?}: {}", done.stderr);
        assert!(
            !done.stderr.contains("Booting worker"),
            "{args:?}: {}",
            done.stderr
        );
    }
}

// ---- streams -----------------------------------------------------------------------------------

#[test]
fn streams_of_one_connection_run_concurrently() {
    if !support::have_module("h2") {
        return;
    }
    let server = h2c_server("h2_app:app", &[]);
    // Four streams meet at a barrier inside the app: only concurrent streams get there.
    let out = h2_client(server.port(), &["barrier", "4"]);
    assert!(
        out.contains("\"statuses\": [\"200\", \"200\", \"200\", \"200\"]"),
        "{out}"
    );
}

#[test]
fn large_bodies_both_ways_with_small_windows() {
    if !support::have_module("h2") {
        return;
    }
    let server = h2c_server("h2_app:app", &["--http2-initial-window-size", "16384"]);
    let port = server.port();
    // 1 MiB up, through a 16 KiB window the server reopens as the app reads.
    let out = h2_client(port, &["upload", "1048576"]);
    let sent = out.split("\"sha256\": \"").nth(2).map(|s| &s[..64]);
    assert!(out.contains("\"size\": 1048576"), "{out}");
    assert_eq!(
        out.split("\"sha256\": \"").nth(1).map(|s| &s[..64]),
        sent,
        "{out}"
    );
    // 1 MB down, through the client's 1 KiB window.
    let out = h2_client(port, &["download", "1000000", "1024"]);
    assert!(
        out.contains("\"status\": \"200\", \"size\": 1000000"),
        "{out}"
    );
    // 103 Early Hints as an informational HEADERS frame.
    let out = h2_client(port, &["hints"]);
    assert!(
        out.contains("\":status\": \"103\"")
            && out.contains("\"link\": \"</style.css>; rel=preload\""),
        "{out}"
    );
    assert!(out.contains("\"body\": \"hinted\\n\""), "{out}");
}

#[test]
fn graceful_reload_sends_goaway_and_loses_no_stream() {
    let server = Gunicorn::new()
        .args(["-k", "gthread", "-w", "2", "--threads", "4"])
        .args([
            "--http-protocols",
            "h2,h1",
            "--http2-cleartext",
            "prior-knowledge",
        ])
        .arg("hello:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    let port = server.port();
    let looping = std::thread::spawn(move || goaway_loop(port, 6));
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        server.signal(nix::sys::signal::Signal::SIGHUP);
    }
    let (ok, failed, refused) = looping.join().unwrap();
    assert!(ok > 0, "no request served");
    assert_eq!(
        failed,
        0,
        "ok {ok}, refused {refused}; output:\n{}",
        server.output()
    );
    assert!(server.worker_pids().len() >= 8, "{}", server.output());
}

// ---- attacks -------------------------------------------------------------------------------------

/// A server for the attack tests: one thread, so a stream that kept it would show.
fn target(extra: &[&str]) -> (Server, Vec<i32>) {
    let mut args = vec!["--threads", "1", "--timeout", "3"];
    args.extend_from_slice(extra);
    let server = Gunicorn::new()
        .args(["-k", "gthread", "-w", "1"])
        .args([
            "--http-protocols",
            "h2,h1",
            "--http2-cleartext",
            "prior-knowledge",
        ])
        .args(args)
        .arg("h2_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let workers = support::children_of(server.pid());
    (server, workers)
}

fn assert_still_serving(server: &Server, workers: &[i32], what: &str) {
    assert!(
        raw_get_ok(server.port(), "/"),
        "{what}: another client was not served; output:\n{}",
        server.output()
    );
    assert!(
        same_worker(server, workers),
        "{what}: the worker was replaced; output:\n{}",
        server.output()
    );
}

#[test]
fn rapid_reset_does_not_run_the_app_for_reset_streams() {
    let (server, workers) = target(&[]);
    let mut raw = Raw::connect(server.port());
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            id,
            &get_block("/calls"),
        ));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes())); // CANCEL
    }
    let _ = raw.send(&burst);
    let mut goaway = None;
    raw.read_until(|kind, _, _, payload| {
        if kind == GOAWAY && payload.len() >= 8 {
            goaway = Some(u32::from_be_bytes([
                payload[4], payload[5], payload[6], payload[7],
            ]));
        }
        goaway.is_some()
    });
    // The connection is told to calm down (ENHANCE_YOUR_CALM = 0xb).
    assert_eq!(goaway, Some(0xb), "GOAWAY error code");
    assert_still_serving(&server, &workers, "rapid reset");
    // The app ran for few of the 2000 streams (those it took before their reset arrived).
    let out = h2_calls(server.port());
    assert!(out < 1000, "the app ran {out} times for 2000 reset streams");
}

/// How many times h2_app ran (its /calls counter, counting this call).
fn h2_calls(port: u16) -> u64 {
    let mut raw = Raw::connect(port);
    raw.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get_block("/calls"),
    ))
    .unwrap();
    let mut body = Vec::new();
    raw.read_until(|kind, flags, stream, payload| {
        if kind == DATA && stream == 1 {
            body.extend_from_slice(payload);
        }
        (kind == DATA || kind == HEADERS) && stream == 1 && flags & END_STREAM != 0
    });
    String::from_utf8_lossy(&body)
        .trim()
        .parse()
        .unwrap_or(u64::MAX)
}

#[test]
fn continuation_flood_is_cut_short() {
    let (server, workers) = target(&[]);
    let mut raw = Raw::connect(server.port());
    // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames
    // of 16 KiB of literal fields each, 4 MiB in all.
    let _ = raw.send(&frame(HEADERS, END_STREAM, 1, &get_block("/")));
    let mut field = vec![0x00];
    hpack_str(&mut field, b"x-flood");
    hpack_str(&mut field, &vec![b'a'; 16000]);
    let mut cut = false;
    for _ in 0..256 {
        if raw.send(&frame(CONTINUATION, 0, 1, &field)).is_err() {
            cut = true;
            break;
        }
    }
    assert!(
        cut || raw.goaway_or_closed(),
        "the server read 4 MiB of one header block"
    );
    assert_still_serving(&server, &workers, "CONTINUATION flood");
}

#[test]
fn hpack_bomb_is_refused() {
    let (server, workers) = target(&[]);
    let mut raw = Raw::connect(server.port());
    // One 4 000-byte field put in the dynamic table, then referenced 1 000 times by its
    // one-byte index: 4 MB of header list from a 5 KB block.
    let mut block = get_block("/");
    block.push(0x40); // literal with incremental indexing, new name
    hpack_str(&mut block, b"x-bomb");
    hpack_str(&mut block, &vec![b'b'; 4000]);
    block.extend(std::iter::repeat_n(0xbe, 1000)); // indexed: dynamic entry 62
    let _ = raw.send(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &block));
    let mut refused = false;
    raw.read_until(|kind, _, stream, payload| {
        refused |= kind == GOAWAY
            || kind == RST_STREAM
            // 431 (static index of :status 400 is 12; 431 is a literal)
            || (kind == HEADERS && stream == 1 && payload.first() != Some(&0x88));
        refused
    });
    assert!(refused || raw.next().is_none(), "the bomb was served");
    assert_still_serving(&server, &workers, "HPACK bomb");
}

#[test]
fn settings_and_ping_floods_do_not_tie_the_worker_up() {
    let (server, workers) = target(&[]);
    for (kind, payload) in [(SETTINGS, vec![0, 4, 0, 0, 0x40, 0]), (PING, vec![0u8; 8])] {
        let mut raw = Raw::connect(server.port());
        // 100 000 frames sent without reading a single answer.
        let burst: Vec<u8> = (0..100_000)
            .flat_map(|_| frame(kind, 0, 0, &payload))
            .collect();
        let _ = raw.sock.set_write_timeout(Some(Duration::from_secs(5)));
        let _ = raw.send(&burst);
        assert_still_serving(
            &server,
            &workers,
            if kind == SETTINGS {
                "SETTINGS flood"
            } else {
                "PING flood"
            },
        );
    }
}

#[test]
fn a_zero_window_stall_frees_its_thread_at_the_timeout() {
    let (server, workers) = target(&[]);
    let mut raw = Raw::connect(server.port());
    // Initial window 0: the response cannot send a byte until the client opens it, which it
    // never does.
    let _ = raw.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
    let _ = raw.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get_block("/big?1000000"),
    ));
    // The only pool thread is stuck in that response until --timeout (3 s) resets the stream.
    let mut reset = false;
    raw.read_until(|kind, _, stream, _| {
        reset |= kind == RST_STREAM && stream == 1;
        reset || kind == GOAWAY
    });
    assert!(
        reset,
        "the stalled stream was not reset; output:\n{}",
        server.output()
    );
    assert_still_serving(&server, &workers, "zero-window stall");
}

#[test]
fn streams_past_the_limit_are_refused() {
    let (server, workers) = target(&["--http2-max-concurrent-streams", "2"]);
    let mut raw = Raw::connect(server.port());
    // Wait for the server's SETTINGS before opening streams (the limit is in them).
    raw.read_until(|kind, flags, _, _| kind == SETTINGS && flags & 1 == 0);
    // Five uploads that never end their bodies: two may be open, the others are refused.
    let mut post = vec![0x83, 0x86, 0x04]; // :method POST, :scheme http, :path
    hpack_str(&mut post, b"/upload");
    post.push(0x01);
    hpack_str(&mut post, b"h2.example");
    for i in 0..5u32 {
        let _ = raw.send(&frame(HEADERS, END_HEADERS, 2 * i + 1, &post));
    }
    let mut refused = 0;
    raw.read_until(|kind, _, _, payload| {
        if kind == RST_STREAM && payload == 7u32.to_be_bytes() {
            refused += 1; // REFUSED_STREAM
        }
        refused == 3 || kind == GOAWAY
    });
    assert_eq!(refused, 3, "output:\n{}", server.output());
    assert_still_serving(&server, &workers, "too many streams");
}

/// What the server answers on a new connection to `frames` sent after the preface: `Some(code)`
/// for a GOAWAY with that error code, `None` when stream 1 got a response HEADERS instead.
fn goaway_for(port: u16, frames: &[u8]) -> Option<u32> {
    let mut raw = Raw::connect(port);
    raw.read_until(|kind, flags, _, _| kind == SETTINGS && flags & 1 == 0);
    let _ = raw.send(frames);
    let mut answer = None;
    raw.read_until(|kind, _, stream, payload| {
        if kind == GOAWAY && payload.len() >= 8 {
            answer = Some(Some(u32::from_be_bytes([
                payload[4], payload[5], payload[6], payload[7],
            ])));
        }
        if kind == HEADERS && stream == 1 {
            answer = Some(None);
        }
        answer.is_some()
    });
    answer.expect("neither a GOAWAY nor a response")
}

#[test]
fn frame_size_and_header_list_size_come_from_the_settings() {
    // A POST whose 20 000-byte DATA frame is over the default 16 384 (FRAME_SIZE_ERROR = 6),
    // and accepted with --http2-max-frame-size 32768.
    let mut post = vec![0x83, 0x86, 0x04];
    hpack_str(&mut post, b"/upload");
    post.push(0x01);
    hpack_str(&mut post, b"h2.example");
    let mut big_data = frame(HEADERS, END_HEADERS, 1, &post);
    big_data.extend(frame(DATA, END_STREAM, 1, &[b'd'; 20_000]));
    let (server, _) = target(&[]);
    assert_eq!(goaway_for(server.port(), &big_data), Some(6));
    drop(server);
    let (server, _) = target(&["--http2-max-frame-size", "32768"]);
    assert_eq!(goaway_for(server.port(), &big_data), None);
    drop(server);
    // A 3 000-byte field: within the default header list size, over a limit of 2 000 (the
    // stream or the connection is refused, no response).
    let mut block = get_block("/");
    block.push(0x00);
    hpack_str(&mut block, b"x-long");
    hpack_str(&mut block, &[b'l'; 3000]);
    let get = frame(HEADERS, END_STREAM | END_HEADERS, 1, &block);
    let (server, _) = target(&[]);
    assert_eq!(goaway_for(server.port(), &get), None);
    drop(server);
    let (server, _) = target(&["--http2-max-header-list-size", "2000"]);
    let mut raw = Raw::connect(server.port());
    raw.read_until(|kind, flags, _, _| kind == SETTINGS && flags & 1 == 0);
    let _ = raw.send(&get);
    let mut answered = false;
    let mut refused = false;
    raw.read_until(|kind, _, stream, payload| {
        // 431 is not in HPACK's static table: anything but 200 (0x88) is a refusal too.
        answered |= kind == HEADERS && stream == 1 && payload.first() == Some(&0x88);
        refused |= kind == RST_STREAM || kind == GOAWAY || (kind == HEADERS && !answered);
        answered || refused
    });
    assert!(
        refused && !answered,
        "a 3 000-byte field passed a 2 000-byte list limit"
    );
}
