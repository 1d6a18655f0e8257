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

/// Decodes bytes as latin-1 (each byte is one char), the way gunicorn decodes the head.
pub(crate) fn latin1_string(b: &[u8]) -> String {
    if b.is_ascii() {
        // ASCII is valid UTF-8 as is.
        String::from_utf8(b.to_vec()).unwrap_or_default()
    } else {
        b.iter().map(|&c| char::from(c)).collect()
    }
}

/// Finds `\r\n` in `hay` at or after `from`.
pub(crate) fn find_crlf(hay: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < hay.len() {
        match hay[i..].iter().position(|&b| b == b'\n') {
            None => return None,
            Some(off) => {
                let nl = i + off;
                if nl > 0 && hay[nl - 1] == b'\r' && nl > from {
                    return Some(nl - 1);
                }
                i = nl + 1;
            }
        }
    }
    None
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
    fn crlf_and_trim() {
        assert_eq!(find_crlf(b"ab\r\ncd", 0), Some(2));
        assert_eq!(find_crlf(b"a\nb\r\n", 0), Some(3));
        assert_eq!(find_crlf(b"\r\n", 1), None);
        assert_eq!(find_crlf(b"ab\r", 0), None);
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(latin1_string(b"a\xe9"), "a\u{e9}");
    }
}
