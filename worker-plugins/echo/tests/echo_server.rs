//! Runs the `echo-server` binary (gunicorn-core's arbiter + the echo worker, no Python) on a
//! free loopback port and talks HTTP to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

struct Server {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no {needle:?} in:\n{}", self.log.join("\n")),
            }
        }
    }

    fn port(&mut self) -> u16 {
        let line = self.wait_for("Listening at: http://127.0.0.1:");
        line.split("127.0.0.1:")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn stop(mut self) -> i32 {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        for _ in 0..500 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("echo-server did not stop on TERM");
    }
}

fn exchange(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_http_under_the_arbiter_without_python() {
    let mut srv = Server::start(&["-b", "127.0.0.1:0", "-w", "2", "--max-requests", "1000"]);
    let port = srv.port();
    srv.wait_for("Using worker: echo");
    let worker = srv.wait_for("Booting worker with pid: ");
    let worker_pid: i32 = worker.rsplit(' ').next().unwrap().parse().unwrap();

    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
            "HTTP/1.1 200 OK\r\n",
            "GET /hello?x=1\n",
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde",
            "HTTP/1.1 200 OK\r\n",
            "POST /p\nabcde",
        ),
        (
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\n",
            "POST /c\nabc",
        ),
        (b"BAD\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", ""),
    ];
    for (req, status, body) in cases {
        let resp = exchange(port, req);
        assert!(resp.starts_with(status), "{resp}");
        assert!(resp.ends_with(body), "{resp}");
        if status.contains("200") {
            assert!(resp.contains("Connection: close\r\n"), "{resp}");
        }
    }

    // No Python in the worker's address space.
    let maps = std::fs::read_to_string(format!("/proc/{worker_pid}/maps")).unwrap_or_default();
    assert!(
        !maps.is_empty() && !maps.contains("libpython"),
        "python mapped"
    );

    assert_eq!(srv.stop(), 0);
}

#[test]
fn max_requests_recycles_the_worker() {
    let mut srv = Server::start(&["-b", "127.0.0.1:0", "-w", "1", "--max-requests", "2"]);
    let port = srv.port();
    let first = srv.wait_for("Booting worker with pid: ");
    for _ in 0..2 {
        let resp = exchange(port, b"GET / HTTP/1.0\r\n\r\n");
        assert!(resp.starts_with("HTTP/1.0 200 OK"), "{resp}");
    }
    srv.wait_for("Autorestarting worker after current request.");
    let second = srv.wait_for("Booting worker with pid: ");
    assert_ne!(first, second);
    let resp = exchange(port, b"GET / HTTP/1.0\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.0 200 OK"), "{resp}");
    assert_eq!(srv.stop(), 0);
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized argument: --no-such-flag"));
}

/// Issue 4's proof: a bounded load loop runs while the master gets HUP, then USR2 followed by
/// TERM to the old master. Every request must succeed.
#[test]
fn zero_failed_requests_across_hup_and_usr2_upgrade() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let dir = std::env::temp_dir().join(format!("echo-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("echo.pid");
    let mut srv = Server::start(&[
        "-b",
        "127.0.0.1:0",
        "-w",
        "2",
        "--pid",
        pidfile.to_str().unwrap(),
    ]);
    let port = srv.port();
    srv.wait_for("Booting worker with pid: ");
    srv.wait_for("Booting worker with pid: ");

    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(40);
            // Bounded in count and time.
            for i in 0..200_000u64 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let req = format!("GET /r{i} HTTP/1.0\r\n\r\n");
                let result = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(10)))?;
                    s.write_all(req.as_bytes())?;
                    let mut out = String::new();
                    s.read_to_string(&mut out)?;
                    Ok(out)
                });
                match result {
                    Ok(out)
                        if out.starts_with("HTTP/1.0 200 OK")
                            && out.ends_with(&format!("GET /r{i}\n")) =>
                    {
                        ok += 1
                    }
                    Ok(out) => failed.push(format!("request {i}: bad response {out:?}")),
                    Err(e) => failed.push(format!("request {i}: {e}")),
                }
            }
            (ok, failed)
        })
    };
    let master = srv.child.id() as i32;
    std::thread::sleep(Duration::from_millis(300));
    kill(Pid::from_raw(master), Signal::SIGHUP).unwrap();
    srv.wait_for("Hang up: Master");
    srv.wait_for("Booting worker with pid: ");
    srv.wait_for("Booting worker with pid: ");
    std::thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(master), Signal::SIGUSR2).unwrap();
    let line = srv.wait_for("Starting gunicorn");
    let new_master: i32 = line.split("] [").nth(1).unwrap().parse().unwrap();
    srv.wait_for(&format!("({new_master})"));
    std::thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(master), Signal::SIGTERM).unwrap();
    srv.wait_for("Master has been promoted.");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    let _ = kill(Pid::from_raw(new_master), Signal::SIGTERM);
    srv.wait_for("Shutting down: Master");
    let _ = srv.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{ok} requests across HUP and USR2+TERM, {} failed",
        failed.len()
    );
    assert!(ok > 50, "only {ok} requests done");
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok + failed.len() as u64,
        &failed[..failed.len().min(5)]
    );
}
