//! The request/response errors and gunicorn's error page.
//!
//! Statuses, reason phrases and messages follow gunicorn's `handle_error` (reference §5).

/// Every way a request (or an app's response head) can be refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The peer closed part-way through a request head or a chunked body.
    #[error("No more data")]
    NoMoreData,
    #[error("Invalid HTTP request line: {}", repr(.0))]
    InvalidRequestLine(String),
    #[error("Invalid HTTP method: {}", repr(.0))]
    InvalidRequestMethod(String),
    #[error("Invalid HTTP Version: {}", repr(.0))]
    InvalidHTTPVersion(String),
    #[error("Invalid HTTP Header: {}", repr(.0))]
    InvalidHeader(String),
    #[error("Invalid HTTP header name: {}", repr(.0))]
    InvalidHeaderName(String),
    #[error("Obsolete line folding is unacceptable: {}", repr(.0))]
    ObsoleteFolding(String),
    /// `(size seen, limit)`. Answered `414 URI Too Long`, as gunicorn 27 does.
    #[error("Request Line is too large ({0} > {1})")]
    LimitRequestLine(usize, usize),
    #[error("{0}")]
    LimitRequestHeaders(String),
    #[error("Contradictory scheme headers")]
    InvalidSchemeHeaders,
    #[error("Unable to comply with expectation: {}", repr(.0))]
    ExpectationFailed(String),
    #[error("Unsupported transfer coding: {}", repr(.0))]
    UnsupportedTransferCoding(String),
    #[error("Invalid chunk size: {0}")]
    InvalidChunkSize(String),
    #[error("Missing chunk terminator: {0}")]
    ChunkMissingTerminator(String),
    #[error("Invalid chunk extension: {0}")]
    InvalidChunkExtension(String),
    #[error("Invalid PROXY line: {}", repr(.0))]
    InvalidProxyLine(String),
    /// A malformed PROXY v2 header (bad version or command, address block too short, ...):
    /// bad input from the peer, so a 400.
    #[error("Invalid PROXY header: {0}")]
    InvalidProxyHeader(String),
    #[error("Proxy request from {} not allowed", repr(.0))]
    ForbiddenProxyRequest(String),
    /// A uWSGI packet (`--protocol uwsgi`) whose variables block does not add up, or whose
    /// variables break the protocol's rules (see `docs/uwsgi.md`).
    #[error("Invalid uWSGI header: {0}")]
    InvalidUwsgiHeader(String),
    /// A uWSGI packet whose `modifier1` is not 0 (0 is a WSGI request; other values name
    /// other uWSGI services: a 501).
    #[error("Unsupported uWSGI modifier1: {0}")]
    UnsupportedUwsgiModifier(u8),
    /// A uWSGI packet from a peer outside `--uwsgi-allow-from`.
    #[error("uWSGI request from {} not allowed", repr(.0))]
    ForbiddenUwsgiRequest(String),
    /// A trusted peer on a prior-knowledge h2c port sent something else than the HTTP/2
    /// preface (gunicorn 27's `InvalidH2CPreface`); holds the Python repr of what it sent.
    #[error("Expected HTTP/2 connection preface, got {0}")]
    InvalidH2CPreface(String),
    #[error("Configuration problem: {0}")]
    ConfigurationProblem(String),
    /// The app gave a status line we cannot send (not `NNN reason`, or control characters).
    #[error("Invalid response status: {}", repr(.0))]
    InvalidResponseStatus(String),
    /// The app gave a header name or value that could split or corrupt the response.
    #[error("Invalid response header: {0}")]
    InvalidResponseHeader(String),
}

impl HttpError {
    /// The response status, as gunicorn's `handle_error` maps it.
    pub fn status(&self) -> u16 {
        use HttpError::*;
        match self {
            LimitRequestLine(..) => 414,
            LimitRequestHeaders(_) => 431,
            ExpectationFailed(_) => 417,
            UnsupportedTransferCoding(_) | UnsupportedUwsgiModifier(_) => 501,
            ForbiddenProxyRequest(_) | ForbiddenUwsgiRequest(_) => 403,
            ConfigurationProblem(_) | InvalidResponseStatus(_) | InvalidResponseHeader(_) => 500,
            // InvalidProxyHeader is missing from gunicorn 27's handle_error list, so gunicorn
            // answers it with a 500 and a traceback; it is the peer's bad input: 400
            // (docs/http.md). The same holds for the three uWSGI errors (gunicorn 27 answers
            // them 500): they get the statuses gunicorn's own exception classes declare
            // (docs/uwsgi.md).
            _ => 400,
        }
    }

    /// The reason phrase gunicorn writes. Quirk kept on purpose: 501 and the SCRIPT_NAME 500
    /// keep `Bad Request` because gunicorn only changes the status code for them.
    pub fn reason(&self) -> &'static str {
        use HttpError::*;
        match self {
            LimitRequestLine(..) => "URI Too Long",
            LimitRequestHeaders(_) => "Request Header Fields Too Large",
            ExpectationFailed(_) => "Expectation Failed",
            ForbiddenProxyRequest(_) | ForbiddenUwsgiRequest(_) => "Forbidden",
            UnsupportedUwsgiModifier(_) => "Not Implemented",
            InvalidResponseStatus(_) | InvalidResponseHeader(_) => "Internal Server Error",
            _ => "Bad Request",
        }
    }

    /// The text of the error page (html-escaped by [`error_page`]).
    pub fn message(&self) -> String {
        use HttpError::*;
        match self {
            InvalidRequestLine(s) => format!("Invalid Request Line {}", repr(s)),
            InvalidRequestMethod(s) => format!("Invalid Method {}", repr(s)),
            InvalidHTTPVersion(s) => format!("Invalid HTTP Version {}", repr(s)),
            LimitRequestHeaders(s) => format!("Error parsing headers: {}", repr(s)),
            // gunicorn's generic 500 page carries no message.
            InvalidResponseStatus(_) | InvalidResponseHeader(_) => String::new(),
            other => other.to_string(),
        }
    }

    /// Whether a response should be written for this error before closing. False only for
    /// `NoMoreData` (the peer is gone). Body-stage framing errors (bad chunk size, extension or
    /// terminator) get a 400 too, as in gunicorn 27: see docs/http.md.
    /// [`HttpError::InvalidH2CPreface`] for the bytes a client sent.
    pub fn h2c_preface(data: &[u8]) -> HttpError {
        HttpError::InvalidH2CPreface(bytes_repr(data))
    }

    pub fn sends_response(&self) -> bool {
        !matches!(self, HttpError::NoMoreData)
    }
}

/// Python-`repr`-like quoting for messages and log lines: single quotes, and controls (and the
/// latin-1 C1 range) as escapes, so request bytes never reach a log or page raw.
/// Python's `repr()` of a `bytes` object: `b'...'`.
fn bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(data.len() + 3);
    out.push('b');
    out.push(quote);
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

pub(crate) fn repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// gunicorn's `util.write_error` page: always `HTTP/1.1`, `Connection: close`, no Server/Date.
/// Text is written as latin-1 (characters above U+00FF become `?`).
pub fn error_page(status: u16, reason: &str, message: &str) -> Vec<u8> {
    let mut body = String::with_capacity(128 + message.len());
    body.push_str("<html>\n  <head>\n    <title>");
    body.push_str(reason);
    body.push_str("</title>\n  </head>\n  <body>\n    <h1><p>");
    body.push_str(reason);
    body.push_str("</p></h1>\n    ");
    html_escape_into(message, &mut body);
    body.push_str("\n  </body>\n</html>\n");
    let body = latin1(&body);
    let mut out = Vec::with_capacity(body.len() + 100);
    out.extend_from_slice(format!("HTTP/1.1 {status} ").as_bytes());
    out.extend_from_slice(&latin1(reason));
    out.extend_from_slice(b"\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    out
}

/// Python's `html.escape(s, quote=True)`.
fn html_escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// Encodes text as latin-1 (what the parser decoded header values and targets from, one
/// character per byte); characters that do not fit become `?`.
pub fn latin1(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        return s.as_bytes().to_vec();
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reason_table() {
        let cases: &[(HttpError, u16, &str, bool)] = &[
            (HttpError::NoMoreData, 400, "Bad Request", false),
            (
                HttpError::InvalidRequestLine("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidRequestMethod("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidHTTPVersion("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidHeader("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidHeaderName("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::ObsoleteFolding("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (HttpError::LimitRequestLine(5, 4), 414, "URI Too Long", true),
            (
                HttpError::LimitRequestHeaders("x".into()),
                431,
                "Request Header Fields Too Large",
                true,
            ),
            (HttpError::InvalidSchemeHeaders, 400, "Bad Request", true),
            (
                HttpError::ExpectationFailed("x".into()),
                417,
                "Expectation Failed",
                true,
            ),
            (
                HttpError::UnsupportedTransferCoding("x".into()),
                501,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidChunkSize("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidProxyLine("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidProxyHeader("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::ForbiddenProxyRequest("x".into()),
                403,
                "Forbidden",
                true,
            ),
            (
                HttpError::InvalidUwsgiHeader("x".into()),
                400,
                "Bad Request",
                true,
            ),
            (
                HttpError::UnsupportedUwsgiModifier(5),
                501,
                "Not Implemented",
                true,
            ),
            (
                HttpError::ForbiddenUwsgiRequest("10.0.0.1".into()),
                403,
                "Forbidden",
                true,
            ),
            (
                HttpError::ConfigurationProblem("x".into()),
                500,
                "Bad Request",
                true,
            ),
            (
                HttpError::InvalidResponseHeader("x".into()),
                500,
                "Internal Server Error",
                true,
            ),
        ];
        for (e, status, reason, sends) in cases {
            assert_eq!(
                (e.status(), e.reason(), e.sends_response()),
                (*status, *reason, *sends),
                "{e:?}"
            );
        }
    }

    #[test]
    fn messages() {
        let cases: &[(HttpError, &str)] = &[
            (
                HttpError::InvalidRequestMethod("get".into()),
                "Invalid Method 'get'",
            ),
            (
                HttpError::InvalidHTTPVersion("HTTP/2.0".into()),
                "Invalid HTTP Version 'HTTP/2.0'",
            ),
            (
                HttpError::LimitRequestHeaders("max buffer headers".into()),
                "Error parsing headers: 'max buffer headers'",
            ),
            (
                HttpError::LimitRequestLine(10, 4),
                "Request Line is too large (10 > 4)",
            ),
            (
                HttpError::InvalidProxyHeader("unsupported version".into()),
                "Invalid PROXY header: unsupported version",
            ),
            (
                HttpError::InvalidRequestLine("GET /\x01\r\n\\'\u{e9}\u{85}".into()),
                "Invalid Request Line 'GET /\\x01\\r\\n\\\\\\'\u{e9}\\x85'",
            ),
            (
                HttpError::InvalidHeader("X".into()),
                "Invalid HTTP Header: 'X'",
            ),
            (
                HttpError::InvalidUwsgiHeader("truncated value".into()),
                "Invalid uWSGI header: truncated value",
            ),
            (
                HttpError::UnsupportedUwsgiModifier(5),
                "Unsupported uWSGI modifier1: 5",
            ),
            (
                HttpError::ForbiddenUwsgiRequest("10.0.0.1".into()),
                "uWSGI request from '10.0.0.1' not allowed",
            ),
        ];
        for (e, msg) in cases {
            assert_eq!(e.message(), *msg);
        }
    }

    #[test]
    fn page_format() {
        let page = error_page(400, "Bad Request", "Invalid Method '<a&b>'");
        let text = String::from_utf8(page).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            body,
            "<html>\n  <head>\n    <title>Bad Request</title>\n  </head>\n  <body>\n    <h1><p>Bad Request</p></h1>\n    Invalid Method &#x27;&lt;a&amp;b&gt;&#x27;\n  </body>\n</html>\n"
        );
        assert_eq!(
            head,
            format!("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {}", body.len())
        );
        // latin-1 body: the length counts bytes, not UTF-8.
        let page = error_page(400, "Bad Request", "\u{e9}");
        assert!(page.ends_with(b"\xe9\n  </body>\n</html>\n"));
    }
}
