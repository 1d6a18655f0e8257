//! An HTTP/2 request head as the [`Request`] every worker serves, sans-IO.
//!
//! The pseudo-headers and fields are written out as an HTTP/1.1 head and read back by the same
//! [`RequestParser`] as an HTTP/1 request, so that every rule of the HTTP/1 path (method and
//! field syntax, `limit_request_line`, `limit_request_fields`, `limit_request_field_size`,
//! duplicate `Host`, `--header-map`, trusted secure-scheme and forwarder headers) holds on
//! HTTP/2 too, as gunicorn 27 puts HTTP/2 fields "through the same policy". Then what is
//! HTTP/2's own is set: version 2.0, `:authority` as `Host` (RFC 9113 §8.3.1: it takes
//! precedence), `:scheme` from a trusted peer only, no `Expect: 100-continue` answer and no
//! connection close from a request field.

use std::sync::Arc;

use gunicorn_http::{BodyKind, ConnInfo, Headers, HttpConfig, HttpError, Request, RequestParser};

/// What a stream's request head carries, as the h2 crate hands it over.
pub struct H2Head<'a> {
    pub method: &'a str,
    /// `:scheme`, if sent.
    pub scheme: Option<&'a str>,
    /// `:authority`, if sent.
    pub authority: Option<&'a str>,
    /// `:path` (None for CONNECT).
    pub path: Option<&'a str>,
    /// The regular fields, lower-case names, values as bytes.
    pub fields: Vec<(&'a str, &'a [u8])>,
}

impl<'a> H2Head<'a> {
    /// The head of an `http::request::Parts` from the h2 crate.
    pub fn of(parts: &'a http::request::Parts) -> H2Head<'a> {
        H2Head {
            method: parts.method.as_str(),
            scheme: parts.uri.scheme_str(),
            authority: parts.uri.authority().map(|a| a.as_str()),
            path: parts.uri.path_and_query().map(|p| p.as_str()),
            fields: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect(),
        }
    }
}

/// The request, or the error an HTTP/1 request with the same head would get (its status is
/// the stream's response). `http` must have the PROXY protocol off: an HTTP/2 stream never
/// starts with a PROXY header.
pub fn to_request(
    head: &H2Head<'_>,
    conn: &ConnInfo,
    http: &Arc<HttpConfig>,
) -> Result<Request, HttpError> {
    let bytes = http1_head(head);
    let mut parser = RequestParser::new(Arc::clone(http), conn.clone());
    let (mut req, _) = parser
        .parse_head(&bytes)?
        .ok_or_else(|| HttpError::InvalidRequestLine("incomplete HTTP/2 request head".into()))?;
    req.version = (2, 0);
    // HTTP/2 has no interim answer written as HTTP/1 bytes, and a stream never closes the
    // connection (gunicorn 27: `_expected_100_continue` and `must_close` stay false).
    req.expect_continue = false;
    req.must_close = false;
    // The body is the stream's DATA frames up to END_STREAM, whatever Content-Length says (the
    // h2 crate resets a stream whose DATA disagree with it, RFC 9113 §8.1.1).
    if req.header("CONTENT-LENGTH").is_none() {
        req.body = BodyKind::Length(0);
    }
    if let Some(authority) = head.authority.filter(|a| !a.is_empty()) {
        let mut headers = Headers::with_capacity(0, req.headers.len() + 1);
        for (name, value) in req.headers.iter().filter(|(n, _)| *n != "HOST") {
            headers.push(name, value);
        }
        headers.push("HOST", authority);
        req.headers = headers;
    }
    // A client's `:scheme` counts only from a peer allowed to speak for the connection, as an
    // X-Forwarded-Proto does on HTTP/1 (gunicorn 27).
    if http.forwarded_allow_ips.allows(&conn.peer) {
        match head.scheme {
            Some(s) if s.eq_ignore_ascii_case("https") => req.scheme = "https",
            Some(s) if s.eq_ignore_ascii_case("http") => req.scheme = "http",
            _ => {}
        }
    }
    Ok(req)
}

/// `METHOD target HTTP/1.1` and the fields, CRLF-separated. Cookie fields split by HPACK are
/// joined with `; ` (RFC 9113 §8.2.3). The h2 crate has already refused what HTTP/2 forbids
/// (connection-specific fields, upper-case names, CR/LF/NUL in values): the text is an
/// HTTP/1 head with the same fields, nothing smuggled into it.
fn http1_head(head: &H2Head<'_>) -> Vec<u8> {
    let target = match (head.path, head.authority) {
        (Some(p), _) => p,
        (None, Some(a)) => a,
        (None, None) => "/",
    };
    let size = 32
        + target.len()
        + head
            .fields
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &head.fields {
        if *name == "cookie" {
            cookies.push(value);
            continue;
        }
        field(&mut out, name.as_bytes(), value);
    }
    if !cookies.is_empty() {
        field(&mut out, b"cookie", &cookies.join(&b"; "[..]));
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use gunicorn_http::{Local, Peer};

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            peer: Peer::Tcp(peer.parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        }
    }

    fn http() -> Arc<HttpConfig> {
        Arc::new(HttpConfig::default())
    }

    fn head<'a>(method: &'a str, path: &'a str, fields: &[(&'a str, &'a str)]) -> H2Head<'a> {
        H2Head {
            method,
            scheme: Some("https"),
            authority: Some("example.com"),
            path: Some(path),
            fields: fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect(),
        }
    }

    #[test]
    fn pseudo_headers_become_the_request() {
        let h = head("POST", "/a/b?x=1", &[("content-length", "3"), ("x-a", "1")]);
        let req = to_request(&h, &conn("127.0.0.1:5000"), &http()).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/a/b");
        assert_eq!(req.query, "x=1");
        assert_eq!(req.version, (2, 0));
        assert_eq!(req.body, BodyKind::Length(3));
        assert_eq!(req.header("HOST"), Some("example.com"));
        assert_eq!(req.header("X-A"), Some("1"));
        assert!(!req.should_close());
        assert!(!req.expect_continue);
    }

    #[test]
    fn authority_takes_precedence_over_host() {
        let h = head("GET", "/", &[("host", "other.example")]);
        let req = to_request(&h, &conn("127.0.0.1:5000"), &http()).unwrap();
        assert_eq!(
            req.headers.get_all("HOST").collect::<Vec<_>>(),
            ["example.com"]
        );
        let mut h = head("GET", "/", &[("host", "only.example")]);
        h.authority = None;
        let req = to_request(&h, &conn("127.0.0.1:5000"), &http()).unwrap();
        assert_eq!(req.header("HOST"), Some("only.example"));
    }

    #[test]
    fn the_http1_rules_hold() {
        // (method, path, fields, status)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16);
        let cases: &[Case<'_>] = &[
            // A duplicate Host is refused before :authority replaces it.
            ("GET", "/", &[("host", "a"), ("host", "b")], 400),
            // Method syntax.
            ("G(T", "/", &[], 400),
            // limit_request_line (4094 by default): 414, as on HTTP/1.
            (
                "GET",
                &*Box::leak(format!("/{}", "a".repeat(5000)).into_boxed_str()),
                &[],
                414,
            ),
            // limit_request_field_size (8190): 431, as on HTTP/1.
            (
                "GET",
                "/",
                &[("x-big", &*Box::leak("b".repeat(9000).into_boxed_str()))],
                431,
            ),
            // An invalid Content-Length.
            ("POST", "/", &[("content-length", "1x")], 400),
        ];
        for (method, path, fields, status) in cases {
            let h = head(method, path, fields);
            let err = to_request(&h, &conn("127.0.0.1:5000"), &http()).unwrap_err();
            assert_eq!(err.status(), *status, "{method} {}: {err}", fields.len());
        }
        let many: Vec<(String, String)> =
            (0..101).map(|i| (format!("x-{i}"), "v".into())).collect();
        let fields: Vec<(&str, &str)> =
            many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let h = head("GET", "/", &fields);
        assert!(to_request(&h, &conn("127.0.0.1:5000"), &http()).is_err());
    }

    #[test]
    fn cookies_are_joined() {
        let h = head(
            "GET",
            "/",
            &[("cookie", "a=1"), ("x", "y"), ("cookie", "b=2")],
        );
        let req = to_request(&h, &conn("127.0.0.1:5000"), &http()).unwrap();
        assert_eq!(req.header("COOKIE"), Some("a=1; b=2"));
    }

    #[test]
    fn scheme_only_from_a_trusted_peer() {
        let mut h = head("GET", "/", &[]);
        h.scheme = Some("https");
        let trusted = to_request(&h, &conn("127.0.0.1:5000"), &http()).unwrap();
        assert_eq!(trusted.scheme, "https");
        let untrusted = to_request(&h, &conn("192.0.2.7:5000"), &http()).unwrap();
        assert_eq!(untrusted.scheme, "http");
    }
}
