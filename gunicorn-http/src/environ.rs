//! The CGI part of the WSGI environ (PEP 3333, reference §6) as plain Rust data. The Python
//! bridge adds the objects (`wsgi.input`, `wsgi.errors`, ...) and turns this into a dict.

use crate::cgi_key::CgiKey;
use crate::config::HttpConfig;
use crate::conn::{ConnInfo, Local, Peer};
use crate::error::HttpError;
use crate::parser::Request;
use crate::proxy::ProxyInfo;
use crate::syntax::latin1_string;
use std::borrow::Cow;
use std::net::IpAddr;

/// `SERVER_SOFTWARE`.
pub const SERVER_SOFTWARE: &str = concat!("gunicorn/", env!("CARGO_PKG_VERSION"));

/// Environ keys and their string values, in a stable order. Keys are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environ {
    pub vars: Vec<(Cow<'static, str>, String)>,
}

impl Environ {
    /// The value of a key, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An environ key handed to [`for_each_environ`]: a fixed name, or `HTTP_*` made from a
/// header name (uncommon names only; common ones are [`CgiKey`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKey<'a> {
    Static(CgiKey),
    Header(&'a str),
}

impl EnvKey<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            EnvKey::Static(k) => k.as_str(),
            EnvKey::Header(s) => s,
        }
    }

    /// The key as [`Environ`] stores it (allocates only for `Header`).
    pub fn to_cow(&self) -> Cow<'static, str> {
        match *self {
            EnvKey::Static(k) => Cow::Borrowed(k.as_str()),
            EnvKey::Header(s) => Cow::Owned(s.to_string()),
        }
    }
}

/// Builds every CGI key of reference §6 plus `wsgi.url_scheme`.
/// A path outside `SCRIPT_NAME` is `ConfigurationProblem` (500), as in gunicorn.
pub fn build_environ(
    req: &Request,
    conn: &ConnInfo,
    proxy: Option<&ProxyInfo>,
    cfg: &HttpConfig,
) -> Result<Environ, HttpError> {
    let mut env = Environ {
        vars: Vec::with_capacity(15 + req.headers.len()),
    };
    for_each_environ(req, conn, proxy, cfg, |k, v| {
        env.vars.push((k.to_cow(), v.to_string()))
    })?;
    Ok(env)
}

/// The same keys and values as [`build_environ`], in the same order, handed to `f` without
/// building owned strings: values borrow from the request or from stack buffers (only repeated
/// headers, uncommon header names and percent-escaped paths allocate). For a bridge that copies
/// the values into its own strings anyway. Nothing is handed to `f` when it fails.
///
/// Long because it is one pass in the environ's order (gunicorn's `create` in wsgi.py): the
/// checks that can fail run first and every key follows in sequence; split up, the borrowed
/// values (script name, host, path pieces on the stack) would have to travel between parts.
pub fn for_each_environ<F>(
    req: &Request,
    conn: &ConnInfo,
    proxy: Option<&ProxyInfo>,
    cfg: &HttpConfig,
    mut f: F,
) -> Result<(), HttpError>
where
    F: FnMut(EnvKey<'_>, &str),
{
    let mut script_name: &str = &cfg.script_name;
    let mut host: Option<&str> = None;
    for (name, value) in &req.headers {
        match name {
            // Only present when a trusted forwarder sent it (or --header-map dangerous).
            "SCRIPT_NAME" => script_name = value,
            "HOST" => host = Some(value),
            _ => {}
        }
    }
    // PATH_INFO: SCRIPT_NAME removed (raw compare, gunicorn), then percent-decoded to bytes and
    // read as latin-1 (PEP 3333). Checked first, so a failure hands nothing out.
    let path = if script_name.is_empty() {
        &req.path[..]
    } else {
        req.path.strip_prefix(script_name).ok_or_else(|| {
            HttpError::ConfigurationProblem(format!(
                "Request path {:?} does not start with SCRIPT_NAME {:?}",
                req.path, script_name
            ))
        })?
    };

    f(EnvKey::Static(CgiKey::ServerSoftware), SERVER_SOFTWARE);
    f(EnvKey::Static(CgiKey::RequestMethod), &req.method);
    f(EnvKey::Static(CgiKey::RawUri), &req.uri);
    f(EnvKey::Static(CgiKey::QueryString), &req.query);
    let mut proto = [b'H', b'T', b'T', b'P', b'/', b'0', b'.', b'0'];
    proto[5] = b'0' + req.version.0 % 10;
    proto[7] = b'0' + req.version.1 % 10;
    f(
        EnvKey::Static(CgiKey::ServerProtocol),
        std::str::from_utf8(&proto).unwrap_or("HTTP/1.1"),
    );
    f(EnvKey::Static(CgiKey::UrlScheme), req.scheme);

    // The fields as a slice (on the stack for up to 32), and cheap signatures (length, first
    // and last byte) so that repeated names are found without comparing every pair of strings.
    let mut stack = [("", ""); 32];
    let heap: Vec<(&str, &str)>;
    let fields: &[(&str, &str)] = if req.headers.len() <= stack.len() {
        for (slot, field) in stack.iter_mut().zip(req.headers.iter()) {
            *slot = field;
        }
        &stack[..req.headers.len()]
    } else {
        heap = req.headers.iter().collect();
        &heap
    };
    let mut sigs = [0u32; 32];
    // `-` and `_` give the same key (HTTP_X_A for X-A and X_A), so they compare equal here:
    // gunicorn joins values by environ key.
    let fold = |b: u8| if b == b'-' { b'_' } else { b };
    let sig_of = |n: &str| match (n.as_bytes().first(), n.as_bytes().last()) {
        (Some(&a), Some(&z)) => {
            (n.len() as u32) << 16 | u32::from(fold(a)) << 8 | u32::from(fold(z))
        }
        _ => 0,
    };
    let small = fields.len() <= sigs.len();
    if small {
        for (s, (n, _)) in sigs.iter_mut().zip(fields) {
            *s = sig_of(n);
        }
    }
    let same_key = |a: &str, b: &str| {
        a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
    };
    // CONTENT-TYPE / CONTENT-LENGTH give CONTENT_TYPE / CONTENT_LENGTH, never an HTTP_ key.
    let cgi = |n: &str| n == "CONTENT-TYPE" || n == "CONTENT-LENGTH";
    let same = |i: usize, j: usize| {
        (!small || sigs[i] == sigs[j]) && same_key(fields[i].0, fields[j].0) && !cgi(fields[j].0)
    };
    let mut key_buf = String::new();
    for (i, &(name, value)) in fields.iter().enumerate() {
        match name {
            // No HTTP_ prefix for these two (CGI, RFC 3875 §4.1.2/§4.1.3); repeats were refused.
            "CONTENT-TYPE" => {
                f(EnvKey::Static(CgiKey::ContentType), value);
                continue;
            }
            "CONTENT-LENGTH" => {
                f(EnvKey::Static(CgiKey::ContentLength), value);
                continue;
            }
            _ => {}
        }
        // Repeated headers are joined with "," (no space), at the first one's place.
        if (0..i).any(|j| same(i, j)) {
            continue;
        }
        let key = match CgiKey::of_header(name) {
            Some(k) => EnvKey::Static(k),
            None => {
                key_buf.clear();
                key_buf.push_str("HTTP_");
                key_buf.extend(name.chars().map(|c| if c == '-' { '_' } else { c }));
                EnvKey::Header(&key_buf)
            }
        };
        if !(i + 1..fields.len()).any(|j| same(i, j)) {
            f(key, value);
        } else {
            let mut joined = value.to_string();
            for j in (i + 1..fields.len()).filter(|&j| same(i, j)) {
                joined.push(',');
                joined.push_str(fields[j].1);
            }
            f(key, &joined);
        }
    }

    // REMOTE_*: the socket peer, or the client a PROXY header named.
    let mut ip_buf = StackStr::new();
    let mut port_buf = StackStr::new();
    match (proxy.and_then(|p| p.client), &conn.peer) {
        (Some(client), _) | (None, &Peer::Tcp(client)) => {
            f(EnvKey::Static(CgiKey::RemoteAddr), ip_buf.ip(client.ip()));
            f(
                EnvKey::Static(CgiKey::RemotePort),
                port_buf.port(client.port()),
            );
        }
        // gunicorn: a unix peer has REMOTE_ADDR "" and no REMOTE_PORT.
        (None, Peer::Unix) => f(EnvKey::Static(CgiKey::RemoteAddr), ""),
    }
    if let Some(p) = proxy {
        f(EnvKey::Static(CgiKey::ProxyProtocol), p.protocol);
        if let Some(dst) = p.proxy {
            f(EnvKey::Static(CgiKey::ProxyAddr), ip_buf.ip(dst.ip()));
            f(EnvKey::Static(CgiKey::ProxyPort), port_buf.port(dst.port()));
        }
    }

    // SERVER_NAME/PORT: the bound address for TCP (not the Host header, gunicorn); for a
    // unix listener the Host header, else the socket path.
    match &conn.local {
        Local::Tcp(addr) => {
            f(EnvKey::Static(CgiKey::ServerName), ip_buf.ip(addr.ip()));
            f(
                EnvKey::Static(CgiKey::ServerPort),
                port_buf.port(addr.port()),
            );
        }
        Local::Unix(path) => match host {
            Some(h) => {
                let (name, port) = split_host(h, req.scheme);
                f(EnvKey::Static(CgiKey::ServerName), name);
                f(EnvKey::Static(CgiKey::ServerPort), port);
            }
            None => {
                f(EnvKey::Static(CgiKey::ServerName), path);
                f(EnvKey::Static(CgiKey::ServerPort), "");
            }
        },
    }
    f(EnvKey::Static(CgiKey::ScriptName), script_name);
    f(EnvKey::Static(CgiKey::PathInfo), &unquote_latin1(path));
    if let Some(tls) = &conn.tls {
        tls_keys(tls, &mut f);
    }
    Ok(())
}

/// The keys of a connection served over TLS, named as Apache's mod_ssl (and uWSGI, granian)
/// name them; gunicorn itself sets none (only `wsgi.url_scheme`). A client certificate shows
/// only once `ca_certs` verified it (`cert_reqs` 1 or 2).
fn tls_keys<F: FnMut(EnvKey<'_>, &str)>(tls: &crate::conn::TlsInfo, f: &mut F) {
    f(EnvKey::Static(CgiKey::Https), "on");
    f(EnvKey::Static(CgiKey::SslProtocol), tls.protocol);
    f(EnvKey::Static(CgiKey::SslCipher), tls.cipher);
    match &tls.client {
        Some(cert) => {
            f(EnvKey::Static(CgiKey::SslClientVerify), "SUCCESS");
            f(EnvKey::Static(CgiKey::SslClientCert), &cert.pem);
            f(EnvKey::Static(CgiKey::SslClientSDn), &cert.subject);
            f(EnvKey::Static(CgiKey::SslClientIDn), &cert.issuer);
        }
        None => f(EnvKey::Static(CgiKey::SslClientVerify), "NONE"),
    }
}

/// A small stack buffer for formatting addresses and ports without allocating.
struct StackStr {
    buf: [u8; 48],
    len: usize,
}

impl StackStr {
    fn new() -> Self {
        StackStr {
            buf: [0; 48],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    fn ip(&mut self, ip: IpAddr) -> &str {
        self.len = 0;
        match ip {
            IpAddr::V4(v4) => {
                for (i, o) in v4.octets().iter().enumerate() {
                    if i > 0 {
                        self.push(b'.');
                    }
                    if *o >= 100 {
                        self.push(b'0' + o / 100);
                    }
                    if *o >= 10 {
                        self.push(b'0' + o / 10 % 10);
                    }
                    self.push(b'0' + o % 10);
                }
            }
            IpAddr::V6(v6) => {
                use std::fmt::Write;
                // The longest IPv6 text is 45 bytes: it always fits.
                let _ = write!(self, "{v6}");
            }
        }
        self.as_str()
    }

    fn port(&mut self, p: u16) -> &str {
        let mut digits = [0u8; 5];
        let mut i = digits.len();
        let mut n = p;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.len = 0;
        for &d in &digits[i..] {
            self.push(d);
        }
        self.as_str()
    }

    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// `host[:port]` or `[v6]:port`; a missing port is 80/443 by scheme.
fn split_host<'a>(h: &'a str, scheme: &str) -> (&'a str, &'a str) {
    let default_port = if scheme == "https" { "443" } else { "80" };
    let (name, port) = if h.starts_with('[') {
        match h.find(']') {
            Some(i) => (&h[..=i], h[i + 1..].strip_prefix(':')),
            None => (h, None),
        }
    } else {
        match h.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        }
    };
    (name, port.unwrap_or(default_port))
}

/// Python's `unquote_to_wsgi_str`: `%XY` becomes the byte XY, invalid escapes stay as they
/// are, and the bytes are read as latin-1. `path` holds latin-1 characters only.
pub(crate) fn unquote_latin1(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    Cow::Owned(latin1_string(&percent_decode(&crate::error::latin1(path))))
}

/// Percent-decoding (RFC 3986 §2.1): `%XY` becomes the byte XY; a `%` not followed by two hex
/// digits stays as it is.
pub fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Local;
    use crate::parser::BodyKind;

    fn req(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            uri: path.into(),
            path: path.into(),
            query: "a=1".into(),
            fragment: String::new(),
            version: (1, 1),
            headers: headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: BodyKind::Length(0),
            expect_continue: false,
            scheme: "http",
            must_close: false,
        }
    }

    fn tcp_conn() -> ConnInfo {
        ConnInfo {
            peer: Peer::Tcp("10.0.0.7:5555".parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        }
    }

    #[test]
    fn number_formatting() {
        let mut b = StackStr::new();
        for p in [0u16, 7, 10, 99, 100, 8000, 65535] {
            assert_eq!(b.port(p), p.to_string());
        }
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.100.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "1111:2222:3333:4444:5555:6666:7777:8888",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(b.ip(ip), ip.to_string());
        }
    }

    #[test]
    fn visitor_matches_builder() {
        let r = req(
            "/p",
            &[
                ("X-A", "1"),
                ("HOST", "h"),
                ("X-A", "2"),
                ("X-ODD-NAME", "o"),
                ("X-A", "3"),
                ("CONTENT-LENGTH", "0"),
            ],
        );
        let env = build_environ(&r, &tcp_conn(), None, &HttpConfig::default()).unwrap();
        let mut seen = Vec::new();
        for_each_environ(&r, &tcp_conn(), None, &HttpConfig::default(), |k, v| {
            seen.push((k.as_str().to_string(), v.to_string()))
        })
        .unwrap();
        let built: Vec<(String, String)> = env
            .vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(seen, built);
        assert_eq!(env.get("HTTP_X_A"), Some("1,2,3"));
        assert_eq!(env.get("HTTP_X_ODD_NAME"), Some("o"));
        // `-` and `_` spellings share a key and are joined (gunicorn joins by key).
        let r = req(
            "/",
            &[
                ("CONTENT-TYPE", "t"),
                ("X-A", "1"),
                ("CONTENT_TYPE", "u"),
                ("X_A", "2"),
            ],
        );
        let env = build_environ(&r, &tcp_conn(), None, &HttpConfig::default()).unwrap();
        assert_eq!(env.get("HTTP_X_A"), Some("1,2"));
        assert_eq!(
            (env.get("CONTENT_TYPE"), env.get("HTTP_CONTENT_TYPE")),
            (Some("t"), Some("u"))
        );
        assert_eq!(env.vars.iter().filter(|(k, _)| k == "HTTP_X_A").count(), 1);
        // Many headers (past the signature table) still join correctly.
        let many: Vec<(String, String)> = (0..100)
            .map(|i| (format!("X-{}", i % 7), i.to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let env =
            build_environ(&req("/", &refs), &tcp_conn(), None, &HttpConfig::default()).unwrap();
        let want: Vec<String> = (0..100)
            .filter(|i| i % 7 == 3)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(env.get("HTTP_X_3"), Some(want.join(",").as_str()));
        // A failure hands nothing out.
        let mut cfg = HttpConfig::default();
        cfg.script_name = "/app".into();
        let mut calls = 0;
        assert!(for_each_environ(&r, &tcp_conn(), None, &cfg, |_, _| calls += 1).is_err());
        assert_eq!(calls, 0);
    }

    #[test]
    fn unquote_table() {
        let cases = [
            ("/a%20b", "/a b"),
            ("/a%2Fb", "/a/b"),
            ("/%e9", "/\u{e9}"),
            ("/%C3%A9", "/\u{c3}\u{a9}"),
            ("/%zz", "/%zz"),
            ("/%4", "/%4"),
            ("/%", "/%"),
            ("/\u{e9}%41", "/\u{e9}A"),
            ("/plain", "/plain"),
        ];
        for (input, want) in cases {
            assert_eq!(unquote_latin1(input), want, "{input}");
        }
    }

    #[test]
    fn basic_keys() {
        let r = req(
            "/x%20y",
            &[
                ("HOST", "example.com:8080"),
                ("CONTENT-TYPE", "text/plain"),
                ("X-A", "1"),
                ("X-A", "2"),
                ("USER-AGENT", "t"),
            ],
        );
        let env = build_environ(&r, &tcp_conn(), None, &HttpConfig::default()).unwrap();
        let want = [
            ("SERVER_SOFTWARE", SERVER_SOFTWARE),
            ("REQUEST_METHOD", "GET"),
            ("RAW_URI", "/x%20y"),
            ("QUERY_STRING", "a=1"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("wsgi.url_scheme", "http"),
            ("HTTP_HOST", "example.com:8080"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_X_A", "1,2"),
            ("HTTP_USER_AGENT", "t"),
            ("REMOTE_ADDR", "10.0.0.7"),
            ("REMOTE_PORT", "5555"),
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PORT", "8000"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/x y"),
        ];
        let got: Vec<(&str, &str)> = env
            .vars
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(env.get("CONTENT_LENGTH"), None);
    }

    #[test]
    fn script_name_rules() {
        let mut cfg = HttpConfig::default();
        cfg.script_name = "/app".into();
        // (path, SCRIPT_NAME header, Ok((SCRIPT_NAME, PATH_INFO)) or Err)
        let cases: &[(&str, Option<&str>, Option<(&str, &str)>)] = &[
            ("/app/x", None, Some(("/app", "/x"))),
            ("/app", None, Some(("/app", ""))),
            ("/other", None, None),
            ("/mnt/x", Some("/mnt"), Some(("/mnt", "/x"))),
            ("/app/x", Some("/mnt"), None),
        ];
        for (path, hdr, want) in cases {
            let headers: Vec<(&str, &str)> =
                hdr.map(|h| vec![("SCRIPT_NAME", h)]).unwrap_or_default();
            let got = build_environ(&req(path, &headers), &tcp_conn(), None, &cfg);
            match (got, want) {
                (Ok(env), Some((s, p))) => {
                    assert_eq!(
                        (
                            env.get("SCRIPT_NAME").unwrap(),
                            env.get("PATH_INFO").unwrap()
                        ),
                        (*s, *p),
                        "{path}"
                    );
                    if hdr.is_some() {
                        assert_eq!(env.get("HTTP_SCRIPT_NAME"), *hdr);
                    }
                }
                (Err(HttpError::ConfigurationProblem(_)), None) => {}
                (got, _) => panic!("{path}: {got:?}"),
            }
        }
    }

    #[test]
    fn unix_and_proxy() {
        let conn = ConnInfo {
            peer: Peer::Unix,
            local: Local::Unix("/tmp/g.sock".into()),
            tls: None,
        };
        let cfg = HttpConfig::default();
        // (Host header, scheme) -> (SERVER_NAME, SERVER_PORT)
        let cases: &[(Option<&str>, &str, (&str, &str))] = &[
            (Some("example.com:81"), "http", ("example.com", "81")),
            (Some("example.com"), "http", ("example.com", "80")),
            (Some("example.com"), "https", ("example.com", "443")),
            (Some("[::1]:82"), "http", ("[::1]", "82")),
            (None, "http", ("/tmp/g.sock", "")),
        ];
        for (host, scheme, (n, p)) in cases {
            let headers: Vec<(&str, &str)> = host.map(|h| vec![("HOST", h)]).unwrap_or_default();
            let mut r = req("/", &headers);
            r.scheme = scheme;
            let env = build_environ(&r, &conn, None, &cfg).unwrap();
            assert_eq!(
                (
                    env.get("SERVER_NAME").unwrap(),
                    env.get("SERVER_PORT").unwrap()
                ),
                (*n, *p)
            );
            assert_eq!(env.get("REMOTE_ADDR"), Some(""));
            assert_eq!(env.get("REMOTE_PORT"), None);
        }
        let info = ProxyInfo {
            protocol: "TCP6",
            client: Some("[2001:db8::5]:4000".parse().unwrap()),
            proxy: Some("[2001:db8::1]:443".parse().unwrap()),
        };
        let env = build_environ(&req("/", &[]), &tcp_conn(), Some(&info), &cfg).unwrap();
        let keys = [
            ("REMOTE_ADDR", "2001:db8::5"),
            ("REMOTE_PORT", "4000"),
            ("PROXY_PROTOCOL", "TCP6"),
            ("PROXY_ADDR", "2001:db8::1"),
            ("PROXY_PORT", "443"),
        ];
        for (k, v) in keys {
            assert_eq!(env.get(k), Some(v), "{k}");
        }
        let local = ProxyInfo {
            protocol: "LOCAL",
            client: None,
            proxy: None,
        };
        let env = build_environ(&req("/", &[]), &tcp_conn(), Some(&local), &cfg).unwrap();
        assert_eq!(
            (
                env.get("REMOTE_ADDR"),
                env.get("PROXY_PROTOCOL"),
                env.get("PROXY_ADDR")
            ),
            (Some("10.0.0.7"), Some("LOCAL"), None)
        );
    }
}
