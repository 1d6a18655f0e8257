//! h2c by `Upgrade: h2c` (RFC 7540 §3.2, which RFC 9113 §3.1 deprecates but gunicorn 27's
//! `http2_cleartext upgrade` honours), sans-IO.
//!
//! The HTTP/1.1 request that asks for the upgrade becomes stream 1 of the HTTP/2 connection
//! (§3.2: "half-closed (local)" for the client), and the server's first HTTP/2 bytes answer it.
//! The h2 crate has no entry for that, so the upgrade is made to look like a client that opened
//! with the preface: the server answers `101 Switching Protocols`, and the bytes the h2
//! connection reads are rewritten ([`Splice`]): a preface of our own first, then the client's
//! real preface is checked and dropped, its first SETTINGS frame passed on, and right after it
//! the upgraded request's frames on stream 1 (HEADERS, and DATA for its body), before
//! everything else the client sends. The `HTTP2-Settings` values are not applied: the client's own SETTINGS frame, sent with
//! its preface, follows the 101 at once and says the same; the 101 acknowledges them (§3.2.1).

use std::io;

use gunicorn_http::{BodyKind, Request};

use super::preface::PREFACE;
use super::stream::CONNECTION_SPECIFIC;

/// The answer that switches the connection to HTTP/2.
pub const SWITCHING_PROTOCOLS: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/// Whether `req` asks for h2c and may have it (RFC 7540 §3.2): HTTP/1.1, `Upgrade` naming
/// `h2c`, `Connection` naming `upgrade`, one `HTTP2-Settings` of base64url, and a body framed by
/// Content-Length, if any (a chunked one is served as HTTP/1.1, the upgrade ignored, which
/// §3.2 allows).
pub fn asks_for_h2c(req: &Request) -> bool {
    let tokens = |name: &str, want: &str| {
        req.headers.get_all(name).any(|v| {
            v.split(',')
                .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(want))
        })
    };
    let mut settings = req.headers.get_all("HTTP2-SETTINGS");
    let one_setting = match (settings.next(), settings.next()) {
        (Some(v), None) => is_base64url(v.trim_matches([' ', '\t'])),
        _ => false,
    };
    req.version == (1, 1)
        && tokens("UPGRADE", "h2c")
        && tokens("CONNECTION", "upgrade")
        && one_setting
        && matches!(req.body, BodyKind::Length(_))
}

/// A SETTINGS payload in base64url without padding (RFC 7540 §3.2.1): whole 6-byte settings.
fn is_base64url(v: &str) -> bool {
    let ok_chars = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    // 4 characters carry 3 bytes; a whole number of 6-byte settings is 8 characters each.
    ok_chars && v.len().is_multiple_of(8)
}

/// The frames of the upgraded request on stream 1: HEADERS (END_HEADERS) with its method,
/// target and `Host` as pseudo-headers and its other fields without the connection-specific
/// ones (§8.2.2), as HPACK literals without indexing, then its `body` in one DATA frame, the
/// stream ending with the last frame. None when the head or the body does not fit in one frame
/// of `max_frame` bytes (the request is then served as HTTP/1.1); the caller keeps the body
/// within the connection's first window too.
pub fn request_frames(req: &Request, body: &[u8], max_frame: usize) -> Option<Vec<u8>> {
    let mut block = Vec::with_capacity(256);
    literal(&mut block, b":method", req.method.as_bytes());
    literal(&mut block, b":scheme", b"http");
    literal(&mut block, b":path", &latin1(&req.uri));
    if let Some(host) = req.header("HOST") {
        literal(&mut block, b":authority", &latin1(host));
    }
    for (name, value) in req.headers.iter() {
        let name = name.to_ascii_lowercase();
        // Host went into :authority; the upgrade's own fields end with it.
        if CONNECTION_SPECIFIC.contains(&name.as_str())
            || matches!(name.as_str(), "host" | "http2-settings" | "te")
        {
            continue;
        }
        literal(&mut block, name.as_bytes(), &latin1(value));
    }
    if block.len() > max_frame || body.len() > max_frame {
        return None;
    }
    let (end_stream, end_headers) = (0x1, 0x4);
    let mut frames = Vec::with_capacity(18 + block.len() + body.len());
    if body.is_empty() {
        frame(&mut frames, 0x1, end_stream | end_headers, &block);
    } else {
        frame(&mut frames, 0x1, end_headers, &block);
        frame(&mut frames, 0x0, end_stream, body);
    }
    Some(frames)
}

/// One frame on stream 1.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A latin-1 string (every char at most U+00FF, as the parser gives them) as its bytes.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// An HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2), strings not
/// Huffman-coded.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    string(out, name);
    string(out, value);
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    // 7-bit prefix integer (RFC 7541 §5.1).
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

/// Where the rewriting of an upgraded connection's input is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Our preface goes out first; `usize` of it went.
    OurPreface(usize),
    /// The client's preface is checked and dropped; `usize` of it came.
    TheirPreface(usize),
    /// The client's first frame header (it must be SETTINGS): what came of it.
    SettingsHead(Vec<u8>),
    /// The rest of that SETTINGS frame passes: `usize` bytes to go.
    Settings(usize),
    /// The upgraded request's frames go out; `usize` of them went.
    Headers(usize),
    /// Everything passes as it is.
    Through,
}

/// Rewrites what an upgraded connection's client sends into what the h2 crate expects from a
/// client that opened with the preface (see the module's documentation).
#[derive(Debug)]
pub struct Splice {
    stage: Stage,
    headers: Vec<u8>,
}

impl Splice {
    /// For the frames of the upgraded request ([`request_frames`]).
    pub fn new(headers: Vec<u8>) -> Splice {
        Splice {
            stage: Stage::OurPreface(0),
            headers,
        }
    }

    /// Whether [`Splice::produce`] gives bytes without reading: true while our own bytes go out.
    pub fn has_output(&self) -> bool {
        matches!(self.stage, Stage::OurPreface(_) | Stage::Headers(_))
    }

    /// Whether every input byte now passes as it is.
    pub fn is_through(&self) -> bool {
        self.stage == Stage::Through
    }

    /// Our own bytes to give the h2 connection now (at most `room`), before any input.
    pub fn produce(&mut self, room: usize) -> &[u8] {
        match &mut self.stage {
            Stage::OurPreface(sent) => {
                let start = *sent;
                let n = (PREFACE.len() - start).min(room);
                *sent += n;
                if *sent == PREFACE.len() {
                    self.stage = Stage::TheirPreface(0);
                }
                &PREFACE[start..start + n]
            }
            Stage::Headers(sent) => {
                let start = *sent;
                let n = (self.headers.len() - start).min(room);
                *sent += n;
                if *sent == self.headers.len() {
                    self.stage = Stage::Through;
                }
                &self.headers[start..start + n]
            }
            _ => &[],
        }
    }

    /// Takes `input` from the client; appends what passes to `out`. Err when the client does
    /// not open with the preface and a SETTINGS frame (RFC 7540 §3.5).
    pub fn consume(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut rest = input;
        while !rest.is_empty() {
            match &mut self.stage {
                Stage::OurPreface(_) | Stage::Headers(_) => {
                    unreachable!("produce() empties our bytes before input is read")
                }
                Stage::TheirPreface(seen) => {
                    let n = (PREFACE.len() - *seen).min(rest.len());
                    if rest[..n] != PREFACE[*seen..*seen + n] {
                        return Err(bad("the upgraded client did not send the HTTP/2 preface"));
                    }
                    *seen += n;
                    rest = &rest[n..];
                    if *seen == PREFACE.len() {
                        self.stage = Stage::SettingsHead(Vec::with_capacity(9));
                    }
                }
                Stage::SettingsHead(head) => {
                    let n = (9 - head.len()).min(rest.len());
                    head.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    if head.len() == 9 {
                        if head[3] != 0x4 {
                            return Err(bad("the upgraded client's first frame is not SETTINGS"));
                        }
                        let len = (usize::from(head[0]) << 16)
                            | (usize::from(head[1]) << 8)
                            | usize::from(head[2]);
                        out.extend_from_slice(head);
                        if len == 0 {
                            self.stage = Stage::Headers(0);
                            return self.hold(rest);
                        }
                        self.stage = Stage::Settings(len);
                    }
                }
                Stage::Settings(left) => {
                    let n = (*left).min(rest.len());
                    out.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    *left -= n;
                    if *left == 0 {
                        self.stage = Stage::Headers(0);
                        // Our HEADERS frame goes before any later input: keep the rest.
                        return self.hold(rest);
                    }
                }
                Stage::Through => {
                    out.extend_from_slice(rest);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Input that came after the SETTINGS frame, before our HEADERS frame went out: kept, and
    /// given after it.
    fn hold(&mut self, rest: &[u8]) -> io::Result<()> {
        self.headers.extend_from_slice(rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer, RequestParser};

    fn parse(head: &str) -> Request {
        let conn = ConnInfo {
            peer: Peer::Tcp("127.0.0.1:5000".parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        };
        let mut p = RequestParser::new(Arc::new(HttpConfig::default()), conn);
        p.parse_head(head.as_bytes()).unwrap().unwrap().0
    }

    const UPGRADE: &str =
        "GET /x?y=1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                           Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nAccept: */*\r\n\r\n";

    #[test]
    fn which_requests_may_upgrade() {
        let cases: &[(&str, bool)] = &[
            (UPGRADE, true),
            (&UPGRADE.replace("HTTP/1.1", "HTTP/1.0"), false),
            (
                &UPGRADE.replace("Upgrade: h2c", "Upgrade: websocket"),
                false,
            ),
            (
                &UPGRADE.replace(
                    "Connection: Upgrade, HTTP2-Settings",
                    "Connection: keep-alive",
                ),
                false,
            ),
            (
                &UPGRADE.replace("HTTP2-Settings: AAMAAABkAAQAAP__\r\n", ""),
                false,
            ),
            (
                &UPGRADE.replace("AAMAAABkAAQAAP__", "AAMAAABkAAQAAP__\r\nHTTP2-Settings: "),
                false,
            ),
            (&UPGRADE.replace("AAMAAABkAAQAAP__", "not base64!"), false),
            (&UPGRADE.replace("Accept: */*", "Content-Length: 3"), true),
            (
                &UPGRADE.replace("Accept: */*", "Transfer-Encoding: chunked"),
                false,
            ),
            // An empty HTTP2-Settings (no setting) is valid.
            (&UPGRADE.replace("AAMAAABkAAQAAP__", ""), true),
        ];
        for (head, want) in cases {
            assert_eq!(asks_for_h2c(&parse(head)), *want, "{head}");
        }
    }

    #[test]
    fn the_request_becomes_stream_1() {
        let frame = request_frames(&parse(UPGRADE), b"", 16384).unwrap();
        assert_eq!(&frame[3..9], &[0x1, 0x5, 0, 0, 0, 1]);
        let block = &frame[9..];
        let text = String::from_utf8_lossy(block);
        for want in [
            ":method",
            "GET",
            ":path",
            "/x?y=1",
            ":authority",
            "accept",
            "*/*",
        ] {
            assert!(text.contains(want), "{want} in {text:?}");
        }
        for gone in ["upgrade", "http2-settings", "connection", "host"] {
            assert!(!text.contains(gone), "{gone} in {text:?}");
        }
        assert!(request_frames(&parse(UPGRADE), b"", 20).is_none());
        // A body: HEADERS without END_STREAM, then one DATA frame that ends the stream.
        let frames = request_frames(&parse(UPGRADE), b"abc", 16384).unwrap();
        let len = usize::from(frames[2]);
        assert_eq!(&frames[3..9], &[0x1, 0x4, 0, 0, 0, 1]);
        assert_eq!(
            &frames[9 + len..],
            &[0, 0, 3, 0x0, 0x1, 0, 0, 0, 1, b'a', b'b', b'c']
        );
        assert!(request_frames(&parse(UPGRADE), &[0; 100], 50).is_none());
    }

    /// Feeds `client` in pieces of `step` and collects what the h2 connection reads.
    fn run(splice: &mut Splice, client: &[u8], step: usize) -> io::Result<Vec<u8>> {
        let mut seen = Vec::new();
        for piece in client.chunks(step) {
            while splice.has_output() {
                let b = splice.produce(7).to_vec();
                seen.extend_from_slice(&b);
            }
            let mut out = Vec::new();
            splice.consume(piece, &mut out)?;
            seen.extend_from_slice(&out);
        }
        while splice.has_output() {
            let b = splice.produce(7).to_vec();
            seen.extend_from_slice(&b);
        }
        Ok(seen)
    }

    #[test]
    fn the_input_is_rewritten_in_any_pieces() {
        let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let headers = vec![0xAA; 20];
        let with_values: &[u8] = &[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        let empty: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
        for settings in [with_values, empty] {
            let mut client = PREFACE.to_vec();
            client.extend_from_slice(settings);
            client.extend_from_slice(&ping);
            let mut want = PREFACE.to_vec();
            want.extend_from_slice(settings);
            want.extend_from_slice(&headers);
            want.extend_from_slice(&ping);
            for step in [1, 2, 5, 24, 33, 39, 1000] {
                let mut splice = Splice::new(headers.clone());
                let seen = run(&mut splice, &client, step).unwrap();
                assert_eq!(seen, want, "pieces of {step}");
                assert!(splice.is_through());
            }
        }
        let mut client = PREFACE.to_vec();
        client.extend_from_slice(with_values);
        let mut wrong = client.clone();
        wrong[3] = b'X';
        assert!(run(&mut Splice::new(headers.clone()), &wrong, 3).is_err());
        let mut not_settings = PREFACE.to_vec();
        not_settings.extend_from_slice(&ping);
        assert!(run(&mut Splice::new(headers), &not_settings, 100).is_err());
    }
}
