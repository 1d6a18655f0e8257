//! The request's header list, stored compactly: every name and value in one latin-1-decoded
//! `String`, plus offsets. One allocation for the text and one for the offsets, instead of two
//! per header (the head parser is on the hot path of every request).

/// Offsets of one field in [`Headers::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// Header fields in arrival order: UPPER-CASE names, latin-1-decoded values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    spans: Vec<Span>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    /// Room for `bytes` of names and values and `fields` fields.
    pub fn with_capacity(bytes: usize, fields: usize) -> Self {
        Headers {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    /// Appends a field. The name is stored as given (the parser passes it upper-cased).
    pub fn push(&mut self, name: &str, value: &str) {
        let n0 = self.text.len();
        self.text.push_str(name);
        let n1 = self.text.len();
        self.text.push_str(value);
        self.push_span(n0, n1, self.text.len());
    }

    /// Records a field whose name is `text[n0..n1]` and value `text[n1..end]`.
    pub(crate) fn push_span(&mut self, n0: usize, n1: usize, end: usize) {
        let c = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        self.spans.push(Span {
            name: (c(n0), c(n1)),
            value: (c(n1), c(end)),
        });
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The bytes its text buffer holds room for.
    pub(crate) fn text_capacity(&self) -> usize {
        self.text.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// `(NAME, value)` pairs in arrival order.
    pub fn iter(&self) -> HeaderIter<'_> {
        HeaderIter {
            headers: self,
            next: 0,
        }
    }

    /// The first value of `upper_name`.
    pub fn get(&self, upper_name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == upper_name).map(|(_, v)| v)
    }

    /// Every value of `upper_name`, in order.
    pub fn get_all<'a>(&'a self, upper_name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(n, _)| *n == upper_name)
            .map(|(_, v)| v)
    }

    /// The fields as owned pairs.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn field(&self, i: usize) -> Option<(&str, &str)> {
        let s = self.spans.get(i)?;
        let name = self.text.get(s.name.0 as usize..s.name.1 as usize)?;
        let value = self.text.get(s.value.0 as usize..s.value.1 as usize)?;
        Some((name, value))
    }
}

fn span(n0: usize, n1: usize, end: usize) -> Span {
    let c = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    Span {
        name: (c(n0), c(n1)),
        value: (c(n1), c(end)),
    }
}

/// [`Headers`] under construction by the parser: the text is built as UTF-8 bytes and
/// checked once at the end, rather than once per name and value.
#[derive(Debug, Default)]
pub(crate) struct HeaderBuf {
    text: Vec<u8>,
    spans: Vec<Span>,
}

impl HeaderBuf {
    pub(crate) fn with_capacity(bytes: usize, fields: usize) -> Self {
        HeaderBuf {
            text: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    /// An empty buffer over the allocations of `spare` (a previous request's fields).
    pub(crate) fn reusing(spare: Headers) -> Self {
        let mut text = spare.text.into_bytes();
        text.clear();
        let mut spans = spare.spans;
        spans.clear();
        HeaderBuf { text, spans }
    }

    /// Appends a token (ASCII, checked by the field scanner) upper-cased; returns its range and
    /// whether it holds `_` (one pass after a bulk copy: no per-byte capacity checks).
    pub(crate) fn push_name(&mut self, name: &[u8]) -> (usize, usize, bool) {
        let n0 = self.text.len();
        self.text.extend_from_slice(name);
        let mut underscore = false;
        for b in &mut self.text[n0..] {
            underscore |= *b == b'_';
            b.make_ascii_uppercase();
        }
        (n0, self.text.len(), underscore)
    }

    pub(crate) fn bytes(&self, from: usize, to: usize) -> &[u8] {
        &self.text[from..to]
    }

    /// Forgets everything from `n0` (a dropped field).
    pub(crate) fn truncate(&mut self, n0: usize) {
        self.text.truncate(n0);
    }

    /// Appends a value (latin-1 bytes; `ascii` when known to be plain ASCII) and records the
    /// field whose name starts at `n0` and ends at `n1`.
    pub(crate) fn push_value(&mut self, n0: usize, n1: usize, value: &[u8], ascii: bool) {
        if ascii {
            self.text.extend_from_slice(value);
        } else {
            for &b in value {
                push_latin1_byte(&mut self.text, b);
            }
        }
        self.spans.push(span(n0, n1, self.text.len()));
    }

    pub(crate) fn finish(self) -> Headers {
        // Valid UTF-8 by construction (ASCII, or latin-1 encoded by push_latin1_byte).
        let text = String::from_utf8(self.text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Headers {
            text,
            spans: self.spans,
        }
    }
}

/// Appends one latin-1 byte as UTF-8.
fn push_latin1_byte(out: &mut Vec<u8>, b: u8) {
    let mut utf8 = [0u8; 2];
    out.extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes());
}

/// Iterator over [`Headers`].
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    headers: &'a Headers,
    next: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let f = self.headers.field(self.next)?;
        self.next += 1;
        Some(f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.headers.len() - self.next.min(self.headers.len());
        (n, Some(n))
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_iter_get() {
        let h: Headers = [
            ("HOST", "a"),
            ("X-A", "1"),
            ("X-A", "\u{e9}"),
            ("EMPTY", ""),
        ]
        .into_iter()
        .collect();
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("HOST"), Some("a"));
        assert_eq!(h.get("X-A"), Some("1"));
        assert_eq!(h.get("NONE"), None);
        assert_eq!(h.get_all("X-A").collect::<Vec<_>>(), vec!["1", "\u{e9}"]);
        assert_eq!(h.get("EMPTY"), Some(""));
        let pairs: Vec<(&str, &str)> = (&h).into_iter().collect();
        assert_eq!(
            pairs,
            vec![
                ("HOST", "a"),
                ("X-A", "1"),
                ("X-A", "\u{e9}"),
                ("EMPTY", "")
            ]
        );
        assert_eq!(h.iter().len(), 4);
        assert_eq!(h.to_vec()[2], ("X-A".to_string(), "\u{e9}".to_string()));
        assert!(Headers::new().is_empty());
        let mut b = HeaderBuf::with_capacity(0, 0);
        let (n0, n1, u) = b.push_name(b"x-a_b");
        assert_eq!((b.bytes(n0, n1), u), (&b"X-A_B"[..], true));
        b.push_value(n0, n1, b"caf\xe9", false);
        let (n0, n1, _) = b.push_name(b"Drop");
        b.truncate(n0);
        let (m0, m1, u) = b.push_name(b"Host");
        assert!(!u && m0 == n0 && m1 == n1);
        b.push_value(m0, m1, b"h", true);
        let h = b.finish();
        assert_eq!(
            h.to_vec(),
            vec![
                ("X-A_B".to_string(), "caf\u{e9}".to_string()),
                ("HOST".to_string(), "h".to_string())
            ]
        );
    }
}
