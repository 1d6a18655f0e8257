//! The HTTP/2 part of the harness, shared by the gthread and greenlet tests: raw frames over a
//! plain connection (h2c with prior knowledge), the Python `h2` client fixture, curl, and a
//! GOAWAY-tolerant loop over the Rust `h2` client. Every wait is bounded.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use super::fixtures_dir;
use super::tls::{python, run_bounded};

/// `python h2_client.py PORT ARGS...`: its JSON output.
pub fn h2_client(port: u16, args: &[&str]) -> String {
    let out = run_bounded(
        Command::new(python())
            .arg(fixtures_dir().join("h2_client.py"))
            .arg(port.to_string())
            .args(args),
    );
    assert!(
        out.status.success(),
        "h2_client {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `curl -sS --max-time 30 ARGS`: (exit status, stdout, stderr).
pub fn curl(args: &[&str]) -> (i32, String, String) {
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "--max-time", "30"])
            .args(args),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK string literal, not Huffman-coded, with a 7-bit length prefix (RFC 7541 §5.2).
pub fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s);
}

/// The header block of `GET path` (static-table names, literals without indexing).
pub fn get_block(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86]; // :method GET, :scheme http
    b.push(0x04); // :path, literal without indexing
    hpack_str(&mut b, path.as_bytes());
    b.push(0x01); // :authority
    hpack_str(&mut b, b"h2.example");
    b
}

/// A raw HTTP/2 client connection (h2c with prior knowledge): the preface and an empty
/// SETTINGS are sent on connect.
pub struct Raw {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Raw {
            sock,
            buf: Vec::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        raw.send(&hello).expect("preface");
        raw
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// The next frame (type, flags, stream, payload); None at the end of the connection or
    /// after 10 s of silence.
    pub fn next(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9 + len).collect();
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    return Some((head[3], head[4], stream, head[9..].to_vec()));
                }
            }
            let mut chunk = [0u8; 65536];
            match self.sock.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until `stop` says so or the connection ends; acknowledges SETTINGS.
    /// Returns the frames seen.
    pub fn read_until(
        &mut self,
        mut stop: impl FnMut(u8, u8, u32, &[u8]) -> bool,
    ) -> Vec<(u8, u8, u32)> {
        let mut seen = Vec::new();
        while let Some((kind, flags, stream, payload)) = self.next() {
            if kind == SETTINGS && flags & 1 == 0 {
                let _ = self.send(&frame(SETTINGS, 1, 0, &[]));
            }
            seen.push((kind, flags, stream));
            if stop(kind, flags, stream, &payload) {
                break;
            }
        }
        seen
    }

    /// Whether the server sent GOAWAY (or closed the connection) within 10 s.
    pub fn goaway_or_closed(&mut self) -> bool {
        let mut goaway = false;
        self.read_until(|kind, _, _, _| {
            goaway |= kind == GOAWAY;
            goaway
        });
        goaway || self.next().is_none()
    }
}

/// One `GET path` over a new raw connection: true when a response HEADERS with `:status 200`
/// (static index 8, as the server encodes it) came back on stream 1.
pub fn raw_get_ok(port: u16, path: &str) -> bool {
    let mut raw = Raw::connect(port);
    raw.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get_block(path),
    ))
    .unwrap();
    let mut ok = false;
    raw.read_until(|kind, _, stream, payload| {
        if kind == HEADERS && stream == 1 {
            ok = payload.first() == Some(&0x88);
            return true;
        }
        kind == GOAWAY || kind == RST_STREAM
    });
    ok
}

/// Runs `GET /` batches over the Rust h2 client for `seconds`: (ok, failed, refused).
/// Streams refused by a GOAWAY (above its last stream id) are what a client retries, not
/// failures.
pub fn goaway_loop(port: u16, seconds: u64) -> (u64, u64, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (mut ok, mut failed, mut refused) = (0, 0, 0);
        let end = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < end {
            let Ok(Ok(tcp)) = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            else {
                failed += 1;
                continue;
            };
            let Ok((client, conn)) = h2::client::handshake(tcp).await else {
                failed += 1;
                continue;
            };
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut pending = Vec::new();
            for _ in 0..10 {
                let client = client.clone();
                pending.push(tokio::spawn(async move {
                    let req = http::Request::get("http://h2.example/").body(()).unwrap();
                    let ready = client.ready().await?;
                    let mut c = ready;
                    let (resp, _) = c.send_request(req, true)?;
                    let resp = resp.await?;
                    let status = resp.status();
                    let mut body = resp.into_body();
                    while let Some(chunk) = body.data().await {
                        chunk?;
                    }
                    Ok::<_, h2::Error>(status)
                }));
            }
            for p in pending {
                match tokio::time::timeout(Duration::from_secs(10), p).await {
                    Ok(Ok(Ok(s))) if s == 200 => ok += 1,
                    Ok(Ok(Err(e)))
                        if e.reason() == Some(h2::Reason::REFUSED_STREAM) || e.is_go_away() =>
                    {
                        refused += 1
                    }
                    other => {
                        eprintln!("failed stream: {other:?}");
                        failed += 1;
                    }
                }
            }
        }
        (ok, failed, refused)
    })
}
