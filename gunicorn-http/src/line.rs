//! The request line (RFC 9112 §3): `method SP request-target SP HTTP-version CRLF`, read as a
//! resumable scan that refuses the line at the first byte that cannot belong to a valid one.
//!
//! A request line is only ever complete at its CRLF, but most malformed input is certain to be
//! malformed long before that: a TLS ClientHello sent to a plain-HTTP port, binary garbage, a
//! bare LF. Waiting for a CRLF that cannot make such bytes valid would tie a sync worker up
//! until `--timeout`; gunicorn 27 answers those with a 400 at once (its reader refuses a bare
//! LF as soon as it sees one). So every byte is judged as it arrives, and the kind of error
//! is decided by the first offending byte alone: the outcome never depends on how the bytes
//! were split into reads (the message may show more or less of the line).
//!
//! Whole parts are checked as soon as they end, in gunicorn's order (method at the first SP,
//! request-target at the second, version at the CR), so a later part is never looked at
//! before an earlier one is known to be valid.

use crate::config::HttpConfig;
use crate::error::HttpError;
use crate::syntax::{is_tchar, is_token, latin1_into, latin1_string};

/// gunicorn's longest conventional method (its `3 <= len <= 20` rule).
const MAX_METHOD: usize = 20;
/// The only version shape accepted (RFC 9112 §2.3: `HTTP/` DIGIT `.` DIGIT, case-sensitive).
const VERSION_SHAPE: &[u8; 8] = b"HTTP/d.d";

/// A request line read and checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Line {
    pub method: String,
    pub uri: String,
    pub path: String,
    pub query: String,
    pub fragment: String,
    pub version: (u8, u8),
}

/// Which part of the line the next byte belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Method,
    Target,
    Version,
    /// The CR after the version was read; only LF may follow.
    Lf,
}

/// The request-target's parts, as offsets in the buffer, kept until the line ends (the text
/// is copied once, into the [`Line`]).
#[derive(Debug, Clone, Copy)]
struct Target {
    path: PathPart,
    query: (usize, usize),
    fragment: (usize, usize),
}

/// The path of a request-target.
#[derive(Debug, Clone, Copy)]
enum PathPart {
    /// `buf[start..end]` (empty for the authority-form of CONNECT).
    Bytes(usize, usize),
    /// The asterisk-form of OPTIONS.
    Asterisk,
}

impl Target {
    /// No path, query or fragment (the authority-form, RFC 9112 §3.2.3).
    const EMPTY: Target = Target {
        path: PathPart::Bytes(0, 0),
        query: (0, 0),
        fragment: (0, 0),
    };
}

/// Progress through one request line, kept between calls so a line arriving byte by byte is
/// read once.
#[derive(Debug, Clone)]
pub(crate) struct LineScan {
    /// Where the line begins (after a skipped empty line).
    begin: usize,
    /// The first bytes were looked at for an empty line to skip.
    started: bool,
    /// The next byte to look at.
    pos: usize,
    part: Part,
    /// The SP after the method, and the SP after the target.
    method_end: usize,
    target_end: usize,
    target: Option<Target>,
}

impl LineScan {
    /// A scan of the line that starts at `start` (after a PROXY header, or at 0).
    pub(crate) fn new(start: usize) -> Self {
        LineScan {
            begin: start,
            started: false,
            pos: start,
            part: Part::Method,
            method_end: 0,
            target_end: 0,
            target: None,
        }
    }

    /// [`LineScan::advance_reusing`] with no spare strings (the tests' form).
    #[cfg(test)]
    pub(crate) fn advance(
        &mut self,
        buf: &[u8],
        cfg: &HttpConfig,
        limit: usize,
    ) -> Result<Option<(Line, usize)>, HttpError> {
        self.advance_reusing(buf, cfg, limit, &mut None)
    }

    /// Reads on from where the last call stopped. `Ok(Some((line, next)))`: the line ended;
    /// `next` is just past its CRLF. `Ok(None)`: every byte so far may still begin a valid
    /// line. `limit`: the most bytes the line may hold before its CRLF. The line's text is
    /// written into the strings of `spare` (a previous request's, their allocations reused)
    /// when there is one.
    ///
    /// Long because it is one byte-scanning loop over the line's parts (method, target,
    /// version) that resumes where the previous call stopped: the state is `self`, and each
    /// part's check sits beside the byte that ends it, in gunicorn 27's order of errors.
    pub(crate) fn advance_reusing(
        &mut self,
        buf: &[u8],
        cfg: &HttpConfig,
        limit: usize,
        spare: &mut Option<Line>,
    ) -> Result<Option<(Line, usize)>, HttpError> {
        if !self.started {
            if buf.len() <= self.begin {
                return Ok(None);
            }
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
            // request line. gunicorn 27 ignores exactly one, and only as CRLF: a second one
            // is an empty request line and a bare LF is refused (both 400, below).
            match buf.get(self.begin..self.begin + 2) {
                None if buf.get(self.begin) == Some(&b'\r') => return Ok(None),
                Some(b"\r\n") => self.begin += 2,
                _ => {}
            }
            self.pos = self.begin;
            self.started = true;
        }
        while self.pos < buf.len() {
            let i = self.pos;
            let b = buf[i];
            // The line may hold `limit` bytes before its CRLF. A CR or LF is judged by the
            // rules below (it may end the line, or be refused for what it is), anything else
            // past the limit cannot lead to a line short enough (gunicorn: 414).
            if i - self.begin >= limit && b != b'\r' && b != b'\n' && self.part != Part::Lf {
                return Err(over_limit(buf, self.begin, limit));
            }
            match self.part {
                Part::Method => {
                    // Bytes from `stop` on are past the limit.
                    let stop = buf.len().min(self.begin + limit);
                    let end = run_end(buf, i, stop, is_tchar);
                    // Without --permit-unconventional-http-method a method is at most 20
                    // bytes (gunicorn): a 21st tchar already decides.
                    if !cfg.permit_unconventional_http_method && end - self.begin > MAX_METHOD {
                        let cut = self.begin + MAX_METHOD + 1;
                        return Err(HttpError::InvalidRequestMethod(latin1_string(
                            &buf[self.begin..cut],
                        )));
                    }
                    self.pos = end;
                    let Some(&c) = buf.get(end) else { break };
                    if end == stop && c != b'\r' && c != b'\n' {
                        return Err(over_limit(buf, self.begin, limit));
                    }
                    match c {
                        b' ' => {
                            check_method(&buf[self.begin..end], cfg)?;
                            self.method_end = end;
                            self.pos = end + 1;
                            self.part = Part::Target;
                        }
                        // The line ends (or breaks) before it has three parts.
                        b'\r' | b'\n' => return Err(self.bad_line(buf, end, c)),
                        // RFC 9110 §9.1: a method is a token. A TLS ClientHello (0x16) or
                        // other binary input is refused at its first byte.
                        _ => {
                            return Err(HttpError::InvalidRequestMethod(latin1_string(
                                &buf[self.begin..=end],
                            )))
                        }
                    }
                }
                Part::Target => {
                    let start = self.method_end + 1;
                    let stop = buf.len().min(self.begin + limit);
                    let end = run_end(buf, i, stop, is_target_byte);
                    self.pos = end;
                    let Some(&c) = buf.get(end) else { break };
                    if end == stop && c != b'\r' && c != b'\n' {
                        return Err(over_limit(buf, self.begin, limit));
                    }
                    match c {
                        b' ' => {
                            let method = &buf[self.begin..self.method_end];
                            let target = parse_target(method, buf, start, end, cfg)
                                .ok_or_else(|| line_error(&buf[self.begin..end]))?;
                            self.target = Some(target);
                            self.target_end = end;
                            self.pos = end + 1;
                            self.part = Part::Version;
                        }
                        b'\r' | b'\n' => return Err(self.bad_line(buf, end, c)),
                        // RFC 9112 §3.2 / RFC 3986 §2 (gunicorn 27): the target is printable
                        // ASCII; controls, DEL and bytes above 0x7F must be percent-encoded.
                        _ => return Err(line_error(&buf[self.begin..=end])),
                    }
                }
                Part::Version => {
                    let start = self.target_end + 1;
                    let at = i - start;
                    let ok = match VERSION_SHAPE.get(at) {
                        Some(b'd') => b.is_ascii_digit(),
                        Some(&want) => b == want,
                        None => false,
                    };
                    if ok {
                        self.pos = i + 1;
                        continue;
                    }
                    match b {
                        b'\n' => return Err(line_error(&buf[self.begin..=i])),
                        b'\r' if at == VERSION_SHAPE.len() => {
                            parse_version(&buf[start..i], cfg)?;
                            self.pos = i + 1;
                            self.part = Part::Lf;
                        }
                        // Too short, a wrong letter (`http/`, `HTTP/1.x`), a third SP:
                        // gunicorn's `HTTP/(\d)\.(\d)` can no longer match.
                        b'\r' => {
                            return Err(HttpError::InvalidHTTPVersion(latin1_string(
                                &buf[start..i],
                            )))
                        }
                        _ => {
                            return Err(HttpError::InvalidHTTPVersion(latin1_string(
                                &buf[start..=i],
                            )))
                        }
                    }
                }
                Part::Lf => {
                    if b != b'\n' {
                        // A bare CR after the version: the version part would hold it.
                        let start = self.target_end + 1;
                        return Err(HttpError::InvalidHTTPVersion(latin1_string(
                            &buf[start..=i],
                        )));
                    }
                    let line = self.finish(buf, cfg, spare.take().unwrap_or_default());
                    return Ok(Some((line, i + 1)));
                }
            }
        }
        Ok(None)
    }

    /// A CR or LF at `at`, before the line has its three parts: an empty or short line
    /// (gunicorn: `InvalidRequestLine`), or a bare LF (gunicorn 27 refuses it as soon as it
    /// sees it, RFC 9112 §2.2).
    fn bad_line(&self, buf: &[u8], at: usize, c: u8) -> HttpError {
        if c == b'\n' {
            line_error(&buf[self.begin..=at])
        } else {
            line_error(&buf[self.begin..at])
        }
    }

    /// Builds the line from the checked parts, in `line`'s strings (their text replaced).
    fn finish(&mut self, buf: &[u8], cfg: &HttpConfig, mut line: Line) -> Line {
        let method = &buf[self.begin..self.method_end];
        let uri = &buf[self.method_end + 1..self.target_end];
        let v = &buf[self.target_end + 1..self.target_end + 1 + VERSION_SHAPE.len()];
        let target = self.target.take().unwrap_or(Target::EMPTY);
        latin1_into(method, &mut line.method);
        if cfg.casefold_http_method {
            // A token: ASCII.
            line.method.make_ascii_uppercase();
        }
        latin1_into(uri, &mut line.uri);
        match target.path {
            PathPart::Bytes(a, b) => latin1_into(&buf[a..b], &mut line.path),
            PathPart::Asterisk => {
                line.path.clear();
                line.path.push('*');
            }
        }
        latin1_into(&buf[target.query.0..target.query.1], &mut line.query);
        latin1_into(
            &buf[target.fragment.0..target.fragment.1],
            &mut line.fragment,
        );
        line.version = (v[5] - b'0', v[7] - b'0');
        line
    }
}

fn line_error(shown: &[u8]) -> HttpError {
    HttpError::InvalidRequestLine(latin1_string(shown))
}

/// The line is longer than `limit`. The length shown is up to its CRLF if that has arrived,
/// else what has (gunicorn reports it the same two ways).
fn over_limit(buf: &[u8], begin: usize, limit: usize) -> HttpError {
    let end = crate::syntax::find_crlf(buf, begin).unwrap_or(buf.len());
    HttpError::LimitRequestLine(end - begin, limit)
}

/// The end of the run of bytes of class `ok` from `from`, at most `stop`.
fn run_end(buf: &[u8], from: usize, stop: usize, ok: fn(u8) -> bool) -> usize {
    buf[from..stop]
        .iter()
        .position(|&c| !ok(c))
        .map_or(stop, |r| from + r)
}

/// A byte that may appear in a request-target: printable ASCII, `\x21-\x7e` (gunicorn 27's
/// `RFC9112_TARGET_INVALID` is the complement).
fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// gunicorn's method rules: a token (RFC 9110 §9.1) and, unless
/// `--permit-unconventional-http-method`, 3..20 bytes with no `a-z` and no `#`.
pub(crate) fn check_method(m: &[u8], cfg: &HttpConfig) -> Result<(), HttpError> {
    let conventional = (3..=MAX_METHOD).contains(&m.len())
        && !m.iter().any(|&b| b.is_ascii_lowercase() || b == b'#');
    if (cfg.permit_unconventional_http_method || conventional) && is_token(m) {
        Ok(())
    } else {
        Err(HttpError::InvalidRequestMethod(latin1_string(m)))
    }
}

/// Splits the request-target `buf[start..end]` (RFC 9112 §3.2) into (path, query, fragment);
/// `None` = invalid. Its bytes are already known to be `\x21-\x7e`.
fn parse_target(
    method: &[u8],
    buf: &[u8],
    start: usize,
    end: usize,
    cfg: &HttpConfig,
) -> Option<Target> {
    let t = &buf[start..end];
    // There are four forms (RFC 9112 §3.2) and none is empty.
    if t.is_empty() {
        return None;
    }
    // gunicorn compares the method after --casefold-http-method.
    let is = |name: &[u8]| {
        if cfg.casefold_http_method {
            method.eq_ignore_ascii_case(name)
        } else {
            method == name
        }
    };
    let connect = is(b"CONNECT");
    if t == b"*" {
        // asterisk-form: OPTIONS only (RFC 9112 §3.2.4).
        return is(b"OPTIONS").then_some(Target {
            path: PathPart::Asterisk,
            ..Target::EMPTY
        });
    }
    // Where the path-abempty, query and fragment begin, in `buf`.
    let rest = if t[0] == b'/' {
        // origin-form; a leading "//" stays part of the path (gunicorn).
        start
    } else if let Some(i) = find(t, b"://") {
        // absolute-form: scheme "://" authority [path-abempty] [? query] [# fragment].
        let scheme = &t[..i];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let after = &t[i + 3..];
        let auth_end = after
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(after.len());
        let authority = &after[..auth_end];
        // An unbalanced IPv6 bracket is an invalid URL (urlsplit raises).
        if authority.contains(&b'[') != authority.contains(&b']') {
            return None;
        }
        start + i + 3 + auth_end
    } else if connect {
        // authority-form (RFC 9112 §3.2.3): no path.
        return Some(Target::EMPTY);
    } else {
        return None;
    };
    let (before_frag, fragment) = match buf[rest..end].iter().position(|&b| b == b'#') {
        Some(i) => (rest + i, (rest + i + 1, end)),
        None => (end, (end, end)),
    };
    let (path, query) = match buf[rest..before_frag].iter().position(|&b| b == b'?') {
        Some(i) => ((rest, rest + i), (rest + i + 1, before_frag)),
        None => ((rest, before_frag), (before_frag, before_frag)),
    };
    Some(Target {
        path: PathPart::Bytes(path.0, path.1),
        query,
        fragment,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The version, already shaped `HTTP/d.d`: 1.x only unless
/// `--permit-unconventional-http-version` (gunicorn: `(1, 0) <= v < (2, 0)`).
fn parse_version(v: &[u8], cfg: &HttpConfig) -> Result<(u8, u8), HttpError> {
    let version = (v[5] - b'0', v[7] - b'0');
    if !cfg.permit_unconventional_http_version && version.0 != 1 {
        return Err(HttpError::InvalidHTTPVersion(latin1_string(v)));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(Some(n))`: a line of n bytes (CRLF and skipped empty line included); `Ok(None)`:
    /// more bytes needed; `Err(kind)`.
    fn scan(input: &[u8], cfg: &HttpConfig, limit: usize) -> Result<Option<usize>, String> {
        let kind = |e: HttpError| format!("{e:?}").split('(').next().unwrap_or("").to_string();
        let whole = LineScan::new(0)
            .advance(input, cfg, limit)
            .map(|r| r.map(|(_, n)| n))
            .map_err(kind);
        // Byte by byte, the same bytes must give the same answer at the same point.
        let mut s = LineScan::new(0);
        let mut bytewise = Ok(None);
        for end in 1..=input.len() {
            bytewise = s
                .advance(&input[..end], cfg, limit)
                .map(|r| r.map(|(_, n)| n))
                .map_err(kind);
            if !matches!(bytewise, Ok(None)) {
                break;
            }
        }
        assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(input));
        whole
    }

    #[test]
    fn refused_as_soon_as_certain() {
        let d = HttpConfig::default();
        // (bytes with no CRLF yet, None = may still become valid, Some(kind) = refused now)
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"GET", None),
            (b"GET / HTTP", None),
            (b"GET / HTTP/1.1", None),
            (b"GET / HTTP/1.1\r", None),
            (b"ABCDEFGHIJKLMNOPQRST", None),
            (b"get", None),
            (b"\r", None),
            (b"\r\n", None),
            // A TLS ClientHello, binary input: not a token before any SP.
            (b"\x16\x03\x01\x02\x00", Some("InvalidRequestMethod")),
            (b"\xff\xfe", Some("InvalidRequestMethod")),
            (b"\x00", Some("InvalidRequestMethod")),
            (b"G(", Some("InvalidRequestMethod")),
            (b"GET\t", Some("InvalidRequestMethod")),
            (b"ABCDEFGHIJKLMNOPQRSTU", Some("InvalidRequestMethod")),
            (b"get ", Some("InvalidRequestMethod")),
            (b" ", Some("InvalidRequestMethod")),
            // Bare LF anywhere (RFC 9112 §2.2; gunicorn 27 refuses it at once).
            (b"\n", Some("InvalidRequestLine")),
            (b"GET\n", Some("InvalidRequestLine")),
            (b"GET /\n", Some("InvalidRequestLine")),
            (b"GET / HTTP/1.1\n", Some("InvalidRequestLine")),
            (b"GET / HTT\n", Some("InvalidRequestLine")),
            // An empty line after the one that is skipped, a bare CR.
            (b"\r\n\r\n", Some("InvalidRequestLine")),
            (b"\r\n\n", Some("InvalidRequestLine")),
            (b"\rX", Some("InvalidRequestLine")),
            (b"GET\r", Some("InvalidRequestLine")),
            (b"GET /\r", Some("InvalidRequestLine")),
            (b"GET  ", Some("InvalidRequestLine")),
            (b"GET * ", Some("InvalidRequestLine")),
            (b"GET a/b ", Some("InvalidRequestLine")),
            (b"GET /\x7f", Some("InvalidRequestLine")),
            (b"GET /\xe9", Some("InvalidRequestLine")),
            (b"GET /\x16", Some("InvalidRequestLine")),
            // The version: `HTTP/d.d` exactly, then CRLF.
            (b"GET / XTTP", Some("InvalidHTTPVersion")),
            (b"GET / http", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/a", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/1,", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/1.1x", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/1.1 ", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/1.\r", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/1.1\rX", Some("InvalidHTTPVersion")),
            (b"GET / HTTP/2.0\r", Some("InvalidHTTPVersion")),
        ];
        for (input, want) in cases {
            let got = scan(input, &d, 8190);
            let shown = String::from_utf8_lossy(input);
            match want {
                None => assert_eq!(got, Ok(None), "{shown:?}"),
                Some(k) => assert_eq!(got, Err(k.to_string()), "{shown:?}"),
            }
        }
    }

    #[test]
    fn one_empty_line_is_skipped() {
        let d = HttpConfig::default();
        // RFC 9112 §2.2; gunicorn 27 skips one CRLF, not two, not a bare LF.
        let cases: &[(&[u8], Result<Option<usize>, &str>)] = &[
            (b"GET / HTTP/1.1\r\n", Ok(Some(16))),
            (b"\r\nGET / HTTP/1.1\r\n", Ok(Some(18))),
            (b"\r\nGET / HTTP/1.1\r\nHost", Ok(Some(18))),
            (b"\r\n\r\nGET / HTTP/1.1\r\n", Err("InvalidRequestLine")),
            (b"\nGET / HTTP/1.1\r\n", Err("InvalidRequestLine")),
            (b"\r\rGET / HTTP/1.1\r\n", Err("InvalidRequestLine")),
        ];
        for (input, want) in cases {
            let want = want.map_err(str::to_string);
            assert_eq!(
                scan(input, &d, 8190),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // The limit counts the line after the skipped CRLF (gunicorn removes it first).
        assert_eq!(scan(b"\r\nGET / HTTP/1.1\r\n", &d, 14), Ok(Some(18)));
    }

    #[test]
    fn limit_against_content() {
        let d = HttpConfig::default();
        let mut permissive = HttpConfig::default();
        permissive.permit_unconventional_http_method = true;
        // (input, config, limit, want): the byte that breaks first decides.
        let cases: &[(&[u8], &HttpConfig, usize, Result<Option<usize>, &str>)] = &[
            (b"GET / HTTP/1.1\r\n", &d, 14, Ok(Some(16))),
            (b"GET /a HTTP/1.1\r\n", &d, 14, Err("LimitRequestLine")),
            (b"GET /aaaaaaaaaaaaaaaa", &d, 14, Err("LimitRequestLine")),
            // 14 bytes then CRLF, two parts: the content decides, as in gunicorn (the line
            // is not longer than the limit).
            (b"GET /aaaaaaaaa\r\n", &d, 14, Err("InvalidRequestLine")),
            (b"GET /aaaaaaaaa\n", &d, 14, Err("InvalidRequestLine")),
            (b"GET\x16", &d, 3, Err("LimitRequestLine")),
            (b"GE\x16", &d, 3, Err("InvalidRequestMethod")),
            (b"GETX", &d, 3, Err("LimitRequestLine")),
            (b"ABCDEFGHIJKLMNOPQRSTUV", &d, 10, Err("LimitRequestLine")),
            (
                b"ABCDEFGHIJKLMNOPQRSTUV",
                &d,
                30,
                Err("InvalidRequestMethod"),
            ),
            (b"ABCDEFGHIJKLMNOPQRSTUV", &permissive, 30, Ok(None)),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGH",
                &permissive,
                30,
                Err("LimitRequestLine"),
            ),
            (b"GET / HTTP/1.1", &d, 10, Err("LimitRequestLine")),
        ];
        for (input, cfg, limit, want) in cases {
            let want = want.map_err(str::to_string);
            assert_eq!(
                scan(input, cfg, *limit),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn line_parts() {
        let mut cfg = HttpConfig::default();
        cfg.casefold_http_method = true;
        cfg.permit_unconventional_http_method = true;
        let input = b"\r\nconnect h.example:443 HTTP/1.0\r\n";
        let (line, n) = LineScan::new(0)
            .advance(input, &cfg, 8190)
            .unwrap()
            .unwrap();
        assert_eq!(n, input.len());
        assert_eq!(
            (
                line.method.as_str(),
                line.uri.as_str(),
                line.path.as_str(),
                line.version
            ),
            ("CONNECT", "h.example:443", "", (1, 0))
        );
        // After a PROXY header the line starts further on.
        let input = b"PROXY...\r\nGET /a?b#c HTTP/1.1\r\n";
        let (line, n) = LineScan::new(10)
            .advance(input, &cfg, 8190)
            .unwrap()
            .unwrap();
        assert_eq!(n, input.len());
        assert_eq!(
            (
                line.path.as_str(),
                line.query.as_str(),
                line.fragment.as_str()
            ),
            ("/a", "b", "c")
        );
    }
}
