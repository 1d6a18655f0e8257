//! The CGI part of the WSGI environ (PEP 3333, reference §6) as plain Rust data. The Python
//! bridge adds the objects (`wsgi.input`, `wsgi.errors`, ...) and turns this into a dict.

use crate::config::{ConnInfo, HttpConfig, Local, Peer};
use crate::error::HttpError;
use crate::parser::Request;
use crate::proxy::ProxyInfo;
use crate::syntax::latin1_string;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

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

    fn set(&mut self, key: impl Into<Cow<'static, str>>, value: String) {
        self.vars.push((key.into(), value));
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
        vars: Vec::with_capacity(16 + req.headers.len()),
    };
    env.set("SERVER_SOFTWARE", SERVER_SOFTWARE.to_string());
    env.set("REQUEST_METHOD", req.method.clone());
    env.set("RAW_URI", req.uri.clone());
    env.set("QUERY_STRING", req.query.clone());
    let protocol = match req.version {
        (1, 1) => "HTTP/1.1".to_string(),
        (1, 0) => "HTTP/1.0".to_string(),
        (a, b) => format!("HTTP/{a}.{b}"),
    };
    env.set("SERVER_PROTOCOL", protocol);
    env.set("wsgi.url_scheme", req.scheme.to_string());

    let mut script_name: &str = &cfg.script_name;
    let mut host: Option<&str> = None;
    let first_header = env.vars.len();
    for (name, value) in &req.headers {
        match name {
            // No HTTP_ prefix for these two (CGI, RFC 3875 §4.1.2/§4.1.3); repeats were refused.
            "CONTENT-TYPE" => {
                env.set("CONTENT_TYPE", value.to_string());
                continue;
            }
            "CONTENT-LENGTH" => {
                env.set("CONTENT_LENGTH", value.to_string());
                continue;
            }
            // Only present when a trusted forwarder sent it (or --header-map dangerous).
            "SCRIPT_NAME" => script_name = value,
            "HOST" => host = Some(value),
            _ => {}
        }
        let key = http_key(name);
        // Repeated headers are joined with "," (no space), at the first one's place.
        match env.vars[first_header..].iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => env.set(key, value.to_string()),
        }
    }

    // REMOTE_*: the socket peer, or the client a PROXY header named.
    match (proxy.and_then(|p| p.client), &conn.peer) {
        (Some(client), _) | (None, &Peer::Tcp(client)) => {
            env.set("REMOTE_ADDR", ip_string(client.ip()));
            env.set("REMOTE_PORT", port_string(client.port()));
        }
        // gunicorn: a unix peer has REMOTE_ADDR "" and no REMOTE_PORT.
        (None, Peer::Unix) => env.set("REMOTE_ADDR", String::new()),
    }
    if let Some(p) = proxy {
        env.set("PROXY_PROTOCOL", p.protocol.to_string());
        if let Some(dst) = p.proxy {
            env.set("PROXY_ADDR", ip_string(dst.ip()));
            env.set("PROXY_PORT", port_string(dst.port()));
        }
    }

    // SERVER_NAME/PORT: the bound address for TCP (not the Host header, gunicorn); for a
    // unix listener the Host header, else the socket path.
    let (server_name, server_port) = match &conn.local {
        Local::Tcp(addr) => server_addr(addr),
        Local::Unix(path) => match host {
            Some(h) => split_host(h, req.scheme),
            None => (path.clone(), String::new()),
        },
    };
    env.set("SERVER_NAME", server_name);
    env.set("SERVER_PORT", server_port);

    // PATH_INFO: SCRIPT_NAME removed (raw compare, gunicorn), then percent-decoded to bytes and
    // read as latin-1 (PEP 3333).
    let mut path: &str = &req.path;
    if !script_name.is_empty() {
        match path.strip_prefix(script_name) {
            Some(rest) => path = rest,
            None => {
                return Err(HttpError::ConfigurationProblem(format!(
                    "Request path {:?} does not start with SCRIPT_NAME {:?}",
                    req.path, script_name
                )))
            }
        }
    }
    env.set("SCRIPT_NAME", script_name.to_string());
    env.set("PATH_INFO", unquote_latin1(path));
    Ok(env)
}

fn server_addr(addr: &SocketAddr) -> (String, String) {
    (ip_string(addr.ip()), port_string(addr.port()))
}

/// Decimal text of a port without the formatting machinery (hot path).
fn port_string(p: u16) -> String {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut n = p;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[i..].iter().map(|&b| char::from(b)).collect()
}

/// Dotted-quad text of an IPv4 address without the formatting machinery; IPv6 uses Display.
fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if *o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if *o >= 10 {
                    s.push(char::from(b'0' + o / 10 % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
            s
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// `host[:port]` or `[v6]:port`; a missing port is 80/443 by scheme.
fn split_host(h: &str, scheme: &str) -> (String, String) {
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
    (name.to_string(), port.unwrap_or(default_port).to_string())
}

/// `HTTP_` + the name with `-` as `_`; common names are static (no allocation).
fn http_key(name: &str) -> Cow<'static, str> {
    let known: Option<&'static str> = match name {
        "HOST" => Some("HTTP_HOST"),
        "USER-AGENT" => Some("HTTP_USER_AGENT"),
        "ACCEPT" => Some("HTTP_ACCEPT"),
        "ACCEPT-LANGUAGE" => Some("HTTP_ACCEPT_LANGUAGE"),
        "ACCEPT-ENCODING" => Some("HTTP_ACCEPT_ENCODING"),
        "CONNECTION" => Some("HTTP_CONNECTION"),
        "COOKIE" => Some("HTTP_COOKIE"),
        "REFERER" => Some("HTTP_REFERER"),
        "ORIGIN" => Some("HTTP_ORIGIN"),
        "AUTHORIZATION" => Some("HTTP_AUTHORIZATION"),
        "CACHE-CONTROL" => Some("HTTP_CACHE_CONTROL"),
        "PRAGMA" => Some("HTTP_PRAGMA"),
        "DNT" => Some("HTTP_DNT"),
        "TE" => Some("HTTP_TE"),
        "PRIORITY" => Some("HTTP_PRIORITY"),
        "UPGRADE-INSECURE-REQUESTS" => Some("HTTP_UPGRADE_INSECURE_REQUESTS"),
        "SEC-FETCH-DEST" => Some("HTTP_SEC_FETCH_DEST"),
        "SEC-FETCH-MODE" => Some("HTTP_SEC_FETCH_MODE"),
        "SEC-FETCH-SITE" => Some("HTTP_SEC_FETCH_SITE"),
        "SEC-FETCH-USER" => Some("HTTP_SEC_FETCH_USER"),
        "SEC-CH-UA" => Some("HTTP_SEC_CH_UA"),
        "SEC-CH-UA-MOBILE" => Some("HTTP_SEC_CH_UA_MOBILE"),
        "SEC-CH-UA-PLATFORM" => Some("HTTP_SEC_CH_UA_PLATFORM"),
        "IF-NONE-MATCH" => Some("HTTP_IF_NONE_MATCH"),
        "IF-MODIFIED-SINCE" => Some("HTTP_IF_MODIFIED_SINCE"),
        "X-FORWARDED-FOR" => Some("HTTP_X_FORWARDED_FOR"),
        "X-FORWARDED-PROTO" => Some("HTTP_X_FORWARDED_PROTO"),
        "X-FORWARDED-HOST" => Some("HTTP_X_FORWARDED_HOST"),
        "X-REAL-IP" => Some("HTTP_X_REAL_IP"),
        "X-REQUEST-ID" => Some("HTTP_X_REQUEST_ID"),
        "EXPECT" => Some("HTTP_EXPECT"),
        "TRANSFER-ENCODING" => Some("HTTP_TRANSFER_ENCODING"),
        _ => None,
    };
    match known {
        Some(k) => Cow::Borrowed(k),
        None => {
            let mut k = String::with_capacity(5 + name.len());
            k.push_str("HTTP_");
            k.extend(name.chars().map(|c| if c == '-' { '_' } else { c }));
            Cow::Owned(k)
        }
    }
}

/// Python's `unquote_to_wsgi_str`: `%XY` becomes the byte XY, invalid escapes stay as they
/// are, and the bytes are read as latin-1. `path` holds latin-1 characters only.
pub(crate) fn unquote_latin1(path: &str) -> String {
    if !path.contains('%') {
        return path.to_string();
    }
    let bytes: Vec<u8> = path
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
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
    latin1_string(&out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Local;
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
        }
    }

    #[test]
    fn number_formatting() {
        for p in [0u16, 7, 10, 99, 100, 8000, 65535] {
            assert_eq!(port_string(p), p.to_string());
        }
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.100.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_string(ip), ip.to_string());
        }
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
