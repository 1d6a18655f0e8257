//! The client side of the end-to-end corpus replay (`http_corpus.rs`): one connection over TCP
//! or a unix socket, writing a case's bytes whole or in two writes, half-closing, and reading
//! every response until the server closes; plus the decoding of `tests/apps/corpus_echo.py`'s
//! answer and the WSGI `PATH_INFO` rule. Every read is bounded by a timeout.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// How long the server may take to answer or close once all bytes are sent.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between the two writes of a split send (so they arrive as separate reads).
pub const SPLIT_PAUSE: Duration = Duration::from_millis(30);

/// Where a server listens.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn open(target: &Target) -> std::io::Result<Conn> {
        let conn = match target {
            Target::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, Duration::from_secs(10))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                Conn::Tcp(s)
            }
            Target::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                Conn::Unix(s)
            }
        };
        Ok(conn)
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(b),
            Conn::Unix(s) => s.write_all(b),
        }
    }

    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(b),
            Conn::Unix(s) => s.read(b),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// The client's own address: the server's REMOTE_ADDR/REMOTE_PORT (None for unix).
    fn local(&self) -> Option<SocketAddr> {
        match self {
            Conn::Tcp(s) => s.local_addr().ok(),
            Conn::Unix(_) => None,
        }
    }
}

/// One response read from the connection.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Interim (1xx) statuses that came before it, e.g. `[100]`.
    pub interim: Vec<u16>,
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What one connection saw.
#[derive(Debug)]
pub struct Seen {
    /// Complete responses, in order.
    pub replies: Vec<Reply>,
    /// Bytes after the last complete response (a partial or unparsable response).
    pub tail: Vec<u8>,
    /// Whether the server closed (EOF or reset) within the timeout.
    pub closed: bool,
    /// A read error other than a timeout (e.g. a reset), if any.
    pub read_error: Option<String>,
    /// The client's address (None for a unix socket).
    pub client: Option<SocketAddr>,
}

/// Sends `input` (whole, or split at `split` with a pause between the writes), half-closes
/// the client side (so an unfinished head or body ends with EOF, as when a client goes away),
/// and reads until the server closes. A server that neither answers nor closes within
/// [`READ_TIMEOUT`] gives `closed == false`.
pub fn exchange(target: &Target, input: &[u8], split: Option<usize>) -> Result<Seen, String> {
    let mut conn = Conn::open(target).map_err(|e| format!("connect {target:?}: {e}"))?;
    let client = conn.local();
    let write = |conn: &mut Conn, b: &[u8]| -> Result<(), String> {
        match conn.write_all(b) {
            Ok(()) => Ok(()),
            // The server may refuse and close before everything is sent; what it answered
            // is still read below.
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                Ok(())
            }
            Err(e) => Err(format!("write: {e}")),
        }
    };
    match split {
        Some(at) if at > 0 && at < input.len() => {
            write(&mut conn, &input[..at])?;
            std::thread::sleep(SPLIT_PAUSE);
            write(&mut conn, &input[at..])?;
        }
        _ => write(&mut conn, input)?,
    }
    conn.shutdown_write();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let mut closed = false;
    let mut read_error = None;
    // Bounded: at most 8 MiB, and each read waits at most READ_TIMEOUT.
    while raw.len() < 8 << 20 {
        match conn.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => {
                closed = true;
                read_error = Some(e.to_string());
                break;
            }
        }
    }
    let (replies, tail) = parse_replies(&raw);
    Ok(Seen {
        replies,
        tail,
        closed,
        read_error,
        client,
    })
}

/// Splits a byte stream into responses (Content-Length or chunked framing; 1xx interim heads
/// are attached to the response that follows). Returns the responses and the unparsed rest.
pub fn parse_replies(mut raw: &[u8]) -> (Vec<Reply>, Vec<u8>) {
    let mut replies = Vec::new();
    let mut interim = Vec::new();
    while let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        let head: String = raw[..head_end].iter().map(|&b| b as char).collect();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("").to_string();
        let Some(status) = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
        else {
            break;
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        let rest = &raw[head_end + 4..];
        if (100..200).contains(&status) {
            interim.push(status);
            raw = rest;
            continue;
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let (body, used) = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            match decode_chunked(rest) {
                Some(x) => x,
                None => break,
            }
        } else {
            let len = find("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(rest.len());
            match rest.get(..len) {
                Some(b) => (b.to_vec(), len),
                None => break,
            }
        };
        replies.push(Reply {
            interim: std::mem::take(&mut interim),
            status_line,
            status,
            headers,
            body,
        });
        raw = &rest[used..];
    }
    (replies, raw.to_vec())
}

fn decode_chunked(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = data[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let size_text = std::str::from_utf8(&data[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // No trailers from our server: the final CRLF follows.
            return (data.get(at..at + 2)? == b"\r\n").then_some((body, at + 2));
        }
        body.extend_from_slice(data.get(at..at + size)?);
        at += size + 2;
    }
}

/// Decodes `corpus_echo.py`'s answer: `NAME LEN\n<LEN bytes>\n` items.
pub fn parse_echo(mut b: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    while !b.is_empty() {
        let nl = b
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("echo: item without a newline")?;
        let line = std::str::from_utf8(&b[..nl]).map_err(|e| format!("echo: {e}"))?;
        let (name, len) = line.rsplit_once(' ').ok_or("echo: item without a length")?;
        let len: usize = len.parse().map_err(|e| format!("echo: length: {e}"))?;
        let value = b
            .get(nl + 1..nl + 1 + len)
            .ok_or("echo: short item")?
            .to_vec();
        if b.get(nl + 1 + len) != Some(&b'\n') {
            return Err("echo: item not followed by a newline".into());
        }
        out.insert(name.to_string(), value);
        b = &b[nl + 2 + len..];
    }
    Ok(out)
}

/// WSGI's `PATH_INFO` from a raw request path: percent-decoded to bytes (a `%` not followed by
/// two hex digits stays as it is, like Python's `unquote`); the bytes are the latin-1 string.
pub fn percent_decode(path: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' {
            if let (Some(h), Some(l)) = (
                path.get(i + 1).and_then(|&c| hex(c)),
                path.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// Bytes for a failure message: printable ASCII as is, the rest escaped.
pub fn show(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

#[test]
fn replies_and_echo_decode() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\nHTTP/1.1 4";
    let (r, tail) = parse_replies(raw);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].interim.clone(), r[0].body.clone()),
        (vec![100], b"abc".to_vec())
    );
    assert_eq!(r[1].body, b"xy");
    assert_eq!(tail, b"HTTP/1.1 4");
    let e = parse_echo(b"A 2\nx\n\nB 0\n\n").unwrap();
    assert_eq!(e["A"], b"x\n");
    assert_eq!(e["B"], b"");
    assert_eq!(percent_decode(b"/a%41%2f%zz%4"), b"/aA/%zz%4");
}
