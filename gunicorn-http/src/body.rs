//! Request body decoders (RFC 9112 §6, §7.1): Content-Length and chunked, as explicit state
//! machines that consume any split of the input and never buffer body data.

use crate::config::{HeaderMapPolicy, HttpConfig};
use crate::error::HttpError;
use crate::fields::{FieldRules, FieldScanner};
use crate::parser::BodyKind;
use crate::syntax::{is_tchar, latin1_string, upper};
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

/// Where the chunk-size line reader is (RFC 9112 §7.1: `chunk-size [ chunk-ext ] CRLF`), with
/// the extension grammar of RFC 9112 §7.1.1 read strictly, byte by byte:
///
/// ```text
/// chunk-ext     = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token
/// chunk-ext-val  = token / quoted-string
/// ```
///
/// gunicorn 27 matches the same grammar with a regular expression once the line has ended; a
/// byte that breaks it is refused here as soon as it arrives (400, then close). This matters:
/// a lenient reader lets an unbalanced quote or a bare CR make two servers disagree on where
/// the chunk data starts (chunk-extension smuggling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeLine {
    Digits,
    /// SP/HTAB after the size: only valid before `;` (BWS; gunicorn strips it only then).
    Bws,
    /// After `;` (and any BWS): the name must start here (an empty name is refused).
    ExtNameStart,
    ExtName,
    /// BWS after a name: `=` or `;` must follow (trailing whitespace is not in the grammar).
    ExtAfterName,
    /// After `=` (and any BWS): a token or a quoted-string must start here.
    ExtValueStart,
    /// Inside a token value.
    ExtToken,
    /// Inside a quoted-string (RFC 9110 §5.6.4).
    ExtQuoted,
    /// After a backslash inside a quoted-string (quoted-pair).
    ExtQuotedPair,
    /// After a quoted value: BWS then `;`, or the end of the line.
    ExtAfterValue,
    /// BWS after a value: only `;` may follow.
    ExtValueBws,
    /// Saw CR after the size; LF must follow.
    Lf,
    /// Saw CR ending an extension; LF must follow (a bare CR is refused).
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

/// One byte of a chunk extension (RFC 9112 §7.1.1): the next state, `Some(SizeLine::Lf)`
/// when the line has ended (CRLF read), `None` when the byte breaks the grammar.
fn ext_step(at: SizeLine, b: u8) -> Option<SizeLine> {
    use SizeLine::*;
    let bws = b == b' ' || b == b'\t';
    Some(match (at, b) {
        (ExtNameStart, _) if bws => ExtNameStart,
        (ExtNameStart, _) if is_tchar(b) => ExtName,
        (ExtName, _) if is_tchar(b) => ExtName,
        (ExtName, _) if bws => ExtAfterName,
        (ExtAfterName, _) if bws => ExtAfterName,
        (ExtName | ExtAfterName, b'=') => ExtValueStart,
        (ExtName | ExtAfterName | ExtToken | ExtAfterValue | ExtValueBws, b';') => ExtNameStart,
        (ExtName | ExtToken | ExtAfterValue, b'\r') => ExtLf,
        (ExtValueStart, _) if bws => ExtValueStart,
        (ExtValueStart, b'"') => ExtQuoted,
        (ExtValueStart | ExtToken, _) if is_tchar(b) => ExtToken,
        (ExtToken | ExtAfterValue | ExtValueBws, _) if bws => ExtValueBws,
        // RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
        (ExtQuoted, b'"') => ExtAfterValue,
        (ExtQuoted, b'\\') => ExtQuotedPair,
        (ExtQuoted, _) if bws || (0x21..=0x7e).contains(&b) || b >= 0x80 => ExtQuoted,
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        (ExtQuotedPair, _) if bws || (0x21..=0x7e).contains(&b) || b >= 0x80 => ExtQuoted,
        (ExtLf, b'\n') => Lf,
        _ => return None,
    })
}

/// Why `b` broke the extension grammar at `at` (the message of the 400).
fn ext_fault(at: SizeLine, b: u8) -> &'static str {
    use SizeLine::*;
    match (at, b) {
        (ExtLf, _) => "bare CR",
        (ExtQuoted | ExtQuotedPair, b'\r' | b'\n') => "line ends inside a quoted value",
        (ExtNameStart, _) => "empty name",
        (ExtValueStart, _) => "empty value",
        (ExtAfterName | ExtValueBws, b'\r') => "whitespace at the end",
        (ExtToken | ExtAfterValue | ExtValueBws, _) => "value is not a token or quoted-string",
        (_, b'\n') => "bare LF",
        _ => "not a token",
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
                        b';' => *at = SizeLine::ExtNameStart,
                        b' ' | b'\t' => *at = SizeLine::Bws,
                        b'\r' => *at = SizeLine::Lf,
                        _ => return Err(bad_size("not a hex digit")),
                    }
                }
            }
            SizeLine::Bws => match b {
                b' ' | b'\t' => {}
                b';' => *at = SizeLine::ExtNameStart,
                _ => return Err(bad_size("whitespace after the chunk size")),
            },
            SizeLine::Lf => {
                if b != b'\n' {
                    return Err(bad_size("bare CR"));
                }
                self.state = self.after_size();
            }
            _ => {
                // Extensions are ignored, never buffered; still bound them (gunicorn bounds
                // the whole size line by the field-size limit). The CRLF does not count.
                if b != b'\r' && b != b'\n' {
                    *ext_len += 1;
                    if *ext_len > self.cfg.limits.field_size {
                        return Err(HttpError::InvalidChunkExtension("too long".into()));
                    }
                }
                match ext_step(*at, b) {
                    Some(SizeLine::Lf) => self.state = self.after_size(),
                    Some(next) => *at = next,
                    None => return Err(HttpError::InvalidChunkExtension(ext_fault(*at, b).into())),
                }
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
    fn chunk_extension_table() {
        // (what follows the size "1" up to its CRLF, accepted?). RFC 9112 §7.1.1 with BWS
        // around ";" and "=", as gunicorn 27's grammar check reads it.
        let cases: &[(&[u8], bool)] = &[
            (b"", true),
            (b";a", true),
            (b";a=b", true),
            (b";a=b;c", true),
            (b" ;a", true),
            (b"\t; a = b ; c = \"d\"", true),
            (b";a=\"b c\"", true),
            (b";a=\"\xe9\"", true),
            (b";a=\"x\\\"y\"", true),
            (b";a=\"\"", true),
            (b";a=\"\\\t\"", true),
            (b";a=\"\t!#[]~\"", true),
            (b";!#$%&'*+-.^_`|~09azAZ=!#$%&'*+-.^_`|~", true),
            (b";a;b;c=d", true),
            (b";a =b", true),
            (b";a= b", true),
            (b";a=\"b\" ;c", true),
            // Empty names or values.
            (b";", false),
            (b";=v", false),
            (b"; ;a", false),
            (b";a;", false),
            (b";a=", false),
            (b";a= ", false),
            (b";a=;b", false),
            // Whitespace at the end or inside a token.
            (b";a ", false),
            (b";a=b ", false),
            (b";a=\"b\" ", false),
            (b";a=b c", false),
            (b";a b", false),
            // Not a token, not a quoted-string.
            (b";a=\xe9", false),
            (b";\xe9", false),
            (b";a=b,c", false),
            (b";a=@", false),
            (b";a,b", false),
            (b";a=\"b\"c", false),
            (b";a=b\"c\"", false),
            (b";a=\"b", false),
            (b";a=\"\x01\"", false),
            (b";a=\"\x7f\"", false),
            (b";a=\"b\\", false),
            (b";a\x00", false),
            (b";a\x0b", false),
            // A bare CR or LF, in a token or inside quotes.
            (b";a\rX", false),
            (b";a\n", false),
            (b";a=\"b\nc\"", false),
            (b";a=\"b\rc\"", false),
        ];
        let cfg = Arc::new(HttpConfig::default());
        for (ext, ok) in cases {
            let input = [&b"1"[..], ext, b"\r\nx\r\n0\r\n\r\n"].concat();
            let shown = String::from_utf8_lossy(&input);
            let (got, out, done) = run(BodyKind::Chunked, &input);
            if *ok {
                assert_eq!(
                    (got, &out[..], done),
                    (Ok(input.len()), &b"x"[..], true),
                    "{shown:?}"
                );
            } else {
                assert!(
                    matches!(got, Err(HttpError::InvalidChunkExtension(_))),
                    "{shown:?}: {got:?}"
                );
                // Byte by byte: refused at the same byte, never waiting for more.
                let mut d = BodyDecoder::new(&BodyKind::Chunked, cfg.clone());
                let first_err = input
                    .iter()
                    .position(|b| d.decode(std::slice::from_ref(b), &mut Vec::new()).is_err());
                assert!(first_err.is_some(), "{shown:?}");
            }
        }
        // A quoted value that runs across the CRLF cannot hide the chunk data (and the request
        // after it): refused at the CR.
        let input = b"1;a=\"\r\nx\r\n0\r\n\r\n\"\r\nGET / HTTP/1.1\r\n\r\n";
        let (got, _, _) = run(BodyKind::Chunked, input);
        assert!(matches!(got, Err(HttpError::InvalidChunkExtension(_))));
        // The bound counts the extension's bytes after the first ";", not its CRLF.
        let mut cfg = HttpConfig::default();
        cfg.limits.field_size = 4;
        let mut d = BodyDecoder::new(&BodyKind::Chunked, Arc::new(cfg.clone()));
        assert_eq!(
            d.decode(b"1;abcd\r\nx\r\n0\r\n\r\n", &mut Vec::new()),
            Ok(16)
        );
        let mut d = BodyDecoder::new(&BodyKind::Chunked, Arc::new(cfg));
        assert!(matches!(
            d.decode(b"1;abcde\r\n", &mut Vec::new()),
            Err(HttpError::InvalidChunkExtension(_))
        ));
    }

    #[test]
    fn bare_lf_in_chunked_framing() {
        // RFC 9112 §2.2 / §7.1: every line of the chunked framing ends with CRLF; a bare LF
        // is refused as soon as it arrives (gunicorn 27), never waited on.
        let cases: &[(&[u8], &str)] = &[
            (b"1\nx", "InvalidChunkSize"),
            (b"1;a\n", "InvalidChunkExtension"),
            (b"1\r\nx\n", "ChunkMissingTerminator"),
            (b"0\r\n\n", "InvalidHeader"),
            (b"0\r\nX: y\n", "InvalidHeader"),
            (b"0\r\nX: y\r\n\n", "InvalidHeader"),
        ];
        for (input, kind) in cases {
            let (got, _, _) = run(BodyKind::Chunked, input);
            let got = got.unwrap_err();
            assert!(format!("{got:?}").starts_with(kind), "{input:?}: {got:?}");
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
