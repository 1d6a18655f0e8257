//! The application's response head as one buffer: its status line and the header fields that
//! will be sent, validated and filtered as they are added (gunicorn's `Response.process_headers`
//! and `util.hop_headers`; RFC 9110 §5.5 for field values).
//!
//! Each kept field is stored in its wire form, `Name: value\r\n`, after the status line, so a
//! response head costs one allocation however many fields the app gives, and encoding it is a
//! copy. A name is a token (no `:`, no space) and a value has no CR or LF, so the text splits
//! back into its fields without ambiguity.

use crate::error::HttpError;
use crate::syntax::is_token;

/// gunicorn's `util.hop_headers` plus `server` and `date`, which we write ourselves.
pub(crate) const DROPPED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "server",
    "date",
];

/// Response field-value: `[ \t\x21-\x7e\x80-\xff]*` (gunicorn; RFC 9110 §5.5 without the CR/LF
/// or other controls that would split the response).
fn valid_value(v: &str) -> bool {
    // Printable ASCII (the usual value) is checked bytewise, without decoding chars.
    if v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return true;
    }
    v.chars().all(|c| {
        c == ' '
            || c == '\t'
            || ('\x21'..='\x7e').contains(&c)
            || ('\u{80}'..='\u{ff}').contains(&c)
    })
}

/// A response field as gunicorn accepts it: a token name and a value without controls.
pub(crate) fn check_field(name: &str, value: &str) -> Result<(), HttpError> {
    if !is_token(name.as_bytes()) {
        return Err(HttpError::InvalidResponseHeader(format!(
            "invalid header name {name:?}"
        )));
    }
    if !valid_value(value) {
        return Err(HttpError::InvalidResponseHeader(format!(
            "invalid value for header {name:?}"
        )));
    }
    Ok(())
}

/// The status code of a status line ("200 OK", "404"), or None when it is not three digits of
/// at least 100 followed by nothing or a space, or has controls.
fn status_code(line: &str) -> Option<u16> {
    let code = line
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|&c| c >= 100)?;
    let rest = line.get(3..).unwrap_or("");
    ((rest.is_empty() || rest.starts_with(' ')) && valid_value(line)).then_some(code)
}

/// The app's status line and kept header fields, validated (see the module's text).
#[derive(Debug, Clone)]
pub struct AppHead {
    /// The status line stripped of SP/HTAB, then each kept field as `Name: value\r\n`.
    text: String,
    status_len: usize,
    code: u16,
    /// The Content-Length the app set (all its Content-Length fields agree).
    length: Option<u64>,
    /// The app sent `Connection: upgrade` (kept as this flag, not as a field).
    upgrade: bool,
}

impl AppHead {
    /// Starts a head with `status` ("200 OK"), refused as gunicorn refuses it; `capacity` is a
    /// guess of the whole text's size (the status line and the fields), to allocate once.
    /// An error names the status as the app gave it, padding included.
    pub fn new(status: &str, capacity: usize) -> Result<AppHead, HttpError> {
        AppHead::reusing(status, String::new(), capacity)
    }

    /// [`AppHead::new`] in `buffer` (an earlier head's, from [`AppHead::into_buffer`]): its
    /// allocation is reused when it has room for `capacity` bytes.
    pub fn reusing(status: &str, buffer: String, capacity: usize) -> Result<AppHead, HttpError> {
        let line = status.trim_matches([' ', '\t']);
        let Some(code) = status_code(line) else {
            return Err(HttpError::InvalidResponseStatus(status.to_string()));
        };
        let mut text = buffer;
        text.clear();
        text.reserve(capacity.max(line.len()));
        text.push_str(line);
        Ok(AppHead {
            text,
            status_len: line.len(),
            code,
            length: None,
            upgrade: false,
        })
    }

    /// Adds the app's field `name: value`: refused when it could split the response or its
    /// Content-Length is not a number (or disagrees with an earlier one); the value is
    /// stripped of SP/HTAB; hop-by-hop fields are dropped, except `Connection: upgrade`
    /// (kept as a flag) and `Upgrade: websocket` (kept), as gunicorn does.
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), HttpError> {
        check_field(name, value)?;
        let value = value.trim_matches([' ', '\t']);
        if DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            if name.eq_ignore_ascii_case("connection")
                && value
                    .split(',')
                    .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("upgrade"))
            {
                self.upgrade = true;
                return Ok(());
            }
            if !(name.eq_ignore_ascii_case("upgrade") && value.eq_ignore_ascii_case("websocket")) {
                return Ok(());
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::InvalidResponseHeader(format!(
                    "invalid Content-Length {value:?}"
                )));
            }
            let n: u64 = value
                .parse()
                .map_err(|_| HttpError::InvalidResponseHeader("Content-Length too large".into()))?;
            if self.length.is_some_and(|l| l != n) {
                return Err(HttpError::InvalidResponseHeader(
                    "conflicting Content-Length headers".into(),
                ));
            }
            self.length = Some(n);
        }
        self.text.reserve(name.len() + value.len() + 4);
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(value);
        self.text.push_str("\r\n");
        Ok(())
    }

    /// The status line as the app gave it, stripped of SP/HTAB ("200 OK").
    pub fn status_line(&self) -> &str {
        &self.text[..self.status_len]
    }

    /// The buffer, for [`AppHead::reusing`].
    pub fn into_buffer(self) -> String {
        self.text
    }

    /// The status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The Content-Length the app set, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// Whether the app asked for `Connection: upgrade`.
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    /// The kept fields as they go on the wire: `Name: value\r\n` each.
    pub(crate) fn fields_text(&self) -> &str {
        &self.text[self.status_len..]
    }

    /// The kept fields in order, as (name, value).
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            rest: self.fields_text(),
        }
    }

    /// Removes every Content-Length field (RFC 9110 §8.6: none on 1xx and 204).
    pub(crate) fn drop_content_length(&mut self) {
        if !self
            .fields()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            self.length = None;
            return;
        }
        let mut text = String::with_capacity(self.text.len());
        text.push_str(self.status_line());
        for (n, v) in self.fields() {
            if !n.eq_ignore_ascii_case("content-length") {
                text.push_str(n);
                text.push_str(": ");
                text.push_str(v);
                text.push_str("\r\n");
            }
        }
        self.text = text;
        self.length = None;
    }
}

/// The fields of an [`AppHead`], in order.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let (line, rest) = self.rest.split_once("\r\n")?;
        self.rest = rest;
        // The name is a token, so the first ": " ends it.
        Some(line.split_once(": ").unwrap_or((line, "")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: &str, fields: &[(&str, &str)]) -> Result<AppHead, HttpError> {
        let mut h = AppHead::new(status, 0)?;
        for (n, v) in fields {
            h.push(n, v)?;
        }
        Ok(h)
    }

    #[test]
    fn fields_come_back_as_given_minus_dropped_and_padding() {
        // (fields given, fields kept, upgrade flag, Content-Length)
        let cases: &[(&[(&str, &str)], &[(&str, &str)], bool, Option<u64>)] = &[
            (&[], &[], false, None),
            (
                &[("Content-Type", " text/plain "), ("Content-Length", "13")],
                &[("Content-Type", "text/plain"), ("Content-Length", "13")],
                false,
                Some(13),
            ),
            (
                &[("X-Empty", ""), ("X-Colon", "a: b"), ("X-L", "\u{e9}")],
                &[("X-Empty", ""), ("X-Colon", "a: b"), ("X-L", "\u{e9}")],
                false,
                None,
            ),
            (
                &[
                    ("Connection", "keep-alive, Upgrade"),
                    ("Upgrade", "websocket"),
                ],
                &[("Upgrade", "websocket")],
                true,
                None,
            ),
            (
                &[
                    ("Server", "x"),
                    ("DATE", "y"),
                    ("te", "z"),
                    ("Upgrade", "h2c"),
                ],
                &[],
                false,
                None,
            ),
            (
                &[("Content-Length", "2"), ("content-length", "2")],
                &[("Content-Length", "2"), ("content-length", "2")],
                false,
                Some(2),
            ),
        ];
        for (given, kept, upgrade, length) in cases {
            let h = head("200 OK", given).unwrap();
            assert_eq!(h.fields().collect::<Vec<_>>(), *kept, "{given:?}");
            assert_eq!(
                (h.is_upgrade(), h.content_length()),
                (*upgrade, *length),
                "{given:?}"
            );
            assert_eq!(h.status_line(), "200 OK");
        }
    }

    #[test]
    fn status_lines() {
        // (as given, status line kept, code); None: refused.
        let cases: &[(&str, Option<(&str, u16)>)] = &[
            ("200 OK", Some(("200 OK", 200))),
            ("200", Some(("200", 200))),
            (" \t404 Not Found\t ", Some(("404 Not Found", 404))),
            ("599 Custom \u{e9}", Some(("599 Custom \u{e9}", 599))),
            ("", None),
            ("20 OK", None),
            ("2000 OK", None),
            ("099 Low", None),
            ("200x", None),
            ("200 OK\n", None),
            ("200\r\nX: y", None),
        ];
        for (given, want) in cases {
            let got = AppHead::new(given, 16);
            match want {
                Some((line, code)) => {
                    let h = got.unwrap();
                    assert_eq!((h.status_line(), h.code()), (*line, *code), "{given:?}");
                }
                None => assert!(
                    matches!(got, Err(HttpError::InvalidResponseStatus(ref s)) if s == given),
                    "{given:?}"
                ),
            }
        }
    }

    #[test]
    fn a_reused_buffer_holds_only_the_new_head() {
        let first = head(
            "404 Not Found",
            &[("X-Old", "value"), ("Content-Length", "3")],
        )
        .unwrap();
        let mut h = AppHead::reusing("200 OK", first.into_buffer(), 8).unwrap();
        h.push("A", "1").unwrap();
        assert_eq!(h.status_line(), "200 OK");
        assert_eq!(h.fields().collect::<Vec<_>>(), [("A", "1")]);
        assert_eq!((h.code(), h.content_length()), (200, None));
        assert!(matches!(
            AppHead::reusing("bad", h.into_buffer(), 8),
            Err(HttpError::InvalidResponseStatus(_))
        ));
    }

    #[test]
    fn content_length_can_be_dropped() {
        let mut h = head(
            "204 No Content",
            &[("A", "1"), ("Content-Length", "5"), ("B", "2")],
        )
        .unwrap();
        h.drop_content_length();
        assert_eq!(h.fields().collect::<Vec<_>>(), [("A", "1"), ("B", "2")]);
        assert_eq!(
            (h.content_length(), h.status_line()),
            (None, "204 No Content")
        );
    }

    #[test]
    fn bad_fields_are_refused() {
        let cases: &[&[(&str, &str)]] = &[
            &[("X-A", "a\r\nSet-Cookie: x=1")],
            &[("X A", "b")],
            &[("X:A", "b")],
            &[("", "b")],
            &[("X-A", "\u{100}")],
            &[("Content-Length", "")],
            &[("Content-Length", "+1")],
            &[("Content-Length", "99999999999999999999999")],
            &[("Content-Length", "1"), ("Content-Length", "2")],
        ];
        for fields in cases {
            assert!(
                matches!(
                    head("200 OK", fields),
                    Err(HttpError::InvalidResponseHeader(_))
                ),
                "{fields:?}"
            );
        }
    }
}
