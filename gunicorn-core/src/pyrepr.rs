//! Python's `repr()` of a string, for output that must read as gunicorn's (Python's) does:
//! `--print-config`, argparse's usage errors, the access log's `{name}e` atoms.

/// Python's `repr()` of a string: single quotes unless the text holds `'` and no `"`,
/// backslash escapes for the quote, `\\`, `\n`, `\r`, `\t` and other control characters.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_python_writes_it() {
        let cases = [
            ("abc", "'abc'"),
            ("it's", "\"it's\""),
            ("a'b\"c", "'a\\'b\"c'"),
            ("tab\tnl\n\\", "'tab\\tnl\\n\\\\'"),
            ("\u{1}\u{7f}", "'\\x01\\x7f'"),
            ("é", "'é'"),
        ];
        for (s, want) in cases {
            assert_eq!(py_repr_str(s), want, "{s:?}");
        }
    }
}
