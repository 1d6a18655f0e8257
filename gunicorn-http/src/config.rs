//! Per-worker HTTP settings, built once from gunicorn's `Config` by the Python bridge.
//!
//! Kept free of gunicorn-core so the crate stays a pure, sans-IO library.

use crate::allow::AllowList;

/// gunicorn's `MAX_REQUEST_LINE`: a request-line limit at or above it is capped to it.
pub const MAX_REQUEST_LINE: usize = 8190;
/// gunicorn's `MAX_HEADERS`: the cap (and the "0" meaning) of `limit_request_fields`.
pub const MAX_HEADERS: usize = 32768;
/// gunicorn's `DEFAULT_MAX_HEADERFIELD_SIZE`: used when `limit_request_field_size` is 0.
pub const DEFAULT_MAX_HEADERFIELD_SIZE: usize = 8190;

/// The three request-head limits, already normalised the way gunicorn's `Message` does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum request-line length without its CRLF; 0 means unlimited (see `docs/http.md`).
    pub request_line: usize,
    /// Maximum number of header (and trailer) lines.
    pub fields: usize,
    /// Maximum size of one header line, CRLF and folded continuation lines included.
    pub field_size: usize,
}

impl Limits {
    /// gunicorn's normalisation: a line limit of 0 means unlimited and >= 8190 is capped to
    /// 8190; a field count of 0 or > 32768 becomes 32768; a field size of 0 becomes 8190.
    pub fn from_settings(line: u64, fields: u64, field_size: u64) -> Limits {
        let request_line = if line >= MAX_REQUEST_LINE as u64 {
            MAX_REQUEST_LINE
        } else {
            line as usize
        };
        let fields = if fields == 0 || fields > MAX_HEADERS as u64 {
            MAX_HEADERS
        } else {
            fields as usize
        };
        let field_size = if field_size == 0 {
            DEFAULT_MAX_HEADERFIELD_SIZE
        } else {
            usize::try_from(field_size).unwrap_or(usize::MAX)
        };
        Limits {
            request_line,
            fields,
            field_size,
        }
    }

    /// gunicorn's "max buffer headers": `fields * (field_size + 2) + 4` bytes of header block.
    pub fn max_header_buffer(&self) -> usize {
        self.fields
            .saturating_mul(self.field_size.saturating_add(2))
            .saturating_add(4)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_settings(4094, 100, 8190)
    }
}

/// `--header-map`: what to do with header names containing `_` (they would collide with `-`
/// names once mapped to `HTTP_*` environ keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMapPolicy {
    /// Silently drop them (gunicorn's default); they still count towards the limits.
    #[default]
    Drop,
    /// Refuse the request with `InvalidHeaderName` (400).
    Refuse,
    /// Keep them (ambiguous with the `-` spelling; hence the name).
    Dangerous,
}

impl HeaderMapPolicy {
    /// Parses gunicorn's setting value (`drop`, `refuse`, `dangerous`).
    pub fn parse(s: &str) -> Option<HeaderMapPolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "drop" => Some(HeaderMapPolicy::Drop),
            "refuse" => Some(HeaderMapPolicy::Refuse),
            "dangerous" => Some(HeaderMapPolicy::Dangerous),
            _ => None,
        }
    }
}

/// `--proxy-protocol`: which PROXY protocol header versions are looked for on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    #[default]
    Off,
    V1,
    V2,
    /// Either version (detected from the first bytes).
    Auto,
}

impl ProxyMode {
    pub(crate) fn accepts_v1(self) -> bool {
        matches!(self, ProxyMode::V1 | ProxyMode::Auto)
    }
    pub(crate) fn accepts_v2(self) -> bool {
        matches!(self, ProxyMode::V2 | ProxyMode::Auto)
    }
}

/// `--protocol`: what a connection carries, HTTP/1.x or uWSGI packets (from nginx's
/// `uwsgi_pass`, see `docs/uwsgi.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Http,
    /// The uWSGI binary protocol: each request is a packet of CGI variables
    /// ([`crate::uwsgi`]); the response is an HTTP/1.x head and a body that is never chunked.
    Uwsgi,
}

/// Every setting that changes how requests are parsed, framed and turned into an environ.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub limits: Limits,
    pub permit_unconventional_http_method: bool,
    pub permit_unconventional_http_version: bool,
    pub casefold_http_method: bool,
    pub permit_obsolete_folding: bool,
    pub strip_header_spaces: bool,
    pub header_map: HeaderMapPolicy,
    /// Upper-cased header names with `_` a trusted forwarder may set; `"*"` means any.
    pub forwarder_headers: Vec<String>,
    pub forwarded_allow_ips: AllowList,
    /// `(UPPER-NAME, value)` pairs; the value comparison is case-sensitive (gunicorn).
    pub secure_scheme_headers: Vec<(String, String)>,
    pub proxy_protocol: ProxyMode,
    pub proxy_allow_ips: AllowList,
    pub protocol: Protocol,
    /// Peers allowed to send uWSGI packets (`--uwsgi-allow-from`).
    pub uwsgi_allow_ips: AllowList,
    /// TLS is configured (certfile/keyfile): the default `wsgi.url_scheme` is `https`.
    pub is_ssl: bool,
    /// `SCRIPT_NAME` from the process environment, `""` if unset.
    pub script_name: String,
}

impl HttpConfig {
    pub(crate) fn forwarder_allows(&self, upper_name: &[u8]) -> bool {
        self.forwarder_headers
            .iter()
            .any(|h| h == "*" || h.as_bytes() == upper_name)
    }
}

impl Default for HttpConfig {
    /// gunicorn's defaults.
    fn default() -> Self {
        let local = vec!["127.0.0.1".to_string(), "::1".to_string()];
        HttpConfig {
            limits: Limits::default(),
            permit_unconventional_http_method: false,
            permit_unconventional_http_version: false,
            casefold_http_method: false,
            permit_obsolete_folding: false,
            strip_header_spaces: false,
            header_map: HeaderMapPolicy::Drop,
            forwarder_headers: vec!["SCRIPT_NAME".into(), "PATH_INFO".into()],
            forwarded_allow_ips: AllowList::parse(&local).unwrap_or_default(),
            secure_scheme_headers: vec![
                ("X-FORWARDED-PROTOCOL".into(), "ssl".into()),
                ("X-FORWARDED-PROTO".into(), "https".into()),
                ("X-FORWARDED-SSL".into(), "on".into()),
            ],
            proxy_protocol: ProxyMode::Off,
            proxy_allow_ips: AllowList::parse(&local).unwrap_or_default(),
            protocol: Protocol::Http,
            uwsgi_allow_ips: AllowList::parse(&local).unwrap_or_default(),
            is_ssl: false,
            script_name: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_normalised_like_gunicorn() {
        // (line, fields, field_size) -> expected
        let cases: &[((u64, u64, u64), (usize, usize, usize))] = &[
            ((4094, 100, 8190), (4094, 100, 8190)),
            ((0, 0, 0), (0, MAX_HEADERS, DEFAULT_MAX_HEADERFIELD_SIZE)),
            ((8190, 32768, 1), (8190, 32768, 1)),
            ((8191, 32769, 20000), (8190, MAX_HEADERS, 20000)),
            ((u64::MAX, u64::MAX, 10), (8190, MAX_HEADERS, 10)),
            ((1, 1, 2), (1, 1, 2)),
        ];
        for &((l, f, s), (el, ef, es)) in cases {
            let got = Limits::from_settings(l, f, s);
            assert_eq!(
                (got.request_line, got.fields, got.field_size),
                (el, ef, es),
                "{l} {f} {s}"
            );
        }
        assert_eq!(Limits::default().max_header_buffer(), 100 * 8192 + 4);
    }

    #[test]
    fn header_map_values() {
        let cases = [
            ("drop", Some(HeaderMapPolicy::Drop)),
            ("REFUSE", Some(HeaderMapPolicy::Refuse)),
            ("dangerous", Some(HeaderMapPolicy::Dangerous)),
            ("keep", None),
        ];
        for (s, want) in cases {
            assert_eq!(HeaderMapPolicy::parse(s), want, "{s}");
        }
    }
}
