//! Splits `GUNICORN_CMD_ARGS` into arguments the way gunicorn does, with Python's
//! `shlex.split` (POSIX mode, no comments).
//!
//! Written here rather than taken from a crate because the rules that matter are Python's, not a
//! shell's: inside double quotes a backslash escapes only `"` and `\` (so `"\$x"` keeps the
//! backslash), `#` is an ordinary character, and an unclosed quote or a trailing backslash is an
//! error. That is forty lines, with the cases tested below.

/// Why a string could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A `'` or `"` was opened and never closed (Python: "No closing quotation").
    #[error("No closing quotation")]
    NoClosingQuotation,
    /// The string ends with a lone backslash (Python: "No escaped character").
    #[error("No escaped character")]
    NoEscapedCharacter,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Between words.
    Between,
    /// Inside a word, outside quotes.
    Word,
    Single,
    Double,
}

/// Splits `s` into words like Python's `shlex.split(s)`.
pub fn split(s: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Between;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match state {
            State::Between | State::Word => match c {
                ' ' | '\t' | '\n' | '\r' => {
                    if state == State::Word {
                        words.push(std::mem::take(&mut word));
                        state = State::Between;
                    }
                }
                '\'' => state = State::Single,
                '"' => state = State::Double,
                '\\' => {
                    word.push(chars.next().ok_or(SplitError::NoEscapedCharacter)?);
                    state = State::Word;
                }
                other => {
                    word.push(other);
                    state = State::Word;
                }
            },
            State::Single => match c {
                '\'' => state = State::Word,
                other => word.push(other),
            },
            State::Double => match c {
                '"' => state = State::Word,
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => word.push(e),
                    Some(e) => {
                        word.push('\\');
                        word.push(e);
                    }
                    None => return Err(SplitError::NoClosingQuotation),
                },
                other => word.push(other),
            },
        }
    }
    match state {
        State::Single | State::Double => Err(SplitError::NoClosingQuotation),
        State::Word => {
            words.push(word);
            Ok(words)
        }
        State::Between => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python_shlex() {
        // Expected values checked against Python 3.11's shlex.split.
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            (
                "-w 3 --bind 127.0.0.1:9",
                &["-w", "3", "--bind", "127.0.0.1:9"],
            ),
            ("  a\t b\n", &["a", "b"]),
            ("'a b' c", &["a b", "c"]),
            ("\"a b\" c", &["a b", "c"]),
            ("a'b c'd", &["ab cd"]),
            ("''", &[""]),
            ("\"\"", &[""]),
            ("a\\ b", &["a b"]),
            ("\"a\\\"b\"", &["a\"b"]),
            ("\"a\\$b\"", &["a\\$b"]),
            ("'a\\b'", &["a\\b"]),
            ("-e 'X=1 2' #c", &["-e", "X=1 2", "#c"]),
        ];
        for (input, want) in cases {
            assert_eq!(split(input).unwrap(), *want, "{input:?}");
        }
    }

    #[test]
    fn refuses_unbalanced_input() {
        let cases: &[(&str, SplitError)] = &[
            ("'abc", SplitError::NoClosingQuotation),
            ("\"abc", SplitError::NoClosingQuotation),
            ("abc\\", SplitError::NoEscapedCharacter),
        ];
        for (input, want) in cases {
            assert_eq!(split(input).unwrap_err(), *want, "{input:?}");
        }
    }
}
