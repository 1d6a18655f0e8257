//! The custom binary resolves `-k echo` through the same registry as the built-in workers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn gunicorn_dash_k_echo_serves_the_rust_worker() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gunicorn-echo"))
        .args(["-k", "echo", "-b", "127.0.0.1:0", "-w", "1", "unused:app"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gunicorn-echo");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut wait_for = |needle: &str| -> String {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {needle:?} in {log:#?}"));
            log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    };
    let listening = wait_for("Listening at: http://127.0.0.1:");
    let port: u16 = listening
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    wait_for("Using worker: echo");
    wait_for("Booting worker with pid: ");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /via-gunicorn HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.0 200 OK"), "{out}");
    assert!(out.ends_with("GET /via-gunicorn\n"), "{out}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
