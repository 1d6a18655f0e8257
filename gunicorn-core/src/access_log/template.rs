//! The access-log format, compiled once at startup.
//!
//! gunicorn renders `access_log_format % SafeAtoms(atoms)`: Python's printf-style formatting with
//! a mapping (`%(name)s`), where every string value has `"` escaped as `\"` and a name that is not
//! an atom renders as `-`. Names starting with `{` are looked up lower-cased, which makes
//! `{Header}i`, `{header}o` and `{var}e` case-insensitive. Here the format is parsed once into
//! [`Template`] pieces, so a request only looks up the atoms the format uses.

use std::time::Duration;

use crate::log_record::LocalTime;

/// A format the access log cannot render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `%` not followed by `(name)` or `%`: Python refuses it with a mapping ("format requires
    /// a mapping").
    #[error("format requires a mapping: '%' at offset {0} is not followed by '(name)'")]
    NotMapping(usize),
    /// `%(` without the closing `)`.
    #[error("incomplete format key at offset {0}")]
    UnclosedKey(usize),
    /// The conversion character is missing or not one the access log supports.
    #[error("unsupported format character at offset {0}")]
    Conversion(usize),
}

/// What the request/response side provides for one access-log line; implemented by the WSGI
/// bridge over its own types (this crate knows nothing about HTTP).
pub trait AccessSource {
    /// The WSGI environ value for `name`, compared case-insensitively (`REMOTE_ADDR`,
    /// `{remote_addr}e`).
    fn environ(&self, name: &str) -> Option<&str>;
    /// A request header, the name compared case-insensitively. The last one wins when repeated
    /// (gunicorn builds a dict from the header list).
    fn request_header(&self, name: &str) -> Option<&str>;
    /// A response header the app set (not the server's own Date/Server/Connection), compared
    /// case-insensitively; the last one wins.
    fn response_header(&self, name: &str) -> Option<&str>;
}

/// One finished request, as plain data.
pub struct AccessRecord<'a> {
    /// The request and response fields.
    pub source: &'a dyn AccessSource,
    /// The status code sent.
    pub status: u16,
    /// Body bytes sent (`None` renders `b` as `-`).
    pub sent: Option<u64>,
    /// The time from the parsed request head to the end of the response.
    pub duration: Duration,
    /// The worker's pid.
    pub pid: u32,
    /// The local time of the log call (gunicorn formats `t` when the line is written).
    pub time: LocalTime,
}

/// The key of one `%(key)` reference, resolved at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// One of the single-letter atoms.
    Atom(char),
    /// `{name}i`, name lower-cased.
    RequestHeader(String),
    /// `{name}o`, name lower-cased.
    ResponseHeader(String),
    /// `{name}e`, name lower-cased.
    Environ(String),
    /// Any other name: renders `-`.
    Unknown,
}

/// The Python conversion character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// `s`: `str()`.
    Str,
    /// `r` / `a`: `repr()`.
    Repr,
    /// `d`, `i`, `u`: an integer.
    Int,
}

/// Flags, width and precision of one conversion (`%(b)-10s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field { key: Key, conv: Conv, spec: Spec },
}

/// A compiled access-log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// gunicorn's default `access_log_format`.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// The single-letter atoms gunicorn defines.
const ATOMS: &str = "hlutrmUqHsBbfaTDMLp";

/// An atom's value: a string (escaped) or a number (as is).
enum Atom<'a> {
    Str(std::borrow::Cow<'a, str>),
    Int(i128),
}

impl Template {
    /// Parses a format with Python's `%(name)conv` mapping syntax.
    pub fn parse(format: &str) -> Result<Template, TemplateError> {
        let bytes = format.as_bytes();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < bytes.len() {
            let Some(rel) = format[i..].find('%') else {
                text.push_str(&format[i..]);
                break;
            };
            text.push_str(&format[i..i + rel]);
            let start = i + rel;
            i = start + 1;
            match bytes.get(i) {
                Some(b'%') => {
                    text.push('%');
                    i += 1;
                    continue;
                }
                Some(b'(') => {}
                _ => return Err(TemplateError::NotMapping(start)),
            }
            // Python matches parentheses inside the key: `%(a(b)c)s` has the key `a(b)c`.
            let key_start = i + 1;
            let mut depth = 1;
            let mut j = key_start;
            while j < bytes.len() && depth > 0 {
                match bytes[j] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth > 0 {
                return Err(TemplateError::UnclosedKey(start));
            }
            let key = &format[key_start..j - 1];
            i = j;
            let mut spec = Spec::default();
            while let Some(&c) = bytes.get(i) {
                match c {
                    b'-' => spec.left = true,
                    b'0' => spec.zero = true,
                    b'+' => spec.plus = true,
                    b' ' => spec.space = true,
                    b'#' => {}
                    _ => break,
                }
                i += 1;
            }
            while let Some(c) = bytes.get(i).filter(|c| c.is_ascii_digit()) {
                spec.width = spec
                    .width
                    .saturating_mul(10)
                    .saturating_add((c - b'0') as usize);
                i += 1;
            }
            if bytes.get(i) == Some(&b'.') {
                i += 1;
                let mut p = 0usize;
                while let Some(c) = bytes.get(i).filter(|c| c.is_ascii_digit()) {
                    p = p.saturating_mul(10).saturating_add((c - b'0') as usize);
                    i += 1;
                }
                spec.precision = Some(p);
            }
            // Length modifiers are accepted and ignored by Python.
            while matches!(bytes.get(i), Some(b'h' | b'l' | b'L')) {
                i += 1;
            }
            let conv = match bytes.get(i) {
                Some(b's') => Conv::Str,
                Some(b'r' | b'a') => Conv::Repr,
                Some(b'd' | b'i' | b'u') => Conv::Int,
                _ => return Err(TemplateError::Conversion(i)),
            };
            i += 1;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Field {
                key: compile_key(key),
                conv,
                spec,
            });
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// Renders one line (without the newline).
    pub fn render(&self, rec: &AccessRecord<'_>) -> String {
        let mut out = String::with_capacity(128);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { key, conv, spec } => {
                    let value = atom(key, rec);
                    write_field(&mut out, &value, *conv, spec);
                }
            }
        }
        out
    }
}

fn compile_key(key: &str) -> Key {
    if key.starts_with('{') {
        let lower = key.to_lowercase();
        let inner = |suffix: &str| {
            lower
                .strip_suffix(suffix)
                .and_then(|k| k.strip_prefix('{'))
                .filter(|k| !k.contains('}'))
                .map(str::to_string)
        };
        if let Some(name) = inner("}i") {
            return Key::RequestHeader(name);
        }
        if let Some(name) = inner("}o") {
            return Key::ResponseHeader(name);
        }
        if let Some(name) = inner("}e") {
            return Key::Environ(name);
        }
        return Key::Unknown;
    }
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if ATOMS.contains(c) => Key::Atom(c),
        _ => Key::Unknown,
    }
}

fn or_dash(v: Option<&str>) -> Atom<'_> {
    Atom::Str(v.unwrap_or("-").into())
}

fn atom<'a>(key: &Key, rec: &'a AccessRecord<'a>) -> Atom<'a> {
    let env = |k: &str| rec.source.environ(k);
    let micros = rec.duration.subsec_micros() as i128;
    let secs = rec.duration.as_secs() as i128;
    match key {
        Key::Unknown => Atom::Str("-".into()),
        Key::RequestHeader(name) => or_dash(rec.source.request_header(name)),
        Key::ResponseHeader(name) => or_dash(rec.source.response_header(name)),
        Key::Environ(name) => or_dash(env(name)),
        Key::Atom(c) => match c {
            'h' => or_dash(env("REMOTE_ADDR")),
            'l' => Atom::Str("-".into()),
            'u' => Atom::Str(
                env("HTTP_AUTHORIZATION")
                    .and_then(basic_auth_user)
                    .filter(|u| !u.is_empty())
                    .map_or("-".into(), Into::into),
            ),
            't' => Atom::Str(access_time(&rec.time).into()),
            'r' => Atom::Str(
                format!(
                    "{} {} {}",
                    env("REQUEST_METHOD").unwrap_or_default(),
                    env("RAW_URI").unwrap_or_default(),
                    env("SERVER_PROTOCOL").unwrap_or_default()
                )
                .into(),
            ),
            'm' => or_dash(env("REQUEST_METHOD")),
            'U' => or_dash(env("PATH_INFO")),
            'q' => or_dash(env("QUERY_STRING")),
            'H' => or_dash(env("SERVER_PROTOCOL")),
            's' => Atom::Str(rec.status.to_string().into()),
            'B' => rec
                .sent
                .map_or(Atom::Str("None".into()), |n| Atom::Int(n as i128)),
            'b' => Atom::Str(rec.sent.map_or("-".into(), |n| n.to_string().into())),
            'f' => or_dash(env("HTTP_REFERER")),
            'a' => or_dash(env("HTTP_USER_AGENT")),
            'T' => Atom::Int(secs),
            'M' => Atom::Int(secs * 1000 + micros / 1000),
            'D' => Atom::Int(secs * 1_000_000 + micros),
            'L' => Atom::Str(format!("{secs}.{micros:06}").into()),
            'p' => Atom::Str(format!("<{}>", rec.pid).into()),
            _ => Atom::Str("-".into()),
        },
    }
}

/// `[%d/%b/%Y:%H:%M:%S %z]` with English month names, as gunicorn's `now()`.
pub fn access_time(t: &LocalTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[(t.month.clamp(1, 12) - 1) as usize];
    let sign = if t.utc_offset < 0 { '-' } else { '+' };
    let off = t.utc_offset.unsigned_abs();
    format!(
        "[{:02}/{month}/{:04}:{:02}:{:02}:{:02} {sign}{:02}{:02}]",
        t.day,
        t.year,
        t.hour,
        t.minute,
        t.second,
        off / 3600,
        (off % 3600) / 60
    )
}

/// The user name of an `Authorization: Basic` header: base64-decoded, up to the first `:`.
/// Anything undecodable gives no user, as gunicorn logs `-` then.
pub fn basic_auth_user(header: &str) -> Option<String> {
    if !header.to_ascii_lowercase().starts_with("basic") {
        return None;
    }
    let (_, encoded) = header.split_once(' ')?;
    let decoded = base64_decode(encoded.trim())?;
    let user = decoded.split(|b| *b == b':').next().unwrap_or_default();
    String::from_utf8(user.to_vec()).ok()
}

/// Python's non-validating `b64decode`: characters outside the alphabet are skipped, the
/// padding must be right.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some((c - b'A') as u32),
            b'a'..=b'z' => Some((c - b'a' + 26) as u32),
            b'0'..=b'9' => Some((c - b'0' + 52) as u32),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let kept: Vec<u8> = s
        .bytes()
        .filter(|c| value(*c).is_some() || *c == b'=')
        .collect();
    let data_len = kept.iter().position(|c| *c == b'=').unwrap_or(kept.len());
    // a2b_base64: a trailing partial group needs its `=` padding; one lone character is never
    // valid.
    let pads = kept.len() - data_len;
    if data_len % 4 == 1 || (data_len % 4 != 0 && pads < 4 - data_len % 4) {
        return None;
    }
    let mut out = Vec::with_capacity(data_len * 3 / 4);
    for chunk in kept[..data_len].chunks(4) {
        let mut acc = 0u32;
        for (k, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * k);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn write_field(out: &mut String, value: &Atom<'_>, conv: Conv, spec: &Spec) {
    let body: String = match (value, conv) {
        (Atom::Int(n), Conv::Int) => {
            let sign = if *n < 0 {
                "-"
            } else if spec.plus {
                "+"
            } else if spec.space {
                " "
            } else {
                ""
            };
            let digits = n.unsigned_abs().to_string();
            if spec.zero && !spec.left && spec.width > sign.len() + digits.len() {
                let zeros = "0".repeat(spec.width - sign.len() - digits.len());
                format!("{sign}{zeros}{digits}")
            } else {
                format!("{sign}{digits}")
            }
        }
        (Atom::Int(n), _) => n.to_string(),
        // A string where Python wants a number raises there (and gunicorn logs a formatting
        // error instead of the line); the value is written as it is here.
        (Atom::Str(s), Conv::Str | Conv::Int) => escape(s),
        (Atom::Str(s), Conv::Repr) => python_repr(&escape(s)),
    };
    let body = match (spec.precision, conv) {
        (Some(p), Conv::Str | Conv::Repr) => body.chars().take(p).collect(),
        _ => body,
    };
    let len = body.chars().count();
    let pad = spec.width.saturating_sub(len);
    if spec.left {
        out.push_str(&body);
        out.extend(std::iter::repeat_n(' ', pad));
    } else {
        out.extend(std::iter::repeat_n(' ', pad));
        out.push_str(&body);
    }
}

/// SafeAtoms: `"` becomes `\"` in string values.
fn escape(s: &str) -> String {
    s.replace('"', "\\\"")
}

/// Python's `repr()` of a str (the config table's rendering, shared).
fn python_repr(s: &str) -> String {
    crate::pyrepr::py_repr_str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        env: Vec<(&'static str, &'static str)>,
        req: Vec<(&'static str, &'static str)>,
        resp: Vec<(&'static str, &'static str)>,
    }

    fn last<'a>(list: &'a [(&'static str, &'static str)], name: &str) -> Option<&'a str> {
        list.iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    impl AccessSource for Fake {
        fn environ(&self, name: &str) -> Option<&str> {
            last(&self.env, name)
        }
        fn request_header(&self, name: &str) -> Option<&str> {
            last(&self.req, name)
        }
        fn response_header(&self, name: &str) -> Option<&str> {
            last(&self.resp, name)
        }
    }

    fn fake() -> Fake {
        Fake {
            env: vec![
                ("REMOTE_ADDR", "127.0.0.1"),
                ("REQUEST_METHOD", "GET"),
                ("RAW_URI", "/x%20y?y=1"),
                ("PATH_INFO", "/x y"),
                ("QUERY_STRING", "y=1"),
                ("SERVER_PROTOCOL", "HTTP/1.1"),
                ("HTTP_USER_AGENT", "curl/8 \"quoted\""),
                ("HTTP_AUTHORIZATION", "Basic dXNlcjpwYXNz"),
                ("SCRIPT_NAME", "/app"),
            ],
            req: vec![
                ("User-Agent", "curl/8 \"quoted\""),
                ("X-Id", "a"),
                ("X-Id", "b"),
            ],
            resp: vec![("Content-Type", "text/plain"), ("X-Trace", "t1")],
        }
    }

    fn time() -> LocalTime {
        LocalTime {
            year: 2026,
            month: 8,
            day: 2,
            hour: 11,
            minute: 10,
            second: 6,
            utc_offset: 7200,
        }
    }

    fn render(format: &str, sent: Option<u64>) -> String {
        let src = fake();
        let rec = AccessRecord {
            source: &src,
            status: 200,
            sent,
            duration: Duration::from_micros(2_003_004),
            pid: 4242,
            time: time(),
        };
        Template::parse(format).unwrap().render(&rec)
    }

    #[test]
    fn every_atom() {
        let cases: &[(&str, &str)] = &[
            ("%(h)s", "127.0.0.1"),
            ("%(l)s", "-"),
            ("%(u)s", "user"),
            ("%(t)s", "[02/Aug/2026:11:10:06 +0200]"),
            ("%(r)s", "GET /x%20y?y=1 HTTP/1.1"),
            ("%(m)s", "GET"),
            ("%(U)s", "/x y"),
            ("%(q)s", "y=1"),
            ("%(H)s", "HTTP/1.1"),
            ("%(s)s", "200"),
            ("%(B)s", "12"),
            ("%(b)s", "12"),
            ("%(f)s", "-"),
            ("%(a)s", "curl/8 \\\"quoted\\\""),
            ("%(T)s", "2"),
            ("%(M)s", "2003"),
            ("%(D)s", "2003004"),
            ("%(L)s", "2.003004"),
            ("%(p)s", "<4242>"),
            ("%({x-id}i)s", "b"),
            ("%({X-ID}i)s", "b"),
            ("%({user-agent}i)s", "curl/8 \\\"quoted\\\""),
            ("%({content-type}o)s", "text/plain"),
            ("%({X-Trace}o)s", "t1"),
            ("%({missing}o)s", "-"),
            ("%({script_name}e)s", "/app"),
            ("%({REMOTE_ADDR}e)s", "127.0.0.1"),
            ("%({nope}e)s", "-"),
            ("%({x}z)s", "-"),
            ("%(zz)s", "-"),
            ("%(x)s", "-"),
            ("%%", "%"),
            ("100%% %(s)s", "100% 200"),
            ("%(D)d", "2003004"),
            ("%(T)05d", "00002"),
            ("%(s)-5s|", "200  |"),
            ("%(s)5s", "  200"),
            ("%(m).2s", "GE"),
            ("%(m)r", "'GET'"),
            ("%(T)+d", "+2"),
            ("plain", "plain"),
            ("", ""),
        ];
        for (format, want) in cases {
            assert_eq!(render(format, Some(12)), *want, "{format}");
        }
    }

    #[test]
    fn default_format_line() {
        assert_eq!(
            render(DEFAULT_FORMAT, Some(12)),
            r#"127.0.0.1 - user [02/Aug/2026:11:10:06 +0200] "GET /x%20y?y=1 HTTP/1.1" 200 12 "-" "curl/8 \"quoted\"""#
        );
    }

    #[test]
    fn unsent_body_renders_b_as_dash() {
        assert_eq!(render("%(b)s %(B)s", None), "- None");
        assert_eq!(render("%(b)s", Some(0)), "0");
    }

    #[test]
    fn bad_formats_are_refused_at_startup() {
        let cases: &[(&str, TemplateError)] = &[
            ("%s", TemplateError::NotMapping(0)),
            ("abc %", TemplateError::NotMapping(4)),
            ("%(h", TemplateError::UnclosedKey(0)),
            ("%(h)", TemplateError::Conversion(4)),
            ("%(h)z", TemplateError::Conversion(4)),
        ];
        for (format, want) in cases {
            assert_eq!(Template::parse(format).unwrap_err(), *want, "{format}");
        }
        // Nested parentheses belong to the key, as in Python.
        assert_eq!(render("%(a(b)c)s", None), "-");
    }

    #[test]
    fn basic_auth_users() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Basic dXNlcjpwYXNz", Some("user")),
            ("basic dXNlcjpwYXNz", Some("user")),
            ("Basic dXNlcg==", Some("user")),
            ("Basic   dXNlcjpwYXNz  ", Some("user")),
            ("Basic OnBhc3M=", Some("")),
            ("Bearer dXNlcjpwYXNz", None),
            ("Basic", None),
            ("Basic dXNlcjpwYXN", None),
            ("Basic //79", None),
        ];
        for (header, want) in cases {
            assert_eq!(basic_auth_user(header).as_deref(), *want, "{header}");
        }
    }

    #[test]
    fn repr_quotes_like_python() {
        let cases: &[(&str, &str)] = &[
            ("a", "'a'"),
            ("it's", "\"it's\""),
            ("a\nb", "'a\\nb'"),
            ("\\", "'\\\\'"),
        ];
        for (s, want) in cases {
            assert_eq!(python_repr(s), *want);
        }
    }
}
