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
