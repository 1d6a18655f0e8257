//! Byte classes shared by the request and response code (RFC 9110 §5.6.2, §5.5).

/// `tchar` (RFC 9110 §5.6.2): `!#$%&'*+-.^_`|~`, digits and letters.
pub(crate) const fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A request field-value byte gunicorn refuses: `[\x00-\x08\x0a-\x1f\x7f]` (HTAB allowed,
/// obs-text allowed; RFC 9110 §5.5).
pub(crate) const fn is_bad_value_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Scans a request field value eight bytes at a time: `None` if it holds a refused byte
/// (a word with no byte below 0x20 and no 0x7f is skipped whole; others are checked byte by
/// byte), else `Some(is_ascii)`, which saves the caller another pass when decoding.
pub(crate) fn scan_value(v: &[u8]) -> Option<bool> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut high = 0u64;
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        high |= x;
        let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
        let y = x ^ (LO * 0x7f);
        let del = y.wrapping_sub(LO) & !y & HI;
        if (below_space | del) != 0 && c.iter().any(|&b| is_bad_value_byte(b)) {
            return None;
        }
    }
    let rest = chunks.remainder();
    if rest.iter().any(|&b| is_bad_value_byte(b)) {
        return None;
    }
    Some(high & HI == 0 && rest.is_ascii())
}

/// Whether `v` holds a byte refused in a request field value.
#[cfg(test)]
pub(crate) fn has_bad_value_byte(v: &[u8]) -> bool {
    scan_value(v).is_none()
}

pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// Upper-cases a token (ASCII by construction).
pub(crate) fn upper(name: &[u8]) -> String {
    let mut v = name.to_vec();
    v.make_ascii_uppercase();
    // A token is ASCII, so this never falls back.
    String::from_utf8(v).unwrap_or_else(|e| latin1_string(e.as_bytes()))
}

/// Decodes bytes as latin-1 (each byte is one char), the way gunicorn decodes the head.
pub(crate) fn latin1_string(b: &[u8]) -> String {
    let mut s = String::new();
    latin1_into(b, &mut s);
    s
}

/// [`latin1_string`] into `out`, replacing its text (its allocation is reused).
pub(crate) fn latin1_into(b: &[u8], out: &mut String) {
    out.clear();
    if b.is_ascii() {
        // ASCII is valid UTF-8 as is.
        out.push_str(std::str::from_utf8(b).unwrap_or_default());
    } else {
        out.extend(b.iter().map(|&c| char::from(c)));
    }
}

/// Finds `\r\n` in `hay` at or after `from` (the index of the CR).
pub(crate) fn find_crlf(hay: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(nl) = find_lf(hay, i) {
        if nl > from && hay[nl - 1] == b'\r' {
            return Some(nl - 1);
        }
        i = nl + 1;
    }
    None
}

/// Finds the first LF at or after `from`, eight bytes at a time (SWAR: a zero byte of
/// `word ^ 0x0a..0a` marks an LF).
pub(crate) fn find_lf(hay: &[u8], from: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LF: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut i = from;
    while i + 8 <= hay.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&hay[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ LF;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i.min(hay.len())..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let cases: &[(&[u8], bool)] = &[
            (b"GET", true),
            (b"X-Custom_1", true),
            (b"a~b|c", true),
            (b"", false),
            (b"a b", false),
            (b"a:b", false),
            (b"a\x00", false),
            (b"\xdf", false),
            (b"(x)", false),
        ];
        for (s, want) in cases {
            assert_eq!(is_token(s), *want, "{s:?}");
        }
    }

    #[test]
    fn bad_value_bytes() {
        for b in 0..=255u8 {
            for len in [1usize, 7, 8, 9, 17] {
                for at in [0, len / 2, len - 1] {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    assert_eq!(
                        has_bad_value_byte(&v),
                        is_bad_value_byte(b),
                        "{b:#x} {len} {at}"
                    );
                }
            }
        }
        assert!(!has_bad_value_byte(
            b"text/html,application/xhtml+xml\t\x80\xff"
        ));
    }

    #[test]
    fn crlf_and_trim() {
        assert_eq!(find_crlf(b"ab\r\ncd", 0), Some(2));
        assert_eq!(find_crlf(b"a\nb\r\n", 0), Some(3));
        assert_eq!(find_crlf(b"\r\n", 1), None);
        assert_eq!(find_crlf(b"ab\r", 0), None);
        // Every position, both sides of the eight-byte blocks.
        for len in 0..40 {
            for at in 0..len {
                let mut v = vec![b'a'; len];
                v[at] = b'\n';
                assert_eq!(find_lf(&v, 0), Some(at), "{len} {at}");
                assert_eq!(find_lf(&v, at + 1), None);
                if at > 0 {
                    v[at - 1] = b'\r';
                    assert_eq!(find_crlf(&v, 0), Some(at - 1));
                    assert_eq!(find_crlf(&v, at), None);
                }
            }
        }
        // High bytes must not look like LF (borrow propagation in the SWAR test).
        assert_eq!(find_lf(b"\x8a\x0b\xff\x09\x8a\x8a\x8a\x8a\n", 0), Some(8));
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(latin1_string(b"a\xe9"), "a\u{e9}");
    }
}
