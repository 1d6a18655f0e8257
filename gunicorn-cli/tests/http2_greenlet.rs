//! End-to-end tests of HTTP/2 on the greenlet workers, gevent and eventlet (issue 15): ALPN over
//! TLS with curl, h2c by prior knowledge and by `Upgrade: h2c` with curl, the streams of one
//! connection running concurrently as greenlets (one sleeping while another completes, and
//! other connections served meanwhile), HTTP/2 connections within `--worker-connections`, large
//! bodies both ways with small windows, GOAWAY on
//! HUP with zero failed streams, and three attacks (rapid reset, a zero-window stall, too many
//! streams) after which the worker still serves. The same clients and raw frames as the gthread tests (`http2.rs`,
//! `support/h2.rs`). Every wait is bounded; nothing asserts how long something took beyond an
//! upper bound.

mod support;

use std::time::{Duration, Instant};

use support::h2::*;
use support::tls::{have_curl, have_openssl, start_https, Pki};
use support::{Gunicorn, Server};

/// The greenlet libraries, for the tests run with each.
const LIBRARIES: [&str; 2] = ["gevent", "eventlet"];

/// The libraries installed in the test Python (a missing one is skipped, and said so).
fn libraries() -> Vec<&'static str> {
    LIBRARIES
        .into_iter()
        .filter(|lib| support::have_module(lib))
        .collect()
}

/// A `-k worker` server serving h2c with prior knowledge to loopback, with `extra` flags.
fn h2c_server(worker: &str, workers: usize, extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .args(["-k", worker, "-w", &workers.to_string()])
        .args([
            "--http-protocols",
            "h2,h1",
            "--http2-cleartext",
            "prior-knowledge",
        ])
        .args(extra)
        .arg("h2_green_app:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(workers);
    server
}

fn no_fallback_warning(server: &Server, worker: &str) {
    assert!(
        !server.output().contains("HTTP/2 is not supported"),
        "{worker}: {}",
        server.output()
    );
}

// ---- ALPN and h2c ---------------------------------------------------------------------------------

#[test]
fn alpn_over_tls_serves_http2_with_curl() {
    if !(have_openssl() && have_curl()) {
        support::skip("openssl or curl is missing");
        return;
    }
    let pki = Pki::new("http2-green", "/CN=Test CA").server("server", "/CN=localhost");
    let ca = pki.path("ca.pem");
    for worker in libraries() {
        let (server, port) = start_https(
            Gunicorn::new()
                .args(["-k", worker, "-w", "1"])
                .args(pki.tls_args("server"))
                .args(["--http-protocols", "h2,h1", "--access-logfile", "-"])
                .arg("h2_green_app:app"),
            1,
        );
        let url = format!("https://localhost:{port}/env?x=1");
        let (code, body, err) =
            curl(&["--http2", "--cacert", &ca, "-w", "\n%{http_version}", &url]);
        assert_eq!(code, 0, "{worker}: {err}");
        let (json, version) = body.rsplit_once('\n').unwrap();
        assert_eq!(version, "2", "{worker}: curl did not speak HTTP/2: {err}");
        for needle in [
            "\"SERVER_PROTOCOL\": \"HTTP/2.0\"",
            "\"wsgi.url_scheme\": \"https\"",
            "\"HTTPS\": \"on\"",
            "\"QUERY_STRING\": \"x=1\"",
        ] {
            assert!(json.contains(needle), "{worker}: {needle} not in {json}");
        }
        // Each stream is an access-log line with `%(H)s` = HTTP/2.0.
        assert!(
            server
                .wait_for("\"GET /env?x=1 HTTP/2.0\" 200", 1, Duration::from_secs(10))
                .is_some(),
            "{worker}: no access line: {}",
            server.output()
        );
        // A large response (flow control over TLS) and wsgi.file_wrapper.
        for (path, size) in [("file", "100000"), ("big?3000000", "3000000")] {
            let url = format!("https://localhost:{port}/{path}");
            let (code, out, err) = curl(&[
                "--http2",
                "--cacert",
                &ca,
                "-o",
                "/dev/null",
                "-w",
                "%{size_download} %{http_version}",
                &url,
            ]);
            assert_eq!(
                (code, out.as_str()),
                (0, format!("{size} 2").as_str()),
                "{worker} {path}: {err}"
            );
        }
        // HTTP/1.1 is still served on the same port.
        let (code, out, err) = curl(&["--http1.1", "--cacert", &ca, "-w", "%{http_version}", &url]);
        assert!(code == 0 && out.ends_with("1.1"), "{worker}: {out} {err}");
        no_fallback_warning(&server, worker);
    }
}

#[test]
fn h2c_by_prior_knowledge_and_by_upgrade() {
    if !have_curl() {
        support::skip("curl is missing");
        return;
    }
    for worker in libraries() {
        let server = Gunicorn::new()
            .args(["-k", worker, "-w", "1"])
            .args(["--http-protocols", "h2,h1", "--http2-cleartext", "both"])
            .arg("h2_green_app:app")
            .bind_free_port()
            .spawn();
        server.wait_booted(1);
        let base = format!("http://127.0.0.1:{}", server.port());
        // Prior knowledge: the connection opens with the preface.
        let (code, out, err) = curl(&[
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version}",
            &format!("{base}/env"),
        ]);
        assert_eq!(code, 0, "{worker}: {err}");
        assert!(
            out.ends_with("\n2") && out.contains("\"SERVER_PROTOCOL\": \"HTTP/2.0\""),
            "{worker}: {out}"
        );
        // `curl --http2` on http:// asks for the upgrade: 101, then the request is stream 1.
        let (code, out, err) = curl(&[
            "--http2",
            "-w",
            "\n%{http_version} %{http_code}",
            &format!("{base}/env?q=1"),
        ]);
        assert_eq!(code, 0, "{worker}: {err}");
        assert!(
            out.ends_with("\n2 200") && out.contains("\"QUERY_STRING\": \"q=1\""),
            "{worker}: {out}"
        );
        // A POST with a small body upgrades too, its body read by the app as stream 1's.
        let (code, out, err) = curl(&[
            "--http2",
            "--data-binary",
            "0123456789",
            "-w",
            "\n%{http_version}",
            &format!("{base}/upload"),
        ]);
        assert_eq!(code, 0, "{worker}: {err}");
        assert!(
            out.contains("\"size\": 10") && out.ends_with("\n2"),
            "{worker}: {out}"
        );
        // A plain HTTP/1.1 request on the same port is served as such.
        assert_eq!(server.get("/env").status, 200, "{worker}");
        no_fallback_warning(&server, worker);
    }
}

// ---- streams as greenlets -------------------------------------------------------------------------

#[test]
fn streams_of_one_connection_run_concurrently_as_greenlets() {
    if !support::have_module("h2") {
        return;
    }
    for worker in libraries() {
        let server = h2c_server(worker, 1, &[]);
        let port = server.port();
        // Four streams meet at a barrier inside the app (threading, patched: a greenlet one).
        let out = h2_client(port, &["barrier", "4"]);
        assert!(
            out.contains("\"statuses\": [\"200\", \"200\", \"200\", \"200\"]"),
            "{worker}: {out}"
        );
        // Stream 1 sleeps in its greenlet; stream 3, sent after it, completes first.
        let mut raw = Raw::connect(port);
        raw.send(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1,
            &get_block("/sleep?4"),
        ))
        .unwrap();
        raw.send(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            3,
            &get_block("/calls"),
        ))
        .unwrap();
        // Another connection is served while stream 1 sleeps: the hub is free.
        let start = Instant::now();
        assert!(raw_get_ok(port, "/"), "{worker}: {}", server.output());
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{worker}: another connection waited for the sleeping stream"
        );
        let mut ended = Vec::new();
        raw.read_until(|kind, flags, stream, _| {
            if (kind == DATA || kind == HEADERS) && flags & END_STREAM != 0 {
                ended.push(stream);
            }
            ended.len() == 2 || kind == GOAWAY || kind == RST_STREAM
        });
        assert_eq!(ended, [3, 1], "{worker}: {}", server.output());
    }
}

#[test]
fn large_bodies_both_ways_with_small_windows() {
    if !support::have_module("h2") {
        return;
    }
    for worker in libraries() {
        let server = h2c_server(worker, 1, &["--http2-initial-window-size", "16384"]);
        let port = server.port();
        // 1 MiB up, through a 16 KiB window reopened as the app's greenlet reads.
        let out = h2_client(port, &["upload", "1048576"]);
        let sent = out.split("\"sha256\": \"").nth(2).map(|s| &s[..64]);
        assert!(out.contains("\"size\": 1048576"), "{worker}: {out}");
        assert_eq!(
            out.split("\"sha256\": \"").nth(1).map(|s| &s[..64]),
            sent,
            "{worker}: {out}"
        );
        // 1 MB down, through the client's 1 KiB window: the greenlet parks while it is shut.
        let out = h2_client(port, &["download", "1000000", "1024"]);
        assert!(
            out.contains("\"status\": \"200\", \"size\": 1000000"),
            "{worker}: {out}"
        );
        // 103 Early Hints as an informational HEADERS frame.
        let out = h2_client(port, &["hints"]);
        assert!(
            out.contains("\":status\": \"103\"") && out.contains("\"body\": \"hinted\\n\""),
            "{worker}: {out}"
        );
    }
}

#[test]
fn http2_connections_count_towards_worker_connections() {
    // gevent: a full pool stops the accepting (eventlet accepts one more, which waits).
    if !support::have_module("gevent") {
        return;
    }
    let server = h2c_server(
        "gevent",
        1,
        &["--worker-connections", "2", "--keep-alive", "30"],
    );
    let port = server.port();
    let server_settings = |raw: &mut Raw| {
        let mut seen = false;
        raw.read_until(|kind, flags, _, _| {
            seen = kind == SETTINGS && flags & 1 == 0;
            seen
        });
        seen
    };
    let mut held: Vec<Raw> = (0..2).map(|_| Raw::connect(port)).collect();
    for raw in &mut held {
        assert!(server_settings(raw), "{}", server.output());
    }
    // Two HTTP/2 connections fill the pool: a third is not served while they stay open.
    let mut third = Raw::connect(port);
    third
        .sock
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    assert!(third.next().is_none(), "a third connection was served");
    // One closes: its slot goes to the third.
    held.pop();
    third
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(server_settings(&mut third), "{}", server.output());
}

// ---- reloads ---------------------------------------------------------------------------------------

#[test]
fn graceful_reload_sends_goaway_and_loses_no_stream() {
    for worker in libraries() {
        let server = h2c_server(worker, 2, &[]);
        let port = server.port();
        let looping = std::thread::spawn(move || goaway_loop(port, 6));
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(1500));
            server.signal(nix::sys::signal::Signal::SIGHUP);
        }
        let (ok, failed, refused) = looping.join().unwrap();
        assert!(ok > 0, "{worker}: no request served");
        assert_eq!(
            failed,
            0,
            "{worker}: ok {ok}, refused {refused}; output:\n{}",
            server.output()
        );
        assert!(
            server.worker_pids().len() >= 8,
            "{worker}: {}",
            server.output()
        );
    }
}

#[test]
fn a_stream_in_flight_finishes_after_term() {
    for worker in libraries() {
        let server = h2c_server(worker, 1, &[]);
        // The worker serves (its app is loaded), then the stream is running when TERM comes.
        assert!(
            raw_get_ok(server.port(), "/"),
            "{worker}: {}",
            server.output()
        );
        let mut raw = Raw::connect(server.port());
        raw.send(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1,
            &get_block("/sleep?1"),
        ))
        .unwrap();
        raw.read_until(|kind, flags, _, _| kind == SETTINGS && flags & 1 == 0);
        std::thread::sleep(Duration::from_millis(300));
        server.signal(nix::sys::signal::Signal::SIGTERM);
        let (mut goaway, mut ended) = (false, false);
        let seen = raw.read_until(|kind, flags, stream, _| {
            goaway |= kind == GOAWAY;
            ended |= stream == 1 && kind == DATA && flags & END_STREAM != 0;
            goaway && ended
        });
        assert!(
            goaway && ended,
            "{worker}: goaway {goaway}, ended {ended}, frames {seen:?}; output:\n{}",
            server.output()
        );
    }
}

// ---- attacks ---------------------------------------------------------------------------------------

/// A server for the attack tests: one worker, a short `--timeout`.
fn target(worker: &str, extra: &[&str]) -> (Server, Vec<i32>) {
    let mut args = vec!["--timeout", "3"];
    args.extend_from_slice(extra);
    let server = h2c_server(worker, 1, &args);
    let workers = support::children_of(server.pid());
    (server, workers)
}

fn assert_still_serving(server: &Server, workers: &[i32], what: &str) {
    assert!(
        raw_get_ok(server.port(), "/"),
        "{what}: another client was not served; output:\n{}",
        server.output()
    );
    let now = support::children_of(server.pid());
    assert!(
        workers.iter().all(|p| now.contains(p)),
        "{what}: the worker was replaced; output:\n{}",
        server.output()
    );
}

#[test]
fn rapid_reset_does_not_run_the_app_for_reset_streams() {
    for worker in libraries() {
        let (server, workers) = target(worker, &[]);
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
        // ENHANCE_YOUR_CALM = 0xb.
        assert_eq!(goaway, Some(0xb), "{worker}: GOAWAY error code");
        assert_still_serving(&server, &workers, worker);
        // The app ran for few of the 2000 streams (those it took before their reset came).
        let out = h2_client(server.port(), &["get", "/calls"]);
        let calls: u64 = out
            .split("\"body\": \"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(u64::MAX);
        assert!(calls < 1000, "{worker}: the app ran {calls} times: {out}");
    }
}

#[test]
fn a_zero_window_stall_frees_its_greenlet_at_the_timeout() {
    for worker in libraries() {
        let (server, workers) = target(worker, &[]);
        let mut raw = Raw::connect(server.port());
        // Initial window 0: the response cannot send a byte until the client opens it, which
        // it never does. The stream's greenlet parks on its full channel meanwhile.
        let _ = raw.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        let _ = raw.send(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1,
            &get_block("/big?1000000"),
        ));
        assert_still_serving(&server, &workers, worker);
        // --timeout (3 s) resets the stream.
        let mut reset = false;
        raw.read_until(|kind, _, stream, _| {
            reset |= kind == RST_STREAM && stream == 1;
            reset || kind == GOAWAY
        });
        assert!(reset, "{worker}: not reset; output:\n{}", server.output());
        // Its greenlet was woken and finished: once the client is gone, a graceful stop does
        // not wait for it until the graceful timeout (30 s).
        drop(raw);
        server.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(
            server.wait_exit(Duration::from_secs(20)).is_some(),
            "{worker}: the worker waited for the stalled stream; output:\n{}",
            server.output()
        );
        assert!(
            !server.output().contains("graceful timeout"),
            "{worker}: {}",
            server.output()
        );
    }
}

#[test]
fn streams_past_the_limit_are_refused_and_stalled_bodies_do_not_block_the_hub() {
    for worker in libraries() {
        let (server, workers) = target(worker, &["--http2-max-concurrent-streams", "2"]);
        let mut raw = Raw::connect(server.port());
        // The limit is in the server's SETTINGS: wait for them before opening streams.
        raw.read_until(|kind, flags, _, _| kind == SETTINGS && flags & 1 == 0);
        // Five uploads that never send their bodies: two are open (their greenlets parked in
        // wsgi.input.read), the others are refused.
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
        assert_eq!(refused, 3, "{worker}: output:\n{}", server.output());
        // Meanwhile two greenlets wait for request bodies: other clients are served.
        assert_still_serving(&server, &workers, worker);
    }
}
