//! `wsload PORT CONNS MESSAGES SIZE WINDOW`: CONNS connections to ws://127.0.0.1:PORT/, each
//! sending MESSAGES text messages of SIZE bytes, WINDOW at a time before reading their echoes.
//! Prints the messages echoed and the seconds it took, as bench/ws_echo.py's Python client.

use std::net::TcpStream;
use std::time::Instant;

use tungstenite::{client, Message};

fn one(port: u16, messages: usize, size: usize, window: usize) -> usize {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut ws, _) = client(format!("ws://127.0.0.1:{port}/"), stream).expect("handshake");
    let payload = "x".repeat(size);
    let mut echoed = 0;
    for _ in 0..messages / window {
        for _ in 0..window {
            ws.send(Message::text(payload.clone())).expect("send");
        }
        for _ in 0..window {
            match ws.read().expect("read") {
                Message::Text(t) if t.len() == size => echoed += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let _ = ws.close(None);
    echoed
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let [port, conns, messages, size, window] = args[..] else {
        panic!("usage: wsload PORT CONNS MESSAGES SIZE WINDOW");
    };
    let start = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|_| std::thread::spawn(move || one(port as u16, messages, size, window.max(1))))
        .collect();
    let total: usize = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .sum();
    println!("{total} {}", start.elapsed().as_secs_f64());
}
