//! Response heads and body framing (RFC 9112 §4, §6, §7; gunicorn's `wsgi.Response`).

use crate::app_head::{check_field, AppHead, Fields, DROPPED};
use crate::config::Protocol;
use crate::error::HttpError;
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Written before the app reads the body when the request had `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the response needs to know about its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqMeta {
    pub version: (u8, u8),
    pub is_head: bool,
    /// [`crate::Request::should_close`].
    pub should_close: bool,
    /// What the connection speaks (`--protocol`). A uWSGI response body is never chunked:
    /// nginx passes its bytes on as they are, so chunk markers would reach the client
    /// (gunicorn 27 `is_chunked`); without a Content-Length it ends with the connection.
    pub protocol: Protocol,
}

/// A validated response head and its body framing.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The status line and the app's headers that will be sent: validated, values stripped,
    /// hop-by-hop removed.
    head: AppHead,
    version: (u8, u8),
    /// HEAD, 1xx, 204, 304: no body bytes are ever sent (RFC 9110 §6.4.1).
    no_body: bool,
    chunked: bool,
    length: Option<u64>,
    sent: u64,
    upgrade: bool,
    req_close: bool,
    must_close: bool,
    is_head: bool,
}

fn push_latin1(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
    } else {
        // Validated: every char is <= U+00FF.
        out.extend(
            s.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    }
}

impl Response {
    /// Validates `status` ("200 OK") and every header; CR, LF and other controls are refused so
    /// the app cannot split the response. Drops hop-by-hop headers and decides the framing.
    /// (A caller that has the fields one by one builds an [`AppHead`] and calls
    /// [`Response::from_app_head`] instead: no string per field.)
    pub fn new(
        req: &ReqMeta,
        status: impl AsRef<str>,
        headers: Vec<(String, String)>,
    ) -> Result<Response, HttpError> {
        let status = status.as_ref();
        let capacity = status.len()
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>();
        let mut head = AppHead::new(status, capacity)?;
        for (name, value) in &headers {
            head.push(name, value)?;
        }
        Ok(Response::from_app_head(req, head))
    }

    /// The response to `req` with the app's validated status and fields; decides the framing.
    pub fn from_app_head(req: &ReqMeta, mut head: AppHead) -> Response {
        let code = head.code();
        let informational = code < 200;
        let no_body = req.is_head || informational || code == 204 || code == 304;
        if informational || code == 204 {
            // RFC 9110 §8.6: no Content-Length on 1xx and 204.
            head.drop_content_length();
        }
        let length = head.content_length();
        // HTTP/2 frames bodies itself and forbids chunked (RFC 9113 §8.1): its body bytes are
        // counted and bounded here all the same, and sent as DATA frames by the caller.
        // uWSGI: never chunked (see `ReqMeta::protocol`).
        let chunked = req.protocol == Protocol::Http
            && length.is_none()
            && (1, 1) <= req.version
            && req.version < (2, 0)
            && !no_body;
        Response {
            status: code,
            upgrade: head.is_upgrade(),
            head,
            version: req.version,
            no_body,
            chunked,
            length,
            sent: 0,
            req_close: req.should_close,
            must_close: false,
            is_head: req.is_head,
        }
    }

    /// The app's head, whose buffer can serve another ([`AppHead::into_buffer`]).
    pub fn into_app_head(self) -> AppHead {
        self.head
    }

    /// The app's headers that are sent, in order, as (name, value).
    pub fn headers(&self) -> Fields<'_> {
        self.head.fields()
    }

    /// [`Response::headers`] as owned pairs (for HTTP/2 frames and Python hooks).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The status line as the app gave it, stripped of SP/HTAB ("200 OK").
    pub fn status_line(&self) -> &str {
        self.head.status_line()
    }

    /// Always close after this response (the sync worker, shutdown).
    pub fn force_close(&mut self) {
        self.must_close = true;
    }

    /// gunicorn's `Response.should_close`: forced or requested close; else keep the
    /// connection when the body end is known (length, chunked, HEAD, 1xx/204/304).
    pub fn should_close(&self) -> bool {
        if self.must_close || self.req_close {
            return true;
        }
        if self.length.is_some() || self.chunked || self.is_head {
            return false;
        }
        !(self.status < 200 || self.status == 204 || self.status == 304)
    }

    /// Status line echoing the request version, `Server`, `Date`, `Connection`, optional
    /// `Transfer-Encoding: chunked`, then the app's headers in order.
    pub fn encode_head(&self, out: &mut Vec<u8>) {
        let fields = self.head.fields_text();
        out.reserve(128 + self.head.status_line().len() + fields.len());
        out.extend_from_slice(b"HTTP/");
        out.push(b'0' + self.version.0 % 10);
        out.push(b'.');
        out.push(b'0' + self.version.1 % 10);
        out.push(b' ');
        push_latin1(out, self.head.status_line());
        out.extend_from_slice(b"\r\nServer: gunicorn\r\nDate: ");
        with_date(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\nConnection: ");
        let conn: &[u8] = if self.upgrade {
            b"upgrade"
        } else if self.should_close() {
            b"close"
        } else {
            b"keep-alive"
        };
        out.extend_from_slice(conn);
        out.extend_from_slice(b"\r\n");
        if self.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        // Already in wire form, `Name: value\r\n` each.
        push_latin1(out, fields);
        out.extend_from_slice(b"\r\n");
    }

    /// Frames body bytes: nothing for no-body responses, never past Content-Length (the excess
    /// is dropped), empty writes skipped, `%X\r\n data \r\n` when chunked.
    pub fn encode_body(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.no_body || data.is_empty() {
            return;
        }
        let data = match self.remaining_length() {
            Some(rem) => &data[..usize::try_from(rem).unwrap_or(usize::MAX).min(data.len())],
            None => data,
        };
        if data.is_empty() {
            return;
        }
        if self.chunked {
            out.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(data);
        }
        self.sent += data.len() as u64;
    }

    /// The last chunk (`0\r\n\r\n`) when chunked; nothing otherwise.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.chunked {
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }

    /// The last chunk followed by trailer fields (RFC 9112 §7.1.2), validated as header fields
    /// are, when chunked. A response that is not chunked has nowhere to put trailers: they are
    /// dropped (RFC 9110 §6.5.1 lets a recipient discard them anyway) and only the end of the
    /// body is written, which is nothing. Fields that must not be trailers (framing, routing,
    /// hop-by-hop: RFC 9110 §6.5.1) are left out.
    pub fn finish_with_trailers(
        &mut self,
        trailers: &[(String, String)],
        out: &mut Vec<u8>,
    ) -> Result<(), HttpError> {
        if !self.chunked {
            return Ok(());
        }
        for (n, v) in trailers {
            check_field(n, v)?;
        }
        out.extend_from_slice(b"0\r\n");
        for (n, v) in trailers {
            let lname = n.to_ascii_lowercase();
            if DROPPED.contains(&lname.as_str())
                || matches!(
                    lname.as_str(),
                    "content-length"
                        | "content-encoding"
                        | "content-range"
                        | "content-type"
                        | "host"
                        | "trailer"
                )
            {
                continue;
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            push_latin1(out, v.trim_matches([' ', '\t']));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Body bytes sent (framing excluded): the access log's `%(B)s`.
    pub fn body_bytes_sent(&self) -> u64 {
        self.sent
    }

    pub fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// Content-Length bytes still allowed, if the app set one.
    pub fn remaining_length(&self) -> Option<u64> {
        self.length.map(|l| l.saturating_sub(self.sent))
    }

    /// The response never carries body bytes (HEAD, 1xx, 204, 304): writes are dropped, and
    /// the caller may log gunicorn's warning once.
    pub fn discards_body(&self) -> bool {
        self.no_body
    }

    /// The app asked for `Connection: upgrade`.
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }
}

/// `wsgi.early_hints`: `HTTP/1.1 103 Early Hints` and the validated headers (RFC 8297).
/// `None` for HTTP/1.0 clients, which may not understand 1xx responses.
pub fn early_hints(
    version: (u8, u8),
    headers: &[(String, String)],
) -> Result<Option<Vec<u8>>, HttpError> {
    if version < (1, 1) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\n");
    for (n, v) in headers {
        check_field(n, v)?;
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        push_latin1(&mut out, v.trim_matches([' ', '\t']));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(out))
}

/// An IMF-fixdate (RFC 9110 §5.6.7) is always 29 bytes.
type DateBuf = [u8; 29];

thread_local! {
    /// (second it was formatted for, the text): formatted at most once a second per thread.
    static DATE: RefCell<(u64, DateBuf)> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.0 != now {
            *c = (now, format_date(now));
        }
        f(&c.1)
    })
}

/// The current date as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (cached).
pub fn http_date() -> String {
    with_date(|d| String::from_utf8_lossy(d).into_owned())
}

/// Formats Unix seconds as an IMF-fixdate (proleptic Gregorian calendar, UTC).
pub(crate) fn format_date(secs: u64) -> DateBuf {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86400;
    let rem = secs % 86400;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, era of 400 years).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut b = [0u8; 29];
    b[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    b[3..5].copy_from_slice(b", ");
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    b[5..7].copy_from_slice(&two(day as u64));
    b[7] = b' ';
    b[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    b[11] = b' ';
    let y = year.clamp(0, 9999) as u64;
    b[12..16].copy_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
    ]);
    b[16] = b' ';
    b[17..19].copy_from_slice(&two(h));
    b[19] = b':';
    b[20..22].copy_from_slice(&two(m));
    b[22] = b':';
    b[23..25].copy_from_slice(&two(s));
    b[25..29].copy_from_slice(b" GMT");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const V11: ReqMeta = ReqMeta {
        version: (1, 1),
        is_head: false,
        should_close: false,
        protocol: Protocol::Http,
    };
    const V10: ReqMeta = ReqMeta {
        version: (1, 0),
        is_head: false,
        should_close: true,
        protocol: Protocol::Http,
    };
    const HEAD: ReqMeta = ReqMeta {
        version: (1, 1),
        is_head: true,
        should_close: false,
        protocol: Protocol::Http,
    };

    fn h(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn head_text(r: &Response) -> String {
        let mut out = Vec::new();
        r.encode_head(&mut out);
        let s = String::from_utf8_lossy(&out).into_owned();
        // Replace the Date value so the text is stable.
        let start = s.find("Date: ").unwrap() + 6;
        format!("{}<date>{}", &s[..start], &s[start + 29..])
    }

    #[test]
    fn trailers_follow_the_last_chunk() {
        let req = ReqMeta {
            version: (1, 1),
            is_head: false,
            should_close: false,
            protocol: Protocol::Http,
        };
        let t = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let cases: &[(&[(&str, &str)], Result<&[u8], ()>)] = &[
            (&[], Ok(b"0\r\n\r\n")),
            (&[("grpc-status", "0")], Ok(b"0\r\ngrpc-status: 0\r\n\r\n")),
            // Framing and hop-by-hop fields are not trailers.
            (
                &[
                    ("Content-Length", "5"),
                    ("Transfer-Encoding", "x"),
                    ("X-T", " v "),
                ],
                Ok(b"0\r\nX-T: v\r\n\r\n"),
            ),
            // A value that would split the response is refused.
            (&[("x", "a\r\nb")], Err(())),
            (&[("bad name", "v")], Err(())),
        ];
        for (trailers, want) in cases {
            let mut r = Response::new(&req, "200 OK", Vec::new()).unwrap();
            assert!(r.is_chunked());
            let mut out = Vec::new();
            let got = r.finish_with_trailers(&t(trailers), &mut out).map(|()| out);
            match want {
                Ok(bytes) => assert_eq!(got.unwrap(), *bytes, "{trailers:?}"),
                Err(()) => assert!(got.is_err(), "{trailers:?}"),
            }
        }
        // With a Content-Length there is no chunked body to end: nothing is written.
        let mut r = Response::new(&req, "200 OK", t(&[("Content-Length", "0")])).unwrap();
        let mut out = Vec::new();
        r.finish_with_trailers(&t(&[("x", "1")]), &mut out).unwrap();
        assert!(out.is_empty());
    }
    #[test]
    fn dates() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(std::str::from_utf8(&format_date(secs)).unwrap(), want);
        }
        assert_eq!(http_date().len(), 29);
        assert!(http_date().ends_with(" GMT"));
    }

    #[test]
    fn framing_table() {
        // (request, status, headers) -> (chunked, should_close, Content-Length kept, no body)
        let cases: &[(ReqMeta, &str, &[(&str, &str)], (bool, bool, bool, bool))] = &[
            (V11, "200 OK", &[], (true, false, false, false)),
            (
                V11,
                "200 OK",
                &[("Content-Length", "5")],
                (false, false, true, false),
            ),
            (V10, "200 OK", &[], (false, true, false, false)),
            // uWSGI: never chunked; without a length the body ends with the connection.
            (
                ReqMeta {
                    protocol: Protocol::Uwsgi,
                    ..V11
                },
                "200 OK",
                &[],
                (false, true, false, false),
            ),
            (
                ReqMeta {
                    protocol: Protocol::Uwsgi,
                    ..V11
                },
                "200 OK",
                &[("Content-Length", "5")],
                (false, false, true, false),
            ),
            (
                ReqMeta {
                    should_close: false,
                    ..V10
                },
                "200 OK",
                &[],
                (false, true, false, false),
            ),
            (
                ReqMeta {
                    should_close: false,
                    ..V10
                },
                "200 OK",
                &[("Content-Length", "1")],
                (false, false, true, false),
            ),
            (
                HEAD,
                "200 OK",
                &[("Content-Length", "5")],
                (false, false, true, true),
            ),
            (HEAD, "200 OK", &[], (false, false, false, true)),
            (
                V11,
                "204 No Content",
                &[("Content-Length", "5")],
                (false, false, false, true),
            ),
            (
                V11,
                "304 Not Modified",
                &[("Content-Length", "5")],
                (false, false, true, true),
            ),
            (
                V11,
                "101 Switching Protocols",
                &[("Content-Length", "5")],
                (false, false, false, true),
            ),
            (
                ReqMeta {
                    should_close: true,
                    ..V11
                },
                "200 OK",
                &[("Content-Length", "5")],
                (false, true, true, false),
            ),
        ];
        for (req, status, headers, (chunked, close, cl, nobody)) in cases {
            let r = Response::new(req, *status, h(headers)).unwrap();
            let kept = r
                .headers()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
            assert_eq!(
                (r.is_chunked(), r.should_close(), kept, r.discards_body()),
                (*chunked, *close, *cl, *nobody),
                "{req:?} {status} {headers:?}"
            );
        }
    }

    #[test]
    fn validation_table() {
        let bad_headers: &[(&str, &str)] = &[
            ("X-A", "a\r\nSet-Cookie: x=1"),
            ("X-A", "a\nb"),
            ("X-A", "a\rb"),
            ("X-A", "a\x00b"),
            ("X-A", "a\x7fb"),
            ("X-A", "\u{100}"),
            ("X A", "b"),
            ("X-A\r\n", "b"),
            ("", "b"),
            ("X:A", "b"),
            ("Content-Length", "-1"),
            ("Content-Length", "1 2"),
        ];
        for (n, v) in bad_headers {
            assert!(
                matches!(
                    Response::new(&V11, "200 OK", h(&[(n, v)])),
                    Err(HttpError::InvalidResponseHeader(_))
                ),
                "{n:?}: {v:?}"
            );
        }
        assert!(Response::new(
            &V11,
            "200 OK",
            h(&[("Content-Length", "1"), ("Content-Length", "2")])
        )
        .is_err());
        // The error names the status as the app gave it, padding included.
        assert!(matches!(
            Response::new(&V11, " 2x OK ", vec![]),
            Err(HttpError::InvalidResponseStatus(s)) if s == " 2x OK "
        ));
        for status in [
            "",
            "20 OK",
            "2000 OK",
            "abc OK",
            "200\r\nX: y",
            "200 OK\n",
            "099 Low",
            "200x",
        ] {
            assert!(
                matches!(
                    Response::new(&V11, status, vec![]),
                    Err(HttpError::InvalidResponseStatus(_))
                ),
                "{status:?}"
            );
        }
        for status in ["200", "200 OK", " 404 Not Found ", "599 Custom \u{e9}"] {
            assert!(Response::new(&V11, status, vec![]).is_ok(), "{status:?}");
        }
    }

    #[test]
    fn head_encoding() {
        let r = Response::new(
            &V11,
            "200 OK",
            h(&[
                ("Content-Type", " text/plain "),
                ("Connection", "close"),
                ("Server", "evil"),
                ("Date", "x"),
                ("Transfer-Encoding", "chunked"),
                ("Keep-Alive", "1"),
                ("X-L", "\u{e9}"),
            ]),
        )
        .unwrap();
        assert_eq!(
            head_text(&r),
            "HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: <date>\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nX-L: \u{fffd}\r\n\r\n"
        );
        let mut r = Response::new(
            &V11,
            "101 Switching Protocols",
            h(&[("Connection", "Upgrade"), ("Upgrade", "websocket")]),
        )
        .unwrap();
        assert_eq!(head_text(&r), "HTTP/1.1 101 Switching Protocols\r\nServer: gunicorn\r\nDate: <date>\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
        r.force_close();
        assert!(r.should_close());
        let mut r = Response::new(&V10, "404 Not Found", h(&[("Content-Length", "0")])).unwrap();
        r.force_close();
        assert_eq!(head_text(&r), "HTTP/1.0 404 Not Found\r\nServer: gunicorn\r\nDate: <date>\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn kept_headers_keep_their_order_and_names_match_in_any_case() {
        let r = Response::new(
            &V11,
            " \t201 Created\t ",
            h(&[
                ("SERVER", "x"),
                ("X-A", "1"),
                ("keep-ALIVE", "5"),
                ("X-B", "\t 2 \t"),
                ("content-LENGTH", " 3"),
                ("TE", "trailers"),
                ("X-C", ""),
            ]),
        )
        .unwrap();
        assert_eq!(r.status_line(), "201 Created");
        let kept: Vec<(&str, &str)> = r.headers().collect();
        assert_eq!(
            kept,
            [
                ("X-A", "1"),
                ("X-B", "2"),
                ("content-LENGTH", "3"),
                ("X-C", "")
            ]
        );
        assert!(!r.is_chunked());
        assert_eq!(
            head_text(&r),
            "HTTP/1.1 201 Created\r\nServer: gunicorn\r\nDate: <date>\r\nConnection: keep-alive\r\nX-A: 1\r\nX-B: 2\r\ncontent-LENGTH: 3\r\nX-C: \r\n\r\n"
        );
    }

    #[test]
    fn body_encoding() {
        let mut out = Vec::new();
        let mut r = Response::new(&V11, "200 OK", vec![]).unwrap();
        r.encode_body(b"hello", &mut out);
        r.encode_body(b"", &mut out);
        r.encode_body(&[b'x'; 26], &mut out);
        r.finish(&mut out);
        assert_eq!(
            out,
            [&b"5\r\nhello\r\n1A\r\n"[..], &[b'x'; 26], b"\r\n0\r\n\r\n"].concat()
        );
        assert_eq!(r.body_bytes_sent(), 31);

        let mut out = Vec::new();
        let mut r = Response::new(&V11, "200 OK", h(&[("Content-Length", "7")])).unwrap();
        r.encode_body(b"hello", &mut out);
        assert_eq!(r.remaining_length(), Some(2));
        r.encode_body(b"world", &mut out);
        r.encode_body(b"more", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"hellowo");
        assert_eq!((r.body_bytes_sent(), r.remaining_length()), (7, Some(0)));

        let mut out = Vec::new();
        let mut r = Response::new(&HEAD, "200 OK", h(&[("Content-Length", "7")])).unwrap();
        r.encode_body(b"hello", &mut out);
        r.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn hints() {
        assert_eq!(
            early_hints((1, 0), &h(&[("Link", "</a.css>")])).unwrap(),
            None
        );
        assert_eq!(
            early_hints(
                (1, 1),
                &h(&[("Link", "</a.css>; rel=preload"), ("Link", "</b.js>")])
            )
            .unwrap()
            .unwrap(),
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>\r\n\r\n"
        );
        assert!(early_hints((1, 1), &h(&[("Link", "a\r\nb")])).is_err());
    }
}
