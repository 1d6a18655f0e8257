//! Load while gthread workers recycle, reload and stop: no request a client sent may be lost.
//! Bounded client loops (a fixed time, a few threads) count the requests that got no complete
//! `200` response; zero is the bar, as gunicorn 27's gthread worker reaches in the same runs.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Gunicorn, Server};

const CLIENTS: usize = 8;
const LOAD_TIME: Duration = Duration::from_secs(4);

fn server(workers: usize, extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .args([
            "-k",
            "gthread",
            "--threads",
            "4",
            "-w",
            &workers.to_string(),
        ])
        .args(extra)
        .args([
            "--chdir",
            support::apps_dir().to_str().unwrap(),
            "hello:app",
        ])
        .bind_free_port()
        .spawn();
    server.wait_booted(workers);
    server
}

/// What a client got for one request.
enum Reply {
    /// A complete `200` response; `close`: it said `Connection: close`.
    Ok { close: bool },
    /// Another status, or the connection ended before a complete response.
    Lost,
}

/// Reads one response with a Content-Length body.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Reply {
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = support::content_length(&head);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                if !head.starts_with("HTTP/1.1 200") {
                    return Reply::Lost;
                }
                let close = head.to_ascii_lowercase().contains("\r\nconnection: close");
                return Reply::Ok { close };
            }
        }
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return Reply::Lost,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

/// Runs `CLIENTS` threads sending requests for `LOAD_TIME` (new connection per request, or
/// keep-alive connections reopened when the server closes them after a `Connection: close`
/// response); `during` runs meanwhile. Returns (answered, lost).
fn load(port: u16, keep_alive: bool, during: impl FnOnce()) -> (usize, usize) {
    let ok = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (ok, lost, stop) = (ok.clone(), lost.clone(), stop.clone());
            std::thread::spawn(move || {
                let request: &[u8] = if keep_alive {
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                } else {
                    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                };
                let mut conn: Option<TcpStream> = None;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let s = match conn.as_mut() {
                        Some(s) => s,
                        None => {
                            let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
                                lost.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                            buf.clear();
                            conn.insert(s)
                        }
                    };
                    if s.write_all(request).is_err() {
                        lost.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                        continue;
                    }
                    match read_response(s, &mut buf) {
                        // As an HTTP client must: after `Connection: close` (ours, or the
                        // server's when a worker recycles), a new connection.
                        Reply::Ok { close } => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            if !keep_alive || close {
                                conn = None;
                            }
                        }
                        Reply::Lost => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                }
            })
        })
        .collect();
    during();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    (ok.load(Ordering::Relaxed), lost.load(Ordering::Relaxed))
}

#[test]
fn max_requests_recycling_loses_no_request() {
    for keep_alive in [false, true] {
        let server = server(2, &["--max-requests", "50", "--max-requests-jitter", "10"]);
        let (ok, lost) = load(server.port(), keep_alive, || std::thread::sleep(LOAD_TIME));
        assert!(ok > 200, "keep_alive={keep_alive}: only {ok} answered");
        assert_eq!(
            lost,
            0,
            "keep_alive={keep_alive}: {ok} answered\n{}",
            server.output()
        );
    }
}

#[test]
fn hup_and_ttou_under_load_lose_no_request() {
    let server = server(2, &[]);
    let (ok, lost) = load(server.port(), true, || {
        let end = Instant::now() + LOAD_TIME;
        let mut n = 0;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(500));
            server.signal(if n % 3 == 2 {
                Signal::SIGTTIN
            } else {
                Signal::SIGHUP
            });
            n += 1;
        }
        server.signal(Signal::SIGTTOU);
        std::thread::sleep(Duration::from_millis(500));
    });
    assert!(ok > 200, "only {ok} answered");
    assert_eq!(lost, 0, "{ok} answered\n{}", server.output());
}
