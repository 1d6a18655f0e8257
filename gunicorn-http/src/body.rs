//! Request body decoders (RFC 9112 §6, §7.1): Content-Length and chunked, as explicit state
//! machines that consume any split of the input and never buffer body data.

use crate::config::{HeaderMapPolicy, HttpConfig};
use crate::error::HttpError;
use crate::fields::{FieldRules, FieldScanner};
use crate::parser::{upper, BodyKind};
use crate::syntax::latin1_string;
use std::sync::Arc;

/// Trailer fields a sender must not put after the body (gunicorn's list; RFC 9110 §6.5.1:
/// framing, routing and authentication fields).
const FORBIDDEN_TRAILERS: [&str; 6] = [
    "HOST",
    "CONTENT-LENGTH",
    "TRANSFER-ENCODING",
    "TRAILER",
    "AUTHORIZATION",
    "TE",
];

/// How many input bytes the trailer reader copies at a time.
const TRAILER_PIECE: usize = 4096;

/// Where the chunk-size line reader is (RFC 9112 §7.1:
/// `chunk-size [ BWS ; chunk-ext ] CRLF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeLine {
    Digits,
    /// SP/HTAB after the size: only valid before `;` (gunicorn strips BWS only then).
    Bws,
    Ext,
    /// Saw CR after the size; LF must follow.
    Lf,
    /// Saw CR inside an extension; LF must follow (a bare CR is refused).
    ExtLf,
}

#[derive(Debug)]
enum State {
    Length {
        remaining: u64,
    },
    Size {
        value: u64,
        digits: usize,
        ext_len: usize,
        at: SizeLine,
    },
    Data {
        remaining: u64,
    },
    /// After chunk data: `\r` then `\n`.
    DataCr,
    DataLf,
    /// After the last chunk: trailer fields up to an empty line.
    Trailers {
        buf: Vec<u8>,
        scanner: FieldScanner,
    },
    Done,
    /// A framing error: the body (and the connection) cannot be read further.
    Failed(HttpError),
}

/// Decodes one request body.
#[derive(Debug)]
pub struct BodyDecoder {
    cfg: Arc<HttpConfig>,
    state: State,
    trailers: Vec<(String, String)>,
}

fn size_state() -> State {
    State::Size {
        value: 0,
        digits: 0,
        ext_len: 0,
        at: SizeLine::Digits,
    }
}

fn hex_val(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

impl BodyDecoder {
    pub fn new(kind: &BodyKind, cfg: Arc<HttpConfig>) -> Self {
        let state = match *kind {
            BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length { remaining: n },
            BodyKind::Chunked => size_state(),
        };
        BodyDecoder {
            cfg,
            state,
            trailers: Vec::new(),
        }
    }

    /// Decodes from `input`, appending body bytes to `out`; returns how many input bytes were
    /// consumed. Bytes after the end of the body are left unconsumed (the next request).
    /// After an error the decoder stays failed and returns it again.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let result = self.decode_inner(input, out);
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
        }
        result
    }

    fn decode_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Done => break,
                State::Failed(e) => return Err(e.clone()),
                State::Length { remaining } => {
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Done;
                    }
                }
                State::Data { remaining } => {
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr | State::DataLf => {
                    let want = if matches!(self.state, State::DataCr) {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if input[i] != want {
                        return Err(HttpError::ChunkMissingTerminator(format!(
                            "{:?}",
                            char::from(input[i])
                        )));
                    }
                    i += 1;
                    self.state = if want == b'\r' {
                        State::DataLf
                    } else {
                        size_state()
                    };
                }
                State::Size { .. } => i += self.size_byte(input[i])?,
                State::Trailers { buf, scanner } => {
                    // Copied in pieces, so a large pipelined tail after the trailers is not
                    // copied whole; the scanner's limits bound what is kept.
                    let before = buf.len();
                    let piece = (input.len() - i).min(TRAILER_PIECE);
                    buf.extend_from_slice(&input[i..i + piece]);
                    let rules = FieldRules {
                        limits: self.cfg.limits,
                        permit_fold: self.cfg.permit_obsolete_folding,
                        strip_spaces: self.cfg.strip_header_spaces,
                    };
                    let policy = self.cfg.header_map;
                    let trailers = &mut self.trailers;
                    let end = scanner
                        .advance(buf, &rules, |n, v, _| add_trailer(trailers, policy, n, v))?;
                    match end {
                        Some(end) => {
                            // The end lies in the bytes just appended (an earlier call would
                            // have seen it).
                            i += end.saturating_sub(before);
                            self.state = State::Done;
                        }
                        None => i += piece,
                    }
                }
            }
        }
        Ok(i)
    }

    /// One byte of a chunk-size line; returns 1 (consumed).
    fn size_byte(&mut self, b: u8) -> Result<usize, HttpError> {
        let State::Size {
            value,
            digits,
            ext_len,
            at,
        } = &mut self.state
        else {
            return Ok(0);
        };
        let bad_size = |why: &str| HttpError::InvalidChunkSize(why.to_string());
        match *at {
            SizeLine::Digits => {
                if let Some(d) = hex_val(b) {
                    // Overflow check before the shift: sizes must fit in 64 bits.
                    if *value > u64::MAX >> 4 {
                        return Err(bad_size("chunk size overflows 64 bits"));
                    }
                    *value = (*value << 4) | d;
                    *digits += 1;
                } else if *digits == 0 {
                    // Empty size, leading space, sign, ... (gunicorn: hex digits only).
                    return Err(bad_size("missing hex digits"));
                } else {
                    match b {
                        b';' => *at = SizeLine::Ext,
                        b' ' | b'\t' => *at = SizeLine::Bws,
                        b'\r' => *at = SizeLine::Lf,
                        _ => return Err(bad_size("not a hex digit")),
                    }
                }
            }
            SizeLine::Bws => match b {
                b' ' | b'\t' => {}
                b';' => *at = SizeLine::Ext,
                _ => return Err(bad_size("whitespace after the chunk size")),
            },
            SizeLine::Ext => {
                if b == b'\r' {
                    *at = SizeLine::ExtLf;
                } else if b != b'\t' && (b < 0x20 || b == 0x7f) {
                    // Stricter than gunicorn: chunk-ext is tokens/quoted strings (RFC 9112 §7.1.1).
                    return Err(HttpError::InvalidChunkExtension("control character".into()));
                } else {
                    *ext_len += 1;
                    // Extensions are ignored, never buffered; still bound them.
                    if *ext_len > self.cfg.limits.field_size {
                        return Err(HttpError::InvalidChunkExtension("too long".into()));
                    }
                }
            }
            SizeLine::ExtLf => {
                if b != b'\n' {
                    return Err(HttpError::InvalidChunkExtension("bare CR".into()));
                }
                self.state = self.after_size();
            }
            SizeLine::Lf => {
                if b != b'\n' {
                    return Err(bad_size("bare CR"));
                }
                self.state = self.after_size();
            }
        }
        Ok(1)
    }

    fn after_size(&self) -> State {
        match self.state {
            State::Size { value: 0, .. } => State::Trailers {
                buf: Vec::new(),
                scanner: FieldScanner::new(0),
            },
            State::Size { value, .. } => State::Data { remaining: value },
            _ => State::Done,
        }
    }

    /// The whole body (and any trailers) has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The peer closed. A short Content-Length body is tolerated (gunicorn returns what came);
    /// an unfinished chunked body is an error.
    pub fn eof(&mut self) -> Result<(), HttpError> {
        match self.state {
            State::Done => Ok(()),
            State::Length { .. } => {
                self.state = State::Done;
                Ok(())
            }
            State::Failed(ref e) => Err(e.clone()),
            State::Trailers { .. } => Err(HttpError::ChunkMissingTerminator(
                "end of input before the trailers ended".into(),
            )),
            _ => Err(HttpError::NoMoreData),
        }
    }

    /// The trailer fields of a chunked body (upper-case names). Never put in the environ.
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }
}

fn add_trailer(
    out: &mut Vec<(String, String)>,
    policy: HeaderMapPolicy,
    name: &[u8],
    value: &[u8],
) -> Result<(), HttpError> {
    let name = upper(name);
    if FORBIDDEN_TRAILERS.contains(&name.as_str()) {
        return Err(HttpError::InvalidHeaderName(name));
    }
    // No forwarder trust in trailers (gunicorn); `_` names follow --header-map.
    if name.contains('_') {
        match policy {
            HeaderMapPolicy::Dangerous => {}
            HeaderMapPolicy::Drop => return Ok(()),
            HeaderMapPolicy::Refuse => return Err(HttpError::InvalidHeaderName(name)),
        }
    }
    out.push((name, latin1_string(value)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: BodyKind, input: &[u8]) -> (Result<usize, HttpError>, Vec<u8>, bool) {
        let mut d = BodyDecoder::new(&kind, Arc::new(HttpConfig::default()));
        let mut out = Vec::new();
        let r = d.decode(input, &mut out);
        (r, out, d.is_done())
    }

    #[test]
    fn chunked_table() {
        // (input, Ok((consumed, body, done)) or Err(kind prefix))
        type Want = Result<(usize, &'static [u8], bool), &'static str>;
        let cases: &[(&[u8], Want)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", Ok((15, b"hello", true))),
            (b"5\r\nhello\r\n0\r\n\r\nGET", Ok((15, b"hello", true))),
            (b"005\r\nhello\r\n00\r\n\r\n", Ok((18, b"hello", true))),
            (
                b"A\r\n0123456789\r\n0\r\n\r\n",
                Ok((20, b"0123456789", true)),
            ),
            (
                b"a\r\n0123456789\r\n0\r\n\r\n",
                Ok((20, b"0123456789", true)),
            ),
            (b"5;a=b\r\nhello\r\n0;x\r\n\r\n", Ok((21, b"hello", true))),
            (b"5 \t;a=b\r\nhello\r\n0\r\n\r\n", Ok((21, b"hello", true))),
            (
                b"5;a=\"b c\"\r\nhello\r\n0\r\n\r\n",
                Ok((23, b"hello", true)),
            ),
            (
                b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
                Ok((23, b"hello", true)),
            ),
            (b"5\r\nhel", Ok((6, b"hel", false))),
            (b"5\r\nhello\r\n0\r\n", Ok((13, b"hello", false))),
            (b"0 \r\n\r\n", Err("InvalidChunkSize")),
            (b" 0\r\n\r\n", Err("InvalidChunkSize")),
            (b"+5\r\nhello\r\n", Err("InvalidChunkSize")),
            (b"-5\r\nhello\r\n", Err("InvalidChunkSize")),
            (b"6_0\r\n", Err("InvalidChunkSize")),
            (b"\r\n", Err("InvalidChunkSize")),
            (b"5\n;\r\n", Err("InvalidChunkSize")),
            (b"5\nhello", Err("InvalidChunkSize")),
            (b"5\rhello", Err("InvalidChunkSize")),
            (b"0x5\r\n", Err("InvalidChunkSize")),
            (b"g\r\n", Err("InvalidChunkSize")),
            (b"10000000000000000\r\n", Err("InvalidChunkSize")),
            (b"5;a\rb\r\nhello\r\n", Err("InvalidChunkExtension")),
            (b"5;a\nb\r\nhello\r\n", Err("InvalidChunkExtension")),
            (b"5;a\x00\r\n", Err("InvalidChunkExtension")),
            (b"5\r\nhelloX\r\n", Err("ChunkMissingTerminator")),
            (b"5\r\nhello\n0\r\n\r\n", Err("ChunkMissingTerminator")),
            (b"5\r\nhello\rX", Err("ChunkMissingTerminator")),
            (b"0\r\nHost: x\r\n\r\n", Err("InvalidHeaderName")),
            (b"0\r\nContent-Length: 1\r\n\r\n", Err("InvalidHeaderName")),
            (
                b"0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err("InvalidHeaderName"),
            ),
            (b"0\r\nTrailer: x\r\n\r\n", Err("InvalidHeaderName")),
            (b"0\r\nAuthorization: x\r\n\r\n", Err("InvalidHeaderName")),
            (b"0\r\nTE: trailers\r\n\r\n", Err("InvalidHeaderName")),
            (b"0\r\nX: a\x01\r\n\r\n", Err("InvalidHeader")),
            (b"0\r\nX\r\n\r\n", Err("InvalidHeader")),
        ];
        for (input, want) in cases {
            let (got, out, done) = run(BodyKind::Chunked, input);
            let shown = String::from_utf8_lossy(input);
            match (got, want) {
                (Ok(n), Ok((wn, wbody, wdone))) => {
                    assert_eq!((n, &out[..], done), (*wn, *wbody, *wdone), "{shown}")
                }
                (Err(e), Err(kind)) => {
                    assert!(format!("{e:?}").starts_with(kind), "{shown}: {e:?}")
                }
                (got, want) => panic!("{shown}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let input = b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-A: 1\r\n\r\nNEXT";
        for cut in 0..=input.len() {
            let mut d = BodyDecoder::new(&BodyKind::Chunked, Arc::new(HttpConfig::default()));
            let mut out = Vec::new();
            let a = d.decode(&input[..cut], &mut out).unwrap();
            let b = d.decode(&input[a..], &mut out).unwrap();
            assert_eq!(a + b, input.len() - 4, "cut {cut}");
            assert_eq!(out, b"abc0123456789abcdef", "cut {cut}");
            assert!(d.is_done());
            assert_eq!(d.trailers(), &[("X-A".to_string(), "1".to_string())]);
        }
    }

    #[test]
    fn large_tail_after_trailers_is_left_alone() {
        let mut input = b"0\r\nX-A: 1\r\n\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'G', 100_000));
        let (r, _, done) = run(BodyKind::Chunked, &input);
        assert_eq!((r.unwrap(), done), (13, true));
        // A trailer section that never ends is cut by the field-size limit.
        let mut input = b"0\r\nX-A: ".to_vec();
        input.extend(std::iter::repeat_n(b'v', 100_000));
        assert!(matches!(
            run(BodyKind::Chunked, &input).0,
            Err(HttpError::LimitRequestHeaders(_))
        ));
    }

    #[test]
    fn stays_failed_after_an_error() {
        let mut d = BodyDecoder::new(&BodyKind::Chunked, Arc::new(HttpConfig::default()));
        let mut out = Vec::new();
        assert!(matches!(
            d.decode(b"zz\r\n", &mut out),
            Err(HttpError::InvalidChunkSize(_))
        ));
        assert!(matches!(
            d.decode(b"0\r\n\r\n", &mut out),
            Err(HttpError::InvalidChunkSize(_))
        ));
        assert!(matches!(d.eof(), Err(HttpError::InvalidChunkSize(_))));
        assert!(!d.is_done());
    }

    #[test]
    fn length_and_eof() {
        let (r, out, done) = run(BodyKind::Length(3), b"abcdef");
        assert_eq!((r.unwrap(), &out[..], done), (3, &b"abc"[..], true));
        let (r, _, done) = run(BodyKind::Length(0), b"abc");
        assert_eq!((r.unwrap(), done), (0, true));
        let cfg = Arc::new(HttpConfig::default());
        let mut d = BodyDecoder::new(&BodyKind::Length(10), cfg.clone());
        d.decode(b"abc", &mut Vec::new()).unwrap();
        assert!(d.eof().is_ok());
        let cases: &[(&[u8], &str)] = &[
            (b"5\r\nab", "NoMoreData"),
            (b"5", "NoMoreData"),
            (b"0\r\nX: 1\r\n", "ChunkMissingTerminator"),
        ];
        for (input, kind) in cases {
            let mut d = BodyDecoder::new(&BodyKind::Chunked, cfg.clone());
            d.decode(input, &mut Vec::new()).unwrap();
            assert!(format!("{:?}", d.eof().unwrap_err()).starts_with(kind));
        }
    }
}
