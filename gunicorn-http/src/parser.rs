//! The request head parser: optional PROXY header, request line, header block, framing.
//!
//! Sans-IO: [`RequestParser::parse_head`] is given the unconsumed bytes and says "need more",
//! "here is a request that used n bytes", or a typed error. It keeps its progress between
//! calls, so a head arriving byte by byte is read once, and every limit is enforced on partial
//! input. The rules are gunicorn's (reference §5) with RFC 9112 citations; the differences are
//! listed in docs/http.md.

use crate::config::{HeaderMapPolicy, HttpConfig, ProxyMode};
use crate::conn::ConnInfo;
use crate::error::HttpError;
use crate::fields::{FieldRules, FieldScanner};
use crate::headers::{HeaderBuf, Headers};
use crate::line::{Line, LineScan};
use crate::proxy::{self, ProxyInfo, ProxyStep};
use crate::syntax::latin1_string;
use std::sync::Arc;

/// How the request body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `Content-Length` bytes; no Content-Length and no Transfer-Encoding is `Length(0)`.
    Length(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// As received, or upper-cased with `--casefold-http-method`.
    pub method: String,
    /// The raw request-target (`RAW_URI`).
    pub uri: String,
    /// The raw (not percent-decoded) path; for absolute-form only its path part.
    pub path: String,
    pub query: String,
    pub fragment: String,
    pub version: (u8, u8),
    /// UPPER-CASE names, latin-1 decoded values stripped of SP/HTAB, after `--header-map`.
    pub headers: Headers,
    pub body: BodyKind,
    /// HTTP/1.1 (or later) with `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `http`/`https`: from TLS, overridden by a trusted `--secure-scheme-header`.
    pub scheme: &'static str,
    /// The connection must close after this request whatever the headers say. The parser
    /// sets it where gunicorn 27 closes: after a CONNECT (what follows is tunnel data, never
    /// another request) and after a body with a transfer coding before `chunked` (`gzip,
    /// chunked`: gunicorn's `force_close`). Callers may set it too; [`Request::should_close`]
    /// honours it.
    pub must_close: bool,
}

impl Request {
    /// gunicorn's `Message.should_close`: `must_close`, else the *first* `Connection` header
    /// (`close` / `keep-alive`), else close for HTTP/1.0 and older (RFC 9112 §9.3).
    pub fn should_close(&self) -> bool {
        if self.must_close {
            return true;
        }
        if let Some(v) = self.header("CONNECTION") {
            let v = v.trim_matches([' ', '\t']);
            if v.eq_ignore_ascii_case("close") {
                return true;
            }
            if v.eq_ignore_ascii_case("keep-alive") {
                return false;
            }
        }
        self.version <= (1, 0)
    }

    /// The first value of a header, by its upper-case name.
    pub fn header(&self, upper_name: &str) -> Option<&str> {
        self.headers.get(upper_name)
    }
}

/// What the header callback accumulates.
#[derive(Debug, Default)]
struct HeadAcc {
    headers: HeaderBuf,
    host: bool,
    content_type: bool,
    /// A Content-Length or Transfer-Encoding field was kept: the framing is read from the
    /// fields once the block is complete (gunicorn's `set_body_reader`, after every field).
    framing: bool,
    expect_continue: bool,
    scheme: Option<&'static str>,
}

/// Where the parser is in the current head. Kept inline (not boxed): there is one per
/// connection, and boxing would cost an allocation per request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Looking for an optional PROXY header (first request of a connection only).
    Proxy,
    /// Reading the request line.
    Line(LineScan),
    /// A request was refused: the connection is done.
    Failed(HttpError),
    /// Reading the header block.
    Fields {
        line: Line,
        scanner: FieldScanner,
        acc: HeadAcc,
    },
}

/// One per connection.
#[derive(Debug)]
pub struct RequestParser {
    cfg: Arc<HttpConfig>,
    conn: ConnInfo,
    proxy: Option<ProxyInfo>,
    /// The peer may set secure-scheme and forwarder headers (`--forwarded-allow-ips`).
    trusted: bool,
    rules: FieldRules,
    stage: Stage,
    /// A finished request's strings and field buffers ([`RequestParser::recycle`]), which
    /// the next request's text is written into.
    spare_line: Option<Line>,
    spare_headers: Option<Headers>,
}

/// A recycled buffer larger than this (a request with a long target or many fields) is
/// freed rather than kept for the connection's next requests.
const SPARE_MAX: usize = 4096;

impl RequestParser {
    pub fn new(cfg: Arc<HttpConfig>, conn: ConnInfo) -> Self {
        let trusted = cfg.forwarded_allow_ips.allows(&conn.peer);
        let rules = FieldRules {
            limits: cfg.limits,
            permit_fold: cfg.permit_obsolete_folding,
            strip_spaces: cfg.strip_header_spaces,
        };
        let stage = if cfg.proxy_protocol == ProxyMode::Off {
            Stage::Line(LineScan::new(0))
        } else {
            Stage::Proxy
        };
        RequestParser {
            cfg,
            conn,
            proxy: None,
            trusted,
            rules,
            stage,
            spare_line: None,
            spare_headers: None,
        }
    }

    /// `buf` holds the unconsumed bytes starting at the next request (or PROXY header). Between
    /// calls that returned `Ok(None)` it must start with the same bytes (it may only grow).
    /// `Ok(Some((req, n)))`: the head used `n` bytes; the next call starts a new request.
    /// After an error the connection must be closed; the parser stays failed (every later call
    /// returns the same error), so no later bytes can be taken for a request.
    pub fn parse_head(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        if let Stage::Failed(e) = &self.stage {
            return Err(e.clone());
        }
        let result = self.advance(buf);
        if let Err(e) = &result {
            self.stage = Stage::Failed(e.clone());
        }
        result
    }

    fn advance(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        loop {
            match &mut self.stage {
                Stage::Proxy => {
                    let peer = &self.conn.peer;
                    match proxy::detect(
                        buf,
                        self.cfg.proxy_protocol,
                        peer,
                        &self.cfg.proxy_allow_ips,
                    )? {
                        ProxyStep::NeedMore => return Ok(None),
                        ProxyStep::Absent => self.stage = Stage::Line(LineScan::new(0)),
                        ProxyStep::Parsed(info, n) => {
                            self.proxy = Some(info);
                            self.stage = Stage::Line(LineScan::new(n));
                        }
                    }
                }
                Stage::Line(scan) => {
                    let limit = match self.cfg.limits.request_line {
                        // 0 = unlimited in gunicorn; we still bound the buffer (docs/http.md).
                        0 => self.cfg.limits.max_header_buffer(),
                        n => n,
                    };
                    let Some((line, next)) =
                        scan.advance_reusing(buf, &self.cfg, limit, &mut self.spare_line)?
                    else {
                        return Ok(None);
                    };
                    let headers = match self.spare_headers.take() {
                        Some(spare) => HeaderBuf::reusing(spare),
                        None => {
                            HeaderBuf::with_capacity(buf.len().saturating_sub(next).min(4096), 16)
                        }
                    };
                    self.stage = Stage::Fields {
                        line,
                        scanner: FieldScanner::new(next),
                        acc: HeadAcc {
                            headers,
                            ..HeadAcc::default()
                        },
                    };
                }
                Stage::Failed(e) => return Err(e.clone()),
                Stage::Fields { line, scanner, acc } => {
                    let ctx = FieldCtx {
                        cfg: &self.cfg,
                        trusted: self.trusted,
                        version: line.version,
                    };
                    let end = scanner
                        .advance(buf, &self.rules, |n, v, ascii| ctx.add(acc, n, v, ascii))?;
                    let Some(end) = end else { return Ok(None) };
                    // Later requests never look for a PROXY header (gunicorn: request #1 only).
                    if let Stage::Fields { line, acc, .. } =
                        std::mem::replace(&mut self.stage, Stage::Line(LineScan::new(0)))
                    {
                        let req = self.finish(line, acc)?;
                        return Ok(Some((req, end)));
                    }
                }
            }
        }
    }

    /// Takes the strings and field buffers of `req`, a request of this connection that is
    /// done with (left empty), for the next request's text to be written into: a kept-alive
    /// connection's requests then allocate nothing for their line and fields. Only small
    /// buffers are kept (at most [`SPARE_MAX`] bytes each).
    pub fn recycle(&mut self, req: &mut Request) {
        let small = |s: &String| s.capacity() <= SPARE_MAX;
        let line = Line {
            method: std::mem::take(&mut req.method),
            uri: std::mem::take(&mut req.uri),
            path: std::mem::take(&mut req.path),
            query: std::mem::take(&mut req.query),
            fragment: std::mem::take(&mut req.fragment),
            version: req.version,
        };
        if [
            &line.method,
            &line.uri,
            &line.path,
            &line.query,
            &line.fragment,
        ]
        .into_iter()
        .all(small)
        {
            self.spare_line = Some(line);
        }
        let headers = std::mem::take(&mut req.headers);
        if headers.text_capacity() <= SPARE_MAX {
            self.spare_headers = Some(headers);
        }
    }

    /// The PROXY header's addresses, if the connection started with one.
    pub fn proxy_info(&self) -> Option<&ProxyInfo> {
        self.proxy.as_ref()
    }

    /// The settings it parses by.
    pub fn config(&self) -> &Arc<HttpConfig> {
        &self.cfg
    }

    /// The connection it reads.
    pub fn conn(&self) -> &ConnInfo {
        &self.conn
    }

    /// Decides the framing (RFC 9112 §6) and builds the request.
    fn finish(&self, line: Line, acc: HeadAcc) -> Result<Request, HttpError> {
        let headers = acc.headers.finish();
        let (body, coded) = if acc.framing {
            framing(&headers, line.version)?
        } else {
            (BodyKind::Length(0), false)
        };
        let scheme = acc
            .scheme
            .unwrap_or(if self.cfg.is_ssl { "https" } else { "http" });
        // RFC 9110 §9.3.6: after a CONNECT the connection carries tunnel data, never another
        // request; gunicorn 27 closes it once the app has answered (the method as compared
        // after --casefold-http-method).
        let must_close = coded || line.method == "CONNECT";
        Ok(Request {
            method: line.method,
            uri: line.uri,
            path: line.path,
            query: line.query,
            fragment: line.fragment,
            version: line.version,
            headers,
            body,
            expect_continue: acc.expect_continue,
            scheme,
            must_close,
        })
    }
}

/// What the per-field policy needs from the parser.
struct FieldCtx<'a> {
    cfg: &'a HttpConfig,
    trusted: bool,
    version: (u8, u8),
}

impl FieldCtx<'_> {
    /// gunicorn's header policy, applied to each field in arrival order. The name is written
    /// upper-cased straight into the request's header text, then checked there.
    fn add(
        &self,
        acc: &mut HeadAcc,
        name: &[u8],
        value: &[u8],
        ascii: bool,
    ) -> Result<(), HttpError> {
        let (n0, n1, underscore) = acc.headers.push_name(name);
        let uname = acc.headers.bytes(n0, n1);
        let known = Known::of(uname);
        // `_` names collide with `-` names in the environ (HTTP_X_A): only a trusted
        // forwarder may send the listed ones; otherwise --header-map decides.
        if underscore && !(self.trusted && self.cfg.forwarder_allows(uname)) {
            match self.cfg.header_map {
                HeaderMapPolicy::Dangerous => {}
                HeaderMapPolicy::Drop => {
                    acc.headers.truncate(n0);
                    return Ok(());
                }
                HeaderMapPolicy::Refuse => {
                    return Err(HttpError::InvalidHeaderName(latin1_string(uname)))
                }
            }
        }
        match known {
            // RFC 9112 §3.2: exactly one Host; gunicorn also refuses a repeated Content-Type.
            Known::Host => once(&mut acc.host, "HOST")?,
            Known::ContentType => once(&mut acc.content_type, "CONTENT-TYPE")?,
            // Judged together once every field is in (`framing`), in gunicorn's order: a
            // field error later in the block (a second Host, a bad name) wins over them.
            Known::ContentLength | Known::TransferEncoding => acc.framing = true,
            Known::Expect => {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    // RFC 9110 §10.1.1: ignored for HTTP/1.0 clients.
                    if self.version >= (1, 1) {
                        acc.expect_continue = true;
                    }
                } else {
                    return Err(HttpError::ExpectationFailed(latin1_string(value)));
                }
            }
            Known::Other => {}
        }
        if self.trusted {
            for (sname, svalue) in &self.cfg.secure_scheme_headers {
                if acc.headers.bytes(n0, n1) == sname.as_bytes() {
                    // Case-sensitive value compare (gunicorn); a disagreeing later header is an
                    // error rather than "last wins".
                    let s = if latin1_eq(value, svalue) {
                        "https"
                    } else {
                        "http"
                    };
                    match acc.scheme {
                        Some(prev) if prev != s => return Err(HttpError::InvalidSchemeHeaders),
                        _ => acc.scheme = Some(s),
                    }
                }
            }
        }
        acc.headers.push_value(n0, n1, value, ascii);
        Ok(())
    }
}

/// The header names the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Host,
    ContentType,
    ContentLength,
    TransferEncoding,
    Expect,
    Other,
}

impl Known {
    fn of(upper_name: &[u8]) -> Known {
        match upper_name {
            b"HOST" => Known::Host,
            b"CONTENT-TYPE" => Known::ContentType,
            b"CONTENT-LENGTH" => Known::ContentLength,
            b"TRANSFER-ENCODING" => Known::TransferEncoding,
            b"EXPECT" => Known::Expect,
            _ => Known::Other,
        }
    }
}

/// Bytes read as latin-1 equal `s`.
fn latin1_eq(bytes: &[u8], s: &str) -> bool {
    if s.is_ascii() {
        return bytes == s.as_bytes();
    }
    bytes.len() == s.chars().count()
        && bytes
            .iter()
            .zip(s.chars())
            .all(|(&b, c)| char::from(b) == c)
}

fn once(seen: &mut bool, name: &str) -> Result<(), HttpError> {
    if std::mem::replace(seen, true) {
        return Err(HttpError::InvalidHeader(name.to_string()));
    }
    Ok(())
}

/// The body framing from the Content-Length and Transfer-Encoding fields (RFC 9112 §6),
/// checked in gunicorn 27's order (`set_body_reader`) so that a request with several faults
/// gets gunicorn's status: first the fields in arrival order (a repeated Content-Length, then
/// each transfer coding: `chunked` twice or anything after it 400, an unknown coding 501),
/// then the rules on the whole. Returns the body and whether the connection must close.
fn framing(headers: &Headers, version: (u8, u8)) -> Result<(BodyKind, bool), HttpError> {
    let invalid = |name: &str| HttpError::InvalidHeader(name.to_string());
    let mut content_length: Option<&str> = None;
    let mut te = false;
    let mut chunked = false;
    let mut coded = false;
    for (name, value) in headers {
        match name {
            "CONTENT-LENGTH" => {
                // A repeat is refused even when equal (RFC 9112 §6.3 rule 5 allows merging
                // equal values; gunicorn does not).
                if content_length.is_some() {
                    return Err(invalid("CONTENT-LENGTH"));
                }
                content_length = Some(value);
            }
            "TRANSFER-ENCODING" => {
                te = true;
                // RFC 9112 §6.1: a list, possibly across several fields.
                for coding in value.split(',').map(|c| c.trim_matches([' ', '\t'])) {
                    if coding.eq_ignore_ascii_case("chunked") {
                        // RFC 9112 §6.1: chunked once, and last.
                        if chunked {
                            return Err(invalid("TRANSFER-ENCODING"));
                        }
                        chunked = true;
                    } else if coding.eq_ignore_ascii_case("identity") {
                        if chunked {
                            return Err(invalid("TRANSFER-ENCODING"));
                        }
                    } else if ["gzip", "deflate", "compress"]
                        .iter()
                        .any(|c| coding.eq_ignore_ascii_case(c))
                    {
                        if chunked {
                            return Err(invalid("TRANSFER-ENCODING"));
                        }
                        // The body is handed on still coded; gunicorn closes the connection
                        // after such a request (`force_close`).
                        coded = true;
                    } else {
                        // RFC 9112 §6.1: an unknown coding is a 501 (gunicorn: an empty
                        // element too).
                        return Err(HttpError::UnsupportedTransferCoding(coding.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    // RFC 9112 §6.3 rule 4: in a request, a Transfer-Encoding whose final coding is not
    // chunked leaves the length unknown: 400 and close, whatever Content-Length says
    // (`identity` alone included, in any case or repeated). This also refuses any such TE
    // with a Content-Length or in HTTP/1.0.
    if te && !chunked {
        return Err(invalid("TRANSFER-ENCODING"));
    }
    if chunked {
        // RFC 9112 §6.1: chunked in an HTTP/1.0 message means the framing is faulty.
        if version < (1, 1) {
            return Err(invalid("TRANSFER-ENCODING"));
        }
        // RFC 9112 §6.1/§11.2 (CL.TE / TE.CL smuggling): refuse both, never pick one.
        if content_length.is_some() {
            return Err(invalid("CONTENT-LENGTH"));
        }
        return Ok((BodyKind::Chunked, coded));
    }
    let n = content_length.map_or(Ok(0), |v| parse_content_length(v.as_bytes()))?;
    Ok((BodyKind::Length(n), false))
}

/// RFC 9112 §6.3 rule 5 / gunicorn: ASCII digits only (no sign, no list, no spaces inside),
/// at most 2^64-1.
pub(crate) fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    let bad = || HttpError::InvalidHeader("CONTENT-LENGTH".into());
    if v.is_empty() {
        return Err(bad());
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Local, Peer};
    use crate::AllowList;

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            peer: Peer::Tcp(peer.parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        }
    }

    fn parse_with(cfg: HttpConfig, input: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        RequestParser::new(Arc::new(cfg), conn("127.0.0.1:40000")).parse_head(input)
    }

    fn kind(e: &HttpError) -> String {
        let d = format!("{e:?}");
        d.split(['(', ' ']).next().unwrap_or("").to_string()
    }

    #[test]
    fn recycled_buffers_give_the_same_requests_as_fresh_ones() {
        // Each head, parsed by one parser that got every request before it back, must equal
        // the head parsed by a new parser: nothing of an earlier request may show through.
        let heads: &[&[u8]] = &[
            b"GET /a/long/path/name?query=string#frag HTTP/1.1\r\nHost: x\r\nX-Long-Header: 0123456789\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /p?q HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            b"GET http://example.com/abs?x=1#f HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET /caf%E9 HTTP/1.1\r\nHost: x\r\nX-L: \xe9t\xe9\r\n\r\n",
            b"get /lower HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ];
        for casefold in [false, true] {
            let mut cfg = HttpConfig::default();
            cfg.casefold_http_method = casefold;
            cfg.permit_unconventional_http_method = true;
            let cfg = Arc::new(cfg);
            let mut reused = RequestParser::new(Arc::clone(&cfg), conn("127.0.0.1:40000"));
            for _ in 0..2 {
                for head in heads {
                    let fresh = RequestParser::new(Arc::clone(&cfg), conn("127.0.0.1:40000"))
                        .parse_head(head);
                    let (mut req, used) = reused.parse_head(head).unwrap().unwrap();
                    assert_eq!(Ok(Some((req.clone(), used))), fresh, "{head:?}");
                    reused.recycle(&mut req);
                    assert!(req.method.is_empty() && req.headers.is_empty());
                }
            }
        }
    }

    #[test]
    fn request_line_table() {
        // (request line, Ok((method, path, query, fragment, version)) or Err(kind))
        type Want = Result<
            (
                &'static str,
                &'static str,
                &'static str,
                &'static str,
                (u8, u8),
            ),
            &'static str,
        >;
        let cases: &[(&str, Want)] = &[
            ("GET / HTTP/1.1", Ok(("GET", "/", "", "", (1, 1)))),
            (
                "GET /a?b=c#d HTTP/1.0",
                Ok(("GET", "/a", "b=c", "d", (1, 0))),
            ),
            ("GET /a#d?x HTTP/1.1", Ok(("GET", "/a", "", "d?x", (1, 1)))),
            (
                "GET //double HTTP/1.1",
                Ok(("GET", "//double", "", "", (1, 1))),
            ),
            (
                "GET http://h.example/p?q HTTP/1.1",
                Ok(("GET", "/p", "q", "", (1, 1))),
            ),
            (
                "GET http://h.example HTTP/1.1",
                Ok(("GET", "", "", "", (1, 1))),
            ),
            (
                "GET http://[::1]:80/x HTTP/1.1",
                Ok(("GET", "/x", "", "", (1, 1))),
            ),
            ("OPTIONS * HTTP/1.1", Ok(("OPTIONS", "*", "", "", (1, 1)))),
            (
                "CONNECT h.example:443 HTTP/1.1",
                Ok(("CONNECT", "", "", "", (1, 1))),
            ),
            // gunicorn 27: the target is printable ASCII (RFC 3986 §2).
            ("GET /\u{e9} HTTP/1.1", Err("InvalidRequestLine")),
            ("GET /%E9 HTTP/1.1", Ok(("GET", "/%E9", "", "", (1, 1)))),
            ("GET / HTTP/1.9", Ok(("GET", "/", "", "", (1, 9)))),
            (
                "ABCDEFGHIJKLMNOPQRST / HTTP/1.1",
                Ok(("ABCDEFGHIJKLMNOPQRST", "/", "", "", (1, 1))),
            ),
            ("M-S / HTTP/1.1", Ok(("M-S", "/", "", "", (1, 1)))),
            ("get / HTTP/1.1", Err("InvalidRequestMethod")),
            ("GE / HTTP/1.1", Err("InvalidRequestMethod")),
            (
                "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1",
                Err("InvalidRequestMethod"),
            ),
            ("G#T / HTTP/1.1", Err("InvalidRequestMethod")),
            ("G(T / HTTP/1.1", Err("InvalidRequestMethod")),
            // The first byte that is not a tchar before the first SP decides (the line is
            // refused before its CRLF; gunicorn, which splits first, says InvalidRequestLine).
            ("GET\t/ HTTP/1.1", Err("InvalidRequestMethod")),
            ("GET /", Err("InvalidRequestLine")),
            ("", Err("InvalidRequestLine")),
            (" GET / HTTP/1.1", Err("InvalidRequestMethod")),
            ("GET  / HTTP/1.1", Err("InvalidRequestLine")),
            ("GET * HTTP/1.1", Err("InvalidRequestLine")),
            ("GET h.example:443 HTTP/1.1", Err("InvalidRequestLine")),
            ("GET a/b HTTP/1.1", Err("InvalidRequestLine")),
            ("GET 1http://x/ HTTP/1.1", Err("InvalidRequestLine")),
            ("GET http://[::1/x HTTP/1.1", Err("InvalidRequestLine")),
            ("GET /a\x01 HTTP/1.1", Err("InvalidRequestLine")),
            ("GET / HTTP/1.1 ", Err("InvalidHTTPVersion")),
            ("GET / HTTP/1.1 x", Err("InvalidHTTPVersion")),
            ("GET / http/1.1", Err("InvalidHTTPVersion")),
            ("GET / HTTP/2.0", Err("InvalidHTTPVersion")),
            ("GET / HTTP/0.9", Err("InvalidHTTPVersion")),
            ("GET / HTTP/111", Err("InvalidHTTPVersion")),
            ("GET / HTTP/1.10", Err("InvalidHTTPVersion")),
            ("GET / HTTP/1", Err("InvalidHTTPVersion")),
        ];
        for (line, want) in cases {
            let input = format!("{line}\r\n\r\n");
            let bytes: Vec<u8> = input.chars().map(|c| c as u32 as u8).collect();
            let got = parse_with(HttpConfig::default(), &bytes);
            match (got, want) {
                (Ok(Some((r, n))), Ok((m, p, q, f, v))) => {
                    assert_eq!(n, bytes.len());
                    assert_eq!(
                        (
                            r.method.as_str(),
                            r.path.as_str(),
                            r.query.as_str(),
                            r.fragment.as_str(),
                            r.version
                        ),
                        (*m, *p, *q, *f, *v),
                        "{line}"
                    );
                }
                (Err(e), Err(k)) => assert_eq!(kind(&e), *k, "{line:?}"),
                (got, want) => panic!("{line:?}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn permissive_settings() {
        let mut cfg = HttpConfig::default();
        cfg.permit_unconventional_http_method = true;
        cfg.permit_unconventional_http_version = true;
        let (r, _) = parse_with(cfg.clone(), b"get / HTTP/2.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.method.as_str(), r.version), ("get", (2, 0)));
        assert!(parse_with(cfg.clone(), b"G / HTTP/1.1\r\n\r\n")
            .unwrap()
            .is_some());
        assert!(parse_with(cfg.clone(), b"G(T / HTTP/1.1\r\n\r\n").is_err());
        cfg.casefold_http_method = true;
        let (r, _) = parse_with(cfg, b"options * HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("OPTIONS", "*"));
    }

    #[test]
    fn framing_table() {
        // (headers, version, Ok(body) or Err(kind))
        let cases: &[(&str, &str, Result<BodyKind, &str>)] = &[
            ("", "1.1", Ok(BodyKind::Length(0))),
            ("Content-Length: 5\r\n", "1.1", Ok(BodyKind::Length(5))),
            ("Content-Length: 005\r\n", "1.1", Ok(BodyKind::Length(5))),
            (
                "Content-Length: 18446744073709551615\r\n",
                "1.1",
                Ok(BodyKind::Length(u64::MAX)),
            ),
            (
                "Content-Length: 18446744073709551616\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            ("Content-Length: 5, 5\r\n", "1.1", Err("InvalidHeader")),
            ("Content-Length: +5\r\n", "1.1", Err("InvalidHeader")),
            ("Content-Length: -0\r\n", "1.1", Err("InvalidHeader")),
            ("Content-Length: 0x5\r\n", "1.1", Err("InvalidHeader")),
            ("Content-Length: \r\n", "1.1", Err("InvalidHeader")),
            (
                "Transfer-Encoding: chunked\r\n",
                "1.1",
                Ok(BodyKind::Chunked),
            ),
            (
                "Transfer-Encoding: CHUNKED\r\n",
                "1.1",
                Ok(BodyKind::Chunked),
            ),
            (
                "Transfer-Encoding: gzip, chunked\r\n",
                "1.1",
                Ok(BodyKind::Chunked),
            ),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                "1.1",
                Ok(BodyKind::Chunked),
            ),
            (
                "Transfer-Encoding: identity, chunked\r\n",
                "1.1",
                Ok(BodyKind::Chunked),
            ),
            // RFC 9112 §6.3: a request's final coding must be chunked (gunicorn 27: 400).
            (
                "Transfer-Encoding: identity\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: IdEnTiTy\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: identity, identity\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: identity\r\nTransfer-Encoding: identity\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: identity\r\nContent-Length: 3\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: gzip, deflate\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: compress\r\n",
                "1.0",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: deflate, chunked\r\n",
                "1.1",
                Ok(BodyKind::Chunked),
            ),
            (
                "Transfer-Encoding: chunked, gzip\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: chunked, identity\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            ("Transfer-Encoding: gzip\r\n", "1.1", Err("InvalidHeader")),
            (
                "Transfer-Encoding: xchunked\r\n",
                "1.1",
                Err("UnsupportedTransferCoding"),
            ),
            (
                "Transfer-Encoding: chunked, \r\n",
                "1.1",
                Err("UnsupportedTransferCoding"),
            ),
            (
                "Transfer-Encoding: \r\n",
                "1.1",
                Err("UnsupportedTransferCoding"),
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            (
                "Transfer-Encoding: chunked\r\n",
                "1.0",
                Err("InvalidHeader"),
            ),
            ("Host: a\r\nHost: b\r\n", "1.1", Err("InvalidHeader")),
            (
                "Content-Type: a\r\nContent-Type: b\r\n",
                "1.1",
                Err("InvalidHeader"),
            ),
            ("Expect: 100-continue\r\n", "1.1", Ok(BodyKind::Length(0))),
            ("Expect: 100-Continue\r\n", "1.0", Ok(BodyKind::Length(0))),
            ("Expect: 200-ok\r\n", "1.1", Err("ExpectationFailed")),
            ("Expect: 200-ok\r\n", "1.0", Err("ExpectationFailed")),
        ];
        for (headers, v, want) in cases {
            let input = format!("POST / HTTP/{v}\r\n{headers}\r\n");
            match (parse_with(HttpConfig::default(), input.as_bytes()), want) {
                (Ok(Some((r, _))), Ok(body)) => assert_eq!(r.body, *body, "{headers:?}"),
                (Err(e), Err(k)) => assert_eq!(kind(&e), *k, "{headers:?}"),
                (got, want) => panic!("{headers:?}: {got:?} vs {want:?}"),
            }
        }
        let (r, _) = parse_with(
            HttpConfig::default(),
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(r.expect_continue);
        let (r, _) = parse_with(
            HttpConfig::default(),
            b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(!r.expect_continue);
    }

    #[test]
    fn several_faults_get_gunicorns_status() {
        // gunicorn 27 checks every field line first (names, values, a second Host or
        // Content-Type, Expect), then the framing in set_body_reader: the Content-Length and
        // Transfer-Encoding fields in arrival order, then the rules on the whole.
        // (headers, version, error kind, status)
        let cases: &[(&str, &str, &str, u16)] = &[
            (
                "Transfer-Encoding: foo\r\nHost: a\r\nHost: b\r\n",
                "1.1",
                "InvalidHeader",
                400,
            ),
            (
                "Transfer-Encoding: foo\r\nExpect: x\r\n",
                "1.1",
                "ExpectationFailed",
                417,
            ),
            (
                "Transfer-Encoding: foo\r\nBad Name: x\r\n",
                "1.1",
                "InvalidHeaderName",
                400,
            ),
            (
                "Transfer-Encoding: foo\r\nX: a\x01\r\n",
                "1.1",
                "InvalidHeader",
                400,
            ),
            (
                "Transfer-Encoding: foo\r\nContent-Type: a\r\nContent-Type: b\r\n",
                "1.1",
                "InvalidHeader",
                400,
            ),
            // The Content-Length value is only read after the codings.
            (
                "Content-Length: abc\r\nTransfer-Encoding: foo\r\n",
                "1.1",
                "UnsupportedTransferCoding",
                501,
            ),
            (
                "Content-Length: 1\r\nContent-Length: 1\r\nTransfer-Encoding: foo\r\n",
                "1.1",
                "InvalidHeader",
                400,
            ),
            (
                "Transfer-Encoding: foo\r\nContent-Length: 1\r\nContent-Length: 1\r\n",
                "1.1",
                "UnsupportedTransferCoding",
                501,
            ),
            (
                "Transfer-Encoding: chunked, chunked\r\nTransfer-Encoding: foo\r\n",
                "1.1",
                "InvalidHeader",
                400,
            ),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: foo\r\n",
                "1.1",
                "UnsupportedTransferCoding",
                501,
            ),
            (
                "Transfer-Encoding: foo\r\n",
                "1.0",
                "UnsupportedTransferCoding",
                501,
            ),
            (
                "Transfer-Encoding: identity\r\n",
                "1.0",
                "InvalidHeader",
                400,
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: x\r\n",
                "1.1",
                "InvalidHeader",
                400,
            ),
        ];
        for (headers, v, want, status) in cases {
            let input = format!("POST / HTTP/{v}\r\n{headers}\r\n");
            let bytes: Vec<u8> = input.chars().map(|c| c as u32 as u8).collect();
            match parse_with(HttpConfig::default(), &bytes) {
                Err(e) => assert_eq!(
                    (kind(&e).as_str(), e.status()),
                    (*want, *status),
                    "{headers:?}"
                ),
                other => panic!("{headers:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn must_close_table() {
        // (request head, must_close): where gunicorn 27 closes whatever Connection says.
        let cases: &[(&str, bool)] = &[
            ("GET / HTTP/1.1\r\n\r\n", false),
            // What follows a CONNECT is tunnel data (RFC 9110 §9.3.6).
            ("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", true),
            (
                "CONNECT a.example:443 HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            ("CONNECT /x HTTP/1.1\r\n\r\n", true),
            // A coding before chunked: gunicorn's force_close.
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                true,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n",
                true,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: compress, chunked\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n",
                false,
            ),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false),
        ];
        for (input, want) in cases {
            let (r, _) = parse_with(HttpConfig::default(), input.as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(
                (r.must_close, r.should_close()),
                (*want, *want),
                "{input:?}"
            );
        }
        // With --casefold-http-method the method is compared upper-cased, as gunicorn does;
        // without it a lower-case method is not CONNECT (it needs
        // --permit-unconventional-http-method to pass at all).
        let mut cfg = HttpConfig::default();
        cfg.permit_unconventional_http_method = true;
        cfg.casefold_http_method = true;
        let (r, _) = parse_with(cfg.clone(), b"connect a:1 HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.must_close);
        cfg.casefold_http_method = false;
        assert!(matches!(
            parse_with(cfg, b"connect a:1 HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidRequestLine(_))
        ));
    }

    #[test]
    fn should_close_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("1.1", "", false),
            ("1.0", "", true),
            ("1.1", "Connection: close\r\n", true),
            ("1.1", "Connection: CLOSE\r\n", true),
            ("1.0", "Connection: keep-alive\r\n", false),
            ("1.0", "Connection: Keep-Alive\r\n", false),
            ("1.1", "Connection: upgrade\r\n", false),
            ("1.0", "Connection: upgrade\r\n", true),
            (
                "1.1",
                "Connection: keep-alive\r\nConnection: close\r\n",
                false,
            ),
            ("1.1", "Connection: x\r\nConnection: close\r\n", false),
        ];
        for (v, headers, want) in cases {
            let input = format!("GET / HTTP/{v}\r\n{headers}\r\n");
            let (r, _) = parse_with(HttpConfig::default(), input.as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(r.should_close(), *want, "{v} {headers:?}");
        }
    }

    #[test]
    fn trust_dependent_headers() {
        // (peer, header_map, header line, Ok(Some(kept header)) / Ok(None) dropped / Err)
        let cases: &[(
            &str,
            HeaderMapPolicy,
            &str,
            Result<Option<(&str, &str)>, &str>,
        )] = &[
            (
                "127.0.0.1:1",
                HeaderMapPolicy::Drop,
                "Script_Name: /a",
                Ok(Some(("SCRIPT_NAME", "/a"))),
            ),
            (
                "10.0.0.1:1",
                HeaderMapPolicy::Drop,
                "Script_Name: /a",
                Ok(None),
            ),
            (
                "10.0.0.1:1",
                HeaderMapPolicy::Refuse,
                "Script_Name: /a",
                Err("InvalidHeaderName"),
            ),
            (
                "10.0.0.1:1",
                HeaderMapPolicy::Dangerous,
                "Script_Name: /a",
                Ok(Some(("SCRIPT_NAME", "/a"))),
            ),
            ("127.0.0.1:1", HeaderMapPolicy::Drop, "X_Other: 1", Ok(None)),
            (
                "127.0.0.1:1",
                HeaderMapPolicy::Refuse,
                "X_Other: 1",
                Err("InvalidHeaderName"),
            ),
        ];
        for (peer, map, line, want) in cases {
            let mut cfg = HttpConfig::default();
            cfg.header_map = *map;
            let input = format!("GET / HTTP/1.1\r\n{line}\r\n\r\n");
            let got = RequestParser::new(Arc::new(cfg), conn(peer)).parse_head(input.as_bytes());
            match (got, want) {
                (Ok(Some((r, _))), Ok(kept)) => {
                    let got: Option<(&str, &str)> = r.headers.iter().next();
                    assert_eq!(got, *kept, "{peer} {line}");
                }
                (Err(e), Err(k)) => assert_eq!(kind(&e), *k),
                (got, want) => panic!("{peer} {line}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn scheme_table() {
        // (peer, is_ssl, headers, Ok(scheme) or Err)
        let cases: &[(&str, bool, &str, Result<&str, ()>)] = &[
            ("127.0.0.1:1", false, "", Ok("http")),
            ("127.0.0.1:1", true, "", Ok("https")),
            (
                "127.0.0.1:1",
                false,
                "X-Forwarded-Proto: https\r\n",
                Ok("https"),
            ),
            (
                "127.0.0.1:1",
                false,
                "X-Forwarded-Proto: HTTPS\r\n",
                Ok("http"),
            ),
            (
                "127.0.0.1:1",
                true,
                "X-Forwarded-Proto: http\r\n",
                Ok("http"),
            ),
            (
                "10.0.0.1:1",
                false,
                "X-Forwarded-Proto: https\r\n",
                Ok("http"),
            ),
            (
                "127.0.0.1:1",
                false,
                "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n",
                Ok("https"),
            ),
            (
                "127.0.0.1:1",
                false,
                "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n",
                Err(()),
            ),
            (
                "10.0.0.1:1",
                false,
                "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n",
                Ok("http"),
            ),
        ];
        for (peer, ssl, headers, want) in cases {
            let mut cfg = HttpConfig::default();
            cfg.is_ssl = *ssl;
            let input = format!("GET / HTTP/1.1\r\n{headers}\r\n");
            let got = RequestParser::new(Arc::new(cfg), conn(peer)).parse_head(input.as_bytes());
            match (got, want) {
                (Ok(Some((r, _))), Ok(s)) => assert_eq!(r.scheme, *s, "{peer} {headers:?}"),
                (Err(HttpError::InvalidSchemeHeaders), Err(())) => {}
                (got, want) => panic!("{peer} {headers:?}: {got:?} vs {want:?}"),
            }
        }
        let mut cfg = HttpConfig::default();
        cfg.forwarded_allow_ips = AllowList::any();
        let input = b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n";
        let (r, _) = RequestParser::new(Arc::new(cfg), conn("10.9.9.9:1"))
            .parse_head(input)
            .unwrap()
            .unwrap();
        assert_eq!(r.scheme, "https");
    }

    #[test]
    fn request_line_limit_and_pipelining() {
        let mut cfg = HttpConfig::default();
        cfg.limits = crate::Limits::from_settings(14, 100, 8190);
        // "GET / HTTP/1.1" is exactly 14 bytes.
        assert!(parse_with(cfg.clone(), b"GET / HTTP/1.1\r\n\r\n")
            .unwrap()
            .is_some());
        assert!(matches!(
            parse_with(cfg.clone(), b"GET /a HTTP/1.1\r\n\r\n"),
            Err(HttpError::LimitRequestLine(15, 14))
        ));
        assert!(matches!(
            parse_with(cfg.clone(), b"GET /aaaaaaaaaaaa"),
            Err(HttpError::LimitRequestLine(..))
        ));
        assert_eq!(parse_with(cfg, b"GET / HTTP/1.1\r").unwrap(), None);

        let input = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut p = RequestParser::new(Arc::new(HttpConfig::default()), conn("127.0.0.1:1"));
        let (a, n) = p.parse_head(input).unwrap().unwrap();
        let (b, m) = p.parse_head(&input[n..]).unwrap().unwrap();
        assert_eq!(
            (a.path.as_str(), b.path.as_str(), n + m),
            ("/1", "/2", input.len())
        );
        assert_eq!(b.header("HOST"), Some("x"));
        assert_eq!(b.header("NOPE"), None);
    }

    #[test]
    fn stays_failed_after_an_error() {
        let mut p = RequestParser::new(Arc::new(HttpConfig::default()), conn("127.0.0.1:1"));
        let bad = b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert!(matches!(
            p.parse_head(bad),
            Err(HttpError::InvalidHeaderName(_))
        ));
        assert!(matches!(
            p.parse_head(bad),
            Err(HttpError::InvalidHeaderName(_))
        ));
        assert!(matches!(
            p.parse_head(b"GET / HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidHeaderName(_))
        ));
    }

    #[test]
    fn proxy_only_on_first_request() {
        let mut cfg = HttpConfig::default();
        cfg.proxy_protocol = ProxyMode::Auto;
        let input = b"PROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\nGET / HTTP/1.1\r\n\r\nPROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\n";
        let mut p = RequestParser::new(Arc::new(cfg), conn("127.0.0.1:1"));
        let (_, n) = p.parse_head(input).unwrap().unwrap();
        assert_eq!(
            p.proxy_info().unwrap().client.unwrap().to_string(),
            "1.2.3.4:10"
        );
        // The second PROXY line is just an invalid request line now.
        assert!(matches!(
            p.parse_head(&input[n..]),
            Err(HttpError::InvalidRequestLine(_))
        ));
    }
}
