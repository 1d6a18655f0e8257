//! The uWSGI binary protocol (`--protocol uwsgi`), what nginx's `uwsgi_pass` speaks, read into
//! the same [`Request`] the HTTP parser produces, so that the environ, the body reader, the
//! limits and the access log are shared.
//!
//! A request is one packet (uWSGI's "The uwsgi protocol" document):
//!
//! ```text
//! modifier1: u8 | datasize: u16 little-endian | modifier2: u8 | vars block (datasize bytes)
//! vars block: repeated  key_size: u16 LE | key | val_size: u16 LE | value
//! ```
//!
//! followed by the body, `CONTENT_LENGTH` bytes. Only `modifier1` 0 (a WSGI request) is
//! served, as in gunicorn 27; `modifier2` is ignored. The variables are CGI ones: `HTTP_*`
//! become header fields again (`HTTP_X_FOO` is `X-FOO`), `REQUEST_METHOD`, `PATH_INFO`,
//! `QUERY_STRING`, `REQUEST_URI`, `CONTENT_TYPE`, `CONTENT_LENGTH`, `HTTPS` and
//! `wsgi.url_scheme` make the request, the rest (`REMOTE_ADDR`, `SERVER_NAME`,
//! `DOCUMENT_ROOT`...) is not passed on, as in gunicorn 27. The rules, and where they are
//! stricter than gunicorn 27's: `docs/uwsgi.md`.

use std::sync::Arc;

use crate::config::HttpConfig;
use crate::conn::{ConnInfo, Peer};
use crate::error::{repr, HttpError};
use crate::headers::Headers;
use crate::line::check_method;
use crate::parser::{parse_content_length, BodyKind, Request};
use crate::proxy::{self, ProxyInfo, ProxyStep};
use crate::syntax::{is_token, latin1_string, scan_value, upper};

/// The packet header: modifier1, datasize (2 bytes), modifier2.
pub const HEADER_LEN: usize = 4;
/// gunicorn 27's `MAX_UWSGI_VARS`: more variables in one packet is an invalid header.
pub const MAX_VARS: usize = 1000;
/// `modifier1` of a WSGI request, the only one served.
const MODIFIER_WSGI: u8 = 0;

/// The four bytes before the variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    pub modifier1: u8,
    /// The size of the vars block, in bytes.
    pub datasize: u16,
    pub modifier2: u8,
}

impl PacketHeader {
    pub fn parse(b: [u8; HEADER_LEN]) -> PacketHeader {
        PacketHeader {
            modifier1: b[0],
            datasize: u16::from_le_bytes([b[1], b[2]]),
            modifier2: b[3],
        }
    }
}

/// One variable of a packet: its key and value, as sent.
pub type Var<'a> = (&'a [u8], &'a [u8]);

/// Splits a vars block into `(key, value)` pairs, checking only the framing: every size
/// must fit in the block, and at most [`MAX_VARS`] pairs (gunicorn 27's messages).
pub fn split_vars(block: &[u8]) -> Result<Vec<Var<'_>>, HttpError> {
    let bad = |what: &str| HttpError::InvalidUwsgiHeader(what.to_string());
    let mut vars = Vec::with_capacity(24);
    let mut rest = block;
    while !rest.is_empty() {
        if vars.len() >= MAX_VARS {
            return Err(bad("too many variables"));
        }
        let (key, after) = sized(rest).ok_or_else(|| {
            bad(if rest.len() < 2 {
                "truncated key size"
            } else {
                "truncated key"
            })
        })?;
        let (value, after) = sized(after).ok_or_else(|| {
            bad(if after.len() < 2 {
                "truncated value size"
            } else {
                "truncated value"
            })
        })?;
        vars.push((key, value));
        rest = after;
    }
    Ok(vars)
}

/// A 2-byte little-endian size and that many bytes, and what follows; None if cut short.
fn sized(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = usize::from(u16::from_le_bytes([*b.first()?, *b.get(1)?]));
    let item = b.get(2..2 + n)?;
    Some((item, &b[2 + n..]))
}

/// Where the parser is on its connection.
#[derive(Debug)]
enum Stage {
    /// Looking for an optional PROXY header (`--proxy-protocol`, first packet only).
    Proxy,
    /// Waiting for a whole packet that starts at `start`.
    Packet { start: usize },
    /// A request was refused: the connection is done.
    Failed(HttpError),
}

/// One per connection, with [`crate::RequestParser`]'s contract: given the unconsumed bytes,
/// "need more", "a request that used n bytes" (its body follows), or an error after which the
/// connection must close.
#[derive(Debug)]
pub struct UwsgiParser {
    cfg: Arc<HttpConfig>,
    conn: ConnInfo,
    proxy: Option<ProxyInfo>,
    stage: Stage,
}

impl UwsgiParser {
    pub fn new(cfg: Arc<HttpConfig>, conn: ConnInfo) -> Self {
        let stage = if cfg.proxy_protocol == crate::ProxyMode::Off {
            Stage::Packet { start: 0 }
        } else {
            Stage::Proxy
        };
        UwsgiParser {
            cfg,
            conn,
            proxy: None,
            stage,
        }
    }

    /// `buf` holds the unconsumed bytes, starting at the next packet (or PROXY header); between
    /// calls that returned `Ok(None)` it may only grow. After an error every call returns it.
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

    /// The PROXY header's addresses, if the connection started with one.
    pub fn proxy_info(&self) -> Option<&ProxyInfo> {
        self.proxy.as_ref()
    }

    fn advance(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        // gunicorn 27 checks the socket's peer before it reads a packet, for every request;
        // a unix-socket peer is always allowed.
        if !self.cfg.uwsgi_allow_ips.allows(&self.conn.peer) {
            let host = match &self.conn.peer {
                Peer::Tcp(a) => a.ip().to_string(),
                Peer::Unix => String::new(),
            };
            return Err(HttpError::ForbiddenUwsgiRequest(host));
        }
        loop {
            match &self.stage {
                Stage::Failed(e) => return Err(e.clone()),
                Stage::Proxy => {
                    let step = proxy::detect(
                        buf,
                        self.cfg.proxy_protocol,
                        &self.conn.peer,
                        &self.cfg.proxy_allow_ips,
                    )?;
                    self.stage = match step {
                        ProxyStep::NeedMore => return Ok(None),
                        ProxyStep::Absent => Stage::Packet { start: 0 },
                        ProxyStep::Parsed(info, n) => {
                            self.proxy = Some(info);
                            Stage::Packet { start: n }
                        }
                    };
                }
                &Stage::Packet { start } => {
                    let Some((req, end)) = parse_packet(&self.cfg, buf, start)? else {
                        return Ok(None);
                    };
                    self.stage = Stage::Packet { start: 0 };
                    return Ok(Some((req, end)));
                }
            }
        }
    }
}

/// The packet at `buf[start..]`: `Ok(None)` until all of it arrived, then the request and the
/// end of the packet. A `modifier1` other than 0 is refused from the first byte.
pub fn parse_packet(
    cfg: &HttpConfig,
    buf: &[u8],
    start: usize,
) -> Result<Option<(Request, usize)>, HttpError> {
    let Some(&modifier1) = buf.get(start) else {
        return Ok(None);
    };
    if modifier1 != MODIFIER_WSGI {
        return Err(HttpError::UnsupportedUwsgiModifier(modifier1));
    }
    let Some(head) = buf.get(start..start + HEADER_LEN) else {
        return Ok(None);
    };
    let header = PacketHeader::parse([head[0], head[1], head[2], head[3]]);
    let end = start + HEADER_LEN + usize::from(header.datasize);
    let Some(block) = buf.get(start + HEADER_LEN..end) else {
        return Ok(None);
    };
    let req = request_from_vars(cfg, &split_vars(block)?)?;
    Ok(Some((req, end)))
}

/// The variables that make the request (last one wins, as in gunicorn 27's dict).
#[derive(Debug, Default)]
struct Cgi<'a> {
    method: Option<&'a [u8]>,
    path: Option<&'a [u8]>,
    query: Option<&'a [u8]>,
    request_uri: Option<&'a [u8]>,
    https: Option<&'a [u8]>,
    url_scheme: Option<&'a [u8]>,
}

/// The header fields a request carries once (RFC 9112 §3.2, RFC 9110 §8.6; gunicorn refuses
/// a second Host, Content-Type or Content-Length). nginx sends Content-Type and -Length twice
/// (`CONTENT_TYPE` from `uwsgi_params` and `HTTP_CONTENT_TYPE` from the client's headers):
/// the same value again is one field, a different one is refused.
const SINGLE: [&str; 3] = ["HOST", "CONTENT-TYPE", "CONTENT-LENGTH"];

/// Builds the request from the variables, with the HTTP parser's rules where they apply: the
/// method rules, `limit_request_line` on the equivalent request line, `limit_request_fields`
/// and `limit_request_field_size` on the header variables, no control bytes in any value.
fn request_from_vars(cfg: &HttpConfig, vars: &[Var<'_>]) -> Result<Request, HttpError> {
    let mut cgi = Cgi::default();
    let mut headers = Headers::with_capacity(vars.iter().map(|(k, v)| k.len() + v.len()).sum(), 16);
    let mut fields = 0usize;
    for &(key, value) in vars {
        check_var(key, value)?;
        let name = match key {
            b"REQUEST_METHOD" => {
                cgi.method = Some(value);
                continue;
            }
            b"PATH_INFO" => {
                cgi.path = Some(value);
                continue;
            }
            b"QUERY_STRING" => {
                cgi.query = Some(value);
                continue;
            }
            b"REQUEST_URI" => {
                cgi.request_uri = Some(value);
                continue;
            }
            b"HTTPS" => {
                cgi.https = Some(value);
                continue;
            }
            b"wsgi.url_scheme" => {
                cgi.url_scheme = Some(value);
                continue;
            }
            b"CONTENT_TYPE" => "CONTENT-TYPE".to_string(),
            b"CONTENT_LENGTH" => "CONTENT-LENGTH".to_string(),
            _ => match key.strip_prefix(b"HTTP_") {
                Some(h) => header_name(h)?,
                // Other CGI variables are not passed on (gunicorn 27).
                None => continue,
            },
        };
        fields += 1;
        if fields > cfg.limits.fields {
            return Err(HttpError::LimitRequestHeaders(
                "limit request headers fields".into(),
            ));
        }
        // The size of the field line it stands for: `NAME: value` and its CRLF.
        if name.len() + 2 + value.len() + 2 > cfg.limits.field_size {
            return Err(HttpError::LimitRequestHeaders(
                "limit request headers fields size".into(),
            ));
        }
        let value = latin1_string(value);
        if SINGLE.contains(&name.as_str()) {
            match headers.get(&name) {
                Some(prev) if prev == value => continue,
                Some(_) => return Err(HttpError::InvalidHeader(name)),
                None => {}
            }
        }
        headers.push(&name, &value);
    }
    finish(cfg, &cgi, headers)
}

/// The rules every variable follows: a name of visible ASCII (CGI names; nginx's
/// `uwsgi_param` names), a value without control bytes (the rule for HTTP field values:
/// HTAB and bytes above 0x7F are allowed), so no CR/LF/NUL reaches the app or a log line.
fn check_var(key: &[u8], value: &[u8]) -> Result<(), HttpError> {
    if key.is_empty() || !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(HttpError::InvalidUwsgiHeader(format!(
            "invalid variable name {}",
            repr(&latin1_string(key))
        )));
    }
    if scan_value(value).is_none() {
        return Err(HttpError::InvalidUwsgiHeader(format!(
            "invalid value for {}",
            latin1_string(key)
        )));
    }
    Ok(())
}

/// `HTTP_X_FOO` → `X-FOO`: `_` back to `-` (CGI, RFC 3875 §4.1.18), upper-cased; the result
/// must be a token (RFC 9110 §5.1), as an HTTP field name must.
fn header_name(h: &[u8]) -> Result<String, HttpError> {
    let name: Vec<u8> = h
        .iter()
        .map(|&b| if b == b'_' { b'-' } else { b })
        .collect();
    if !is_token(&name) {
        return Err(HttpError::InvalidHeaderName(latin1_string(h)));
    }
    Ok(upper(&name))
}

/// The request from the CGI variables and the fields. Defaults as gunicorn 27: `GET`, `/`.
fn finish(cfg: &HttpConfig, cgi: &Cgi<'_>, headers: Headers) -> Result<Request, HttpError> {
    let method = cgi.method.unwrap_or(b"GET");
    check_method(method, cfg)?;
    let method = if cfg.casefold_http_method {
        upper(method)
    } else {
        latin1_string(method)
    };
    // PATH_INFO arrives percent-decoded (nginx's `$document_uri`). `Request::path` is a raw
    // path that the environ decodes once: a `%` is written `%25` so that the environ's
    // PATH_INFO is the variable as sent. gunicorn 27 decodes it a second time, which turns
    // `/a%252e%252e/` (seen by nginx as `/a%2e%2e/`) into `/a../` behind nginx's back.
    let path_info = latin1_string(cgi.path.unwrap_or(b"/"));
    let path = path_info.replace('%', "%25");
    let query = latin1_string(cgi.query.unwrap_or(b""));
    // RAW_URI: the request-target as the client sent it (`REQUEST_URI`), else rebuilt from
    // PATH_INFO and QUERY_STRING as gunicorn 27 always does.
    let uri = match cgi.request_uri {
        Some(u) if !u.is_empty() => latin1_string(u),
        _ if query.is_empty() => path_info,
        _ => format!("{path_info}?{query}"),
    };
    // `limit_request_line` on the line this request stands for: `METHOD SP uri SP HTTP/1.1`.
    let line = method.len() + 1 + uri.len() + 9;
    if cfg.limits.request_line != 0 && line > cfg.limits.request_line {
        return Err(HttpError::LimitRequestLine(line, cfg.limits.request_line));
    }
    let scheme = scheme(cfg, cgi)?;
    // The body is CONTENT_LENGTH bytes; nginx sends an empty CONTENT_LENGTH for no body. A
    // value that is not a length is refused as in HTTP (gunicorn 27 reads it as 0 and leaves
    // the body's bytes to be taken for the next packet).
    let body = match headers.get("CONTENT-LENGTH") {
        None | Some("") => BodyKind::Length(0),
        Some(v) => BodyKind::Length(parse_content_length(v.as_bytes())?),
    };
    Ok(Request {
        method,
        uri,
        path,
        query,
        fragment: String::new(),
        // uWSGI has no version: gunicorn 27 treats it as HTTP/1.1 (keep-alive unless
        // `Connection: close`).
        version: (1, 1),
        headers,
        body,
        // The front end answers `Expect: 100-continue` itself (gunicorn 27 never does here).
        expect_continue: false,
        scheme,
        must_close: false,
    })
}

/// `wsgi.url_scheme`: `https` when `HTTPS` is `on`, `1` or `true` (any case), else a
/// `wsgi.url_scheme` variable (`http` or `https`, any case; anything else is refused where
/// gunicorn 27 passes it on), else `https` only with TLS on our listener.
fn scheme(cfg: &HttpConfig, cgi: &Cgi<'_>) -> Result<&'static str, HttpError> {
    let https = cgi.https.is_some_and(|v| {
        ["on", "1", "true"]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t.as_bytes()))
    });
    if https {
        return Ok("https");
    }
    match cgi.url_scheme {
        Some(v) if v.eq_ignore_ascii_case(b"https") => Ok("https"),
        Some(v) if v.eq_ignore_ascii_case(b"http") => Ok("http"),
        Some(v) => Err(HttpError::InvalidUwsgiHeader(format!(
            "invalid wsgi.url_scheme {}",
            repr(&latin1_string(v))
        ))),
        None => Ok(if cfg.is_ssl { "https" } else { "http" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Local;
    use crate::{build_environ, AllowList, Limits, ProxyMode};

    /// A packet with these variables and modifiers.
    fn packet_mod(m1: u8, m2: u8, vars: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut block = Vec::new();
        for (k, v) in vars {
            block.extend_from_slice(&(k.len() as u16).to_le_bytes());
            block.extend_from_slice(k);
            block.extend_from_slice(&(v.len() as u16).to_le_bytes());
            block.extend_from_slice(v);
        }
        let mut out = vec![m1];
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.push(m2);
        out.extend_from_slice(&block);
        out
    }

    fn packet(vars: &[(&[u8], &[u8])]) -> Vec<u8> {
        packet_mod(0, 0, vars)
    }

    /// A raw vars block after a header that announces exactly its size.
    fn raw(block: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.push(0);
        out.extend_from_slice(block);
        out
    }

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            peer: Peer::Tcp(peer.parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        }
    }

    fn parse_with(
        cfg: HttpConfig,
        peer: &str,
        input: &[u8],
    ) -> Result<Option<(Request, usize)>, HttpError> {
        UwsgiParser::new(Arc::new(cfg), conn(peer)).parse_head(input)
    }

    /// The outcome as a short string: `METHOD path ?query uri scheme body [headers] used`, or
    /// the error's debug form, or `more`.
    fn outcome(r: Result<Option<(Request, usize)>, HttpError>) -> String {
        match r {
            Ok(Some((req, used))) => {
                let headers: Vec<String> = req
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                format!(
                    "{} {} ?{} {} {} {:?} [{}] {}",
                    req.method,
                    req.path,
                    req.query,
                    req.uri,
                    req.scheme,
                    req.body,
                    headers.join(","),
                    used
                )
            }
            Ok(None) => "more".into(),
            Err(e) => format!("{e:?}"),
        }
    }

    fn check(cfg: HttpConfig, cases: &[(Vec<u8>, &str)]) {
        for (input, want) in cases {
            let got = outcome(parse_with(cfg.clone(), "127.0.0.1:4000", input));
            assert!(
                got.starts_with(want),
                "{input:?}\n got: {got}\nwant: {want}"
            );
        }
    }

    #[test]
    fn packets_table() {
        let nginx_get = packet(&[
            (b"QUERY_STRING", b"x=1"),
            (b"REQUEST_METHOD", b"GET"),
            (b"CONTENT_TYPE", b""),
            (b"CONTENT_LENGTH", b""),
            (b"REQUEST_URI", b"/s?x=1"),
            (b"PATH_INFO", b"/s"),
            (b"DOCUMENT_ROOT", b"/srv"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"REMOTE_ADDR", b"10.0.0.9"),
            (b"HTTP_HOST", b"example.com"),
            (b"HTTP_X_FOO", b"a"),
            (b"HTTP_X_FOO", b"b"),
        ]);
        let nginx_post = packet(&[
            (b"REQUEST_METHOD", b"POST"),
            (b"CONTENT_TYPE", b"text/plain"),
            (b"CONTENT_LENGTH", b"5"),
            (b"PATH_INFO", b"/post"),
            (b"HTTP_CONTENT_LENGTH", b"5"),
            (b"HTTP_CONTENT_TYPE", b"text/plain"),
        ]);
        let mut post_with_body = nginx_post.clone();
        // The packet ends before the body: `used` is the packet's length.
        let post_want = format!(
            "POST /post ? /post http Length(5) [CONTENT-TYPE=text/plain,CONTENT-LENGTH=5] {}",
            post_with_body.len()
        );
        post_with_body.extend_from_slice(b"hello");
        let too_many: Vec<(&[u8], &[u8])> = vec![(b"K", b""); MAX_VARS + 1];
        let enough: Vec<(&[u8], &[u8])> = vec![(b"K", b""); MAX_VARS];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                nginx_get.clone(),
                "GET /s ?x=1 /s?x=1 http Length(0) [CONTENT-TYPE=,CONTENT-LENGTH=,HOST=example.com,X-FOO=a,X-FOO=b]",
            ),
            (
                post_with_body,
                &post_want,
            ),
            // No variables at all: gunicorn 27's defaults.
            (packet(&[]), "GET / ? / http Length(0) [] 4"),
            (
                packet(&[(b"PATH_INFO", b"/a"), (b"QUERY_STRING", b"q")]),
                "GET /a ?q /a?q http",
            ),
            // modifier2 is ignored, as in gunicorn 27.
            (packet_mod(0, 7, &[(b"PATH_INFO", b"/m")]), "GET /m"),
            // Other modifier1 values are other uWSGI services: 501 from the first byte.
            (packet_mod(5, 0, &[]), "UnsupportedUwsgiModifier(5)"),
            (vec![1], "UnsupportedUwsgiModifier(1)"),
            (vec![0xff, b'x'], "UnsupportedUwsgiModifier(255)"),
            // TLS or HTTP sent to a uwsgi port starts with a non-zero byte too.
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "UnsupportedUwsgiModifier(71)"),
            // Incomplete: the header, then the vars block.
            (vec![0], "more"),
            (vec![0, 10, 0], "more"),
            (nginx_get[..nginx_get.len() - 1].to_vec(), "more"),
            // The vars block does not add up (gunicorn 27's messages).
            (raw(b"\x01"), "InvalidUwsgiHeader(\"truncated key size\")"),
            (raw(b"\x05\x00ab"), "InvalidUwsgiHeader(\"truncated key\")"),
            (raw(b"\x01\x00a"), "InvalidUwsgiHeader(\"truncated value size\")"),
            (raw(b"\x01\x00a\x00"), "InvalidUwsgiHeader(\"truncated value size\")"),
            (raw(b"\x01\x00a\x03\x00xy"), "InvalidUwsgiHeader(\"truncated value\")"),
            (packet(&too_many), "InvalidUwsgiHeader(\"too many variables\")"),
            (packet(&enough), "GET / "),
            // Names and values.
            (packet(&[(b"", b"x")]), "InvalidUwsgiHeader(\"invalid variable name ''\")"),
            (packet(&[(b"A B", b"x")]), "InvalidUwsgiHeader(\"invalid variable name 'A B'\")"),
            (packet(&[(b"X\xe9", b"x")]), "InvalidUwsgiHeader(\"invalid variable name"),
            (
                packet(&[(b"HTTP_X", b"a\r\nInjected: 1")]),
                "InvalidUwsgiHeader(\"invalid value for HTTP_X\")",
            ),
            (packet(&[(b"PATH_INFO", b"/a\x00")]), "InvalidUwsgiHeader(\"invalid value for PATH_INFO\")"),
            (packet(&[(b"DOCUMENT_ROOT", b"\x7f")]), "InvalidUwsgiHeader(\"invalid value for DOCUMENT_ROOT\")"),
            (packet(&[(b"HTTP_X", b"a\tb")]), "GET / ? / http Length(0) [X=a\tb]"),
            // Not UTF-8: bytes are latin-1, as everywhere in WSGI.
            (packet(&[(b"HTTP_X", b"caf\xe9")]), "GET / ? / http Length(0) [X=caf\u{e9}]"),
            (packet(&[(b"PATH_INFO", b"/caf\xe9")]), "GET /caf\u{e9} ? /caf\u{e9} "),
            (packet(&[(b"HTTP_", b"x")]), "InvalidHeaderName(\"\")"),
            (packet(&[(b"HTTP_A(B", b"x")]), "InvalidHeaderName(\"A(B\")"),
            (packet(&[(b"HTTP_x_lower", b"1")]), "GET / ? / http Length(0) [X-LOWER=1]"),
            // Repeats: header variables are kept (the environ joins them), single fields must
            // agree, other variables: the last one wins (gunicorn 27).
            (
                packet(&[(b"HTTP_HOST", b"a"), (b"HTTP_HOST", b"a")]),
                "GET / ? / http Length(0) [HOST=a] ",
            ),
            (packet(&[(b"HTTP_HOST", b"a"), (b"HTTP_HOST", b"b")]), "InvalidHeader(\"HOST\")"),
            (
                packet(&[(b"CONTENT_LENGTH", b"5"), (b"HTTP_CONTENT_LENGTH", b"6")]),
                "InvalidHeader(\"CONTENT-LENGTH\")",
            ),
            (
                packet(&[(b"CONTENT_TYPE", b"a/b"), (b"HTTP_CONTENT_TYPE", b"a/c")]),
                "InvalidHeader(\"CONTENT-TYPE\")",
            ),
            (
                packet(&[(b"PATH_INFO", b"/1"), (b"PATH_INFO", b"/2")]),
                "GET /2 ",
            ),
            // The body's length.
            (packet(&[(b"CONTENT_LENGTH", b"abc")]), "InvalidHeader(\"CONTENT-LENGTH\")"),
            (packet(&[(b"CONTENT_LENGTH", b"+5")]), "InvalidHeader(\"CONTENT-LENGTH\")"),
            (packet(&[(b"CONTENT_LENGTH", b" 5")]), "InvalidHeader(\"CONTENT-LENGTH\")"),
            (packet(&[(b"CONTENT_LENGTH", b"-1")]), "InvalidHeader(\"CONTENT-LENGTH\")"),
            (
                packet(&[(b"CONTENT_LENGTH", b"99999999999999999999")]),
                "InvalidHeader(\"CONTENT-LENGTH\")",
            ),
            (packet(&[(b"CONTENT_LENGTH", b"007")]), "GET / ? / http Length(7)"),
            // HTTP_TRANSFER_ENCODING is only a header here: the body is CONTENT_LENGTH bytes.
            (
                packet(&[(b"HTTP_TRANSFER_ENCODING", b"chunked"), (b"CONTENT_LENGTH", b"3")]),
                "GET / ? / http Length(3)",
            ),
            // The scheme.
            (packet(&[(b"HTTPS", b"on")]), "GET / ? / https"),
            (packet(&[(b"HTTPS", b"TRUE")]), "GET / ? / https"),
            (packet(&[(b"HTTPS", b"1")]), "GET / ? / https"),
            (packet(&[(b"HTTPS", b"off")]), "GET / ? / http "),
            (packet(&[(b"HTTPS", b"")]), "GET / ? / http "),
            (packet(&[(b"wsgi.url_scheme", b"https")]), "GET / ? / https"),
            (packet(&[(b"HTTPS", b"off"), (b"wsgi.url_scheme", b"HTTP")]), "GET / ? / http "),
            (
                packet(&[(b"wsgi.url_scheme", b"ftp")]),
                "InvalidUwsgiHeader(\"invalid wsgi.url_scheme 'ftp'\")",
            ),
            // The method follows the HTTP rules.
            (packet(&[(b"REQUEST_METHOD", b"get")]), "InvalidRequestMethod(\"get\")"),
            (packet(&[(b"REQUEST_METHOD", b"")]), "InvalidRequestMethod(\"\")"),
            (packet(&[(b"REQUEST_METHOD", b"G(T")]), "InvalidRequestMethod(\"G(T\")"),
            (packet(&[(b"REQUEST_METHOD", b"PROPFIND")]), "PROPFIND / "),
            // RAW_URI: REQUEST_URI as sent; PATH_INFO keeps its `%` (see `finish`).
            (
                packet(&[(b"PATH_INFO", b"/a%2Fb"), (b"REQUEST_URI", b"/a%252Fb?q")]),
                "GET /a%252Fb ? /a%252Fb?q ",
            ),
            (
                packet(&[(b"PATH_INFO", b"/a b"), (b"QUERY_STRING", b"q=1")]),
                "GET /a b ?q=1 /a b?q=1 ",
            ),
        ];
        check(HttpConfig::default(), &cases);
    }

    #[test]
    fn limits_as_for_http() {
        let mut cfg = HttpConfig::default();
        cfg.limits = Limits::from_settings(30, 2, 20);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            // Two header variables fit; a third does not. Other variables do not count.
            (
                packet(&[(b"HTTP_A", b"1"), (b"SERVER_NAME", b"x"), (b"HTTP_B", b"2")]),
                "GET / ? / http Length(0) [A=1,B=2]",
            ),
            (
                packet(&[(b"HTTP_A", b"1"), (b"HTTP_B", b"2"), (b"HTTP_C", b"3")]),
                "LimitRequestHeaders(\"limit request headers fields\")",
            ),
            // `X: ` + 15 bytes + CRLF = 20 fits; one byte more does not.
            (
                packet(&[(b"HTTP_X", b"123456789012345")]),
                "GET / ? / http Length(0) [X=123456789012345]",
            ),
            (
                packet(&[(b"HTTP_X", b"1234567890123456")]),
                "LimitRequestHeaders(\"limit request headers fields size\")",
            ),
            // `GET ` + uri + ` HTTP/1.1`: 30 bytes fit (a 17-byte uri).
            (
                packet(&[(b"REQUEST_URI", b"/2345678901234567")]),
                "GET / ? /2345678901234567 ",
            ),
            (
                packet(&[(b"REQUEST_URI", b"/23456789012345678")]),
                "LimitRequestLine(31, 30)",
            ),
        ];
        check(cfg, &cases);
    }

    #[test]
    fn method_settings_apply() {
        let mut cfg = HttpConfig::default();
        cfg.permit_unconventional_http_method = true;
        check(
            cfg.clone(),
            &[(packet(&[(b"REQUEST_METHOD", b"get")]), "get / ")],
        );
        cfg.casefold_http_method = true;
        check(cfg, &[(packet(&[(b"REQUEST_METHOD", b"get")]), "GET / ")]);
    }

    #[test]
    fn allowed_peers() {
        let p = packet(&[(b"PATH_INFO", b"/")]);
        let mut star = HttpConfig::default();
        star.uwsgi_allow_ips = AllowList::any();
        let mut nets = HttpConfig::default();
        nets.uwsgi_allow_ips = AllowList::parse(&["10.0.0.0/8".to_string()]).unwrap();
        // (config, peer, allowed)
        let cases: &[(&HttpConfig, &str, bool)] = &[
            (&HttpConfig::default(), "127.0.0.1:1", true),
            (&HttpConfig::default(), "[::1]:1", true),
            (&HttpConfig::default(), "[::ffff:127.0.0.1]:1", true),
            (&HttpConfig::default(), "127.0.0.2:1", false),
            (&HttpConfig::default(), "10.1.2.3:1", false),
            (&star, "10.1.2.3:1", true),
            (&nets, "10.1.2.3:1", true),
            (&nets, "127.0.0.1:1", false),
        ];
        for (cfg, peer, allowed) in cases {
            let got = parse_with((*cfg).clone(), peer, &p);
            match (got, allowed) {
                (Ok(Some(_)), true) => {}
                (Err(HttpError::ForbiddenUwsgiRequest(ip)), false) => {
                    assert_eq!(
                        ip,
                        peer.parse::<std::net::SocketAddr>()
                            .unwrap()
                            .ip()
                            .to_string()
                    )
                }
                (got, _) => panic!("{peer}: {got:?}"),
            }
        }
        // A unix-socket peer has no address: always allowed (gunicorn 27).
        let unix = ConnInfo {
            peer: Peer::Unix,
            local: Local::Unix("/run/app.sock".into()),
            tls: None,
        };
        let mut none = HttpConfig::default();
        none.uwsgi_allow_ips = AllowList::parse(&[]).unwrap();
        let mut p2 = UwsgiParser::new(Arc::new(none), unix);
        assert!(matches!(p2.parse_head(&p), Ok(Some(_))));
        // Refused from the first byte, before a whole packet came.
        let r = parse_with(HttpConfig::default(), "10.0.0.1:1", &p[..1]);
        assert!(
            matches!(r, Err(HttpError::ForbiddenUwsgiRequest(_))),
            "{r:?}"
        );
    }

    #[test]
    fn pipelined_packets_and_sticky_errors() {
        let mut input = packet(&[(b"PATH_INFO", b"/1"), (b"CONTENT_LENGTH", b"2")]);
        input.extend_from_slice(b"hi");
        let second = packet(&[(b"PATH_INFO", b"/2")]);
        input.extend_from_slice(&second);
        let mut p = UwsgiParser::new(Arc::new(HttpConfig::default()), conn("127.0.0.1:1"));
        let (r1, used) = p.parse_head(&input).unwrap().unwrap();
        assert_eq!((r1.path.as_str(), r1.body), ("/1", BodyKind::Length(2)));
        // The body is the caller's; the next call starts at the next packet.
        let rest = &input[used + 2..];
        let (r2, used2) = p.parse_head(rest).unwrap().unwrap();
        assert_eq!((r2.path.as_str(), used2), ("/2", second.len()));
        // After an error every call gives it again.
        assert!(p.parse_head(&[9]).is_err());
        assert!(matches!(
            p.parse_head(&second),
            Err(HttpError::UnsupportedUwsgiModifier(9))
        ));
    }

    #[test]
    fn proxy_header_then_packet() {
        let mut cfg = HttpConfig::default();
        cfg.proxy_protocol = ProxyMode::V1;
        let mut input = b"PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n".to_vec();
        let n = input.len();
        input.extend_from_slice(&packet(&[(b"PATH_INFO", b"/p")]));
        let mut p = UwsgiParser::new(Arc::new(cfg), conn("127.0.0.1:1"));
        assert!(matches!(p.parse_head(&input[..10]), Ok(None)));
        assert!(matches!(p.parse_head(&input[..n + 2]), Ok(None)));
        let (req, used) = p.parse_head(&input).unwrap().unwrap();
        assert_eq!((req.path.as_str(), used), ("/p", input.len()));
        assert_eq!(
            p.proxy_info().unwrap().client.unwrap().to_string(),
            "192.0.2.1:5000"
        );
    }

    #[test]
    fn environ_of_a_packet() {
        let cfg = HttpConfig::default();
        let c = conn("127.0.0.1:4000");
        let input = packet(&[
            (b"REQUEST_METHOD", b"POST"),
            (b"PATH_INFO", b"/a%2Fb c"),
            (b"QUERY_STRING", b"x=1"),
            (b"REQUEST_URI", b"/a%252Fb%20c?x=1"),
            (b"CONTENT_LENGTH", b"5"),
            (b"CONTENT_TYPE", b"text/plain"),
            (b"HTTP_HOST", b"ex.com:8080"),
            (b"HTTP_X_FOO", b"a"),
            (b"HTTP_X_FOO", b"b"),
            (b"REMOTE_ADDR", b"9.9.9.9"),
            (b"SERVER_NAME", b"zzz"),
            (b"SCRIPT_NAME", b"/s"),
            (b"HTTPS", b"on"),
        ]);
        let (req, _) = parse_with(cfg.clone(), "127.0.0.1:4000", &input)
            .unwrap()
            .unwrap();
        let env = build_environ(&req, &c, None, &cfg).unwrap();
        let want: &[(&str, Option<&str>)] = &[
            ("REQUEST_METHOD", Some("POST")),
            // Decoded once: the variable as nginx sent it (gunicorn 27 shows `/a/b c`).
            ("PATH_INFO", Some("/a%2Fb c")),
            ("QUERY_STRING", Some("x=1")),
            ("RAW_URI", Some("/a%252Fb%20c?x=1")),
            ("SERVER_PROTOCOL", Some("HTTP/1.1")),
            ("CONTENT_LENGTH", Some("5")),
            ("CONTENT_TYPE", Some("text/plain")),
            ("HTTP_HOST", Some("ex.com:8080")),
            ("HTTP_X_FOO", Some("a,b")),
            ("wsgi.url_scheme", Some("https")),
            // The socket's ends, not the variables (gunicorn 27).
            ("REMOTE_ADDR", Some("127.0.0.1")),
            ("REMOTE_PORT", Some("4000")),
            ("SERVER_NAME", Some("127.0.0.1")),
            ("SERVER_PORT", Some("8000")),
            ("SCRIPT_NAME", Some("")),
            ("DOCUMENT_ROOT", None),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k), *v, "{k}");
        }
    }

    #[test]
    fn split_vars_reads_sizes_little_endian() {
        let big = vec![b'v'; 300];
        let p = packet(&[(b"K", &big)]);
        assert_eq!(
            PacketHeader::parse([p[0], p[1], p[2], p[3]]),
            PacketHeader {
                modifier1: 0,
                datasize: 305,
                modifier2: 0
            }
        );
        let vars = split_vars(&p[4..]).unwrap();
        assert_eq!(vars, vec![(&b"K"[..], &big[..])]);
    }
}
