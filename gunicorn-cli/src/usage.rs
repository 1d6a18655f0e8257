//! The command line's habits that come from gunicorn's argparse rather than from clap, and its
//! usage errors in argparse's shape.
//!
//! Before clap sees the words, [`expand`] does what argparse does with long options: an exact
//! name is kept, an unambiguous prefix (`--timeo`) becomes the full name, an ambiguous one is
//! refused (`ambiguous option: --re could match --reload, ...`), and an unknown one is set aside
//! to be reported after parsing (`unrecognized arguments: --wokers`), with a did-you-mean added
//! here. After clap, [`check_types`] converts the values of gunicorn's `type=int` and
//! `type=auto_int` settings as argparse does at parse time (`-w abc` is a usage error, exit 2).
//! Every usage error prints as argparse's do:
//!
//! ```text
//! usage: gunicorn [OPTIONS] [APP_MODULE]
//! gunicorn: error: argument -w/--workers: invalid int value: 'abc'
//! ```

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use gunicorn_core::config::{Kind, SETTINGS};
use gunicorn_core::Value;

/// The usage line argparse prints before its error.
pub const USAGE: &str = "usage: gunicorn [OPTIONS] [APP_MODULE]";

/// argparse's status for a usage error.
const EXIT_USAGE: i32 = 2;

/// gunicorn's settings whose argparse `type` is `int`.
const INT_SETTINGS: &[&str] = &[
    "backlog",
    "workers",
    "threads",
    "worker_connections",
    "max_requests",
    "max_requests_jitter",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "http2_max_concurrent_streams",
    "http2_initial_window_size",
    "http2_max_frame_size",
    "http2_max_header_list_size",
    "asgi_disconnect_grace_period",
    "websocket_max_message_size",
    "dirty_workers",
    "dirty_timeout",
    "dirty_threads",
    "dirty_graceful_timeout",
];

/// gunicorn's settings whose argparse `type` is `auto_int` (`int(x, 0)`, `0NN` read as octal).
const AUTO_INT_SETTINGS: &[&str] = &["umask", "control_socket_mode"];

/// A command line that cannot be used, or a request for `--help`.
#[derive(Debug)]
pub enum UsageError {
    /// `--help`: clap's help text, exit 0.
    Help(clap::Error),
    /// A usage error: argparse's message (after `gunicorn: error: `), exit 2.
    Usage(String),
}

impl UsageError {
    /// The process exit status: 0 for `--help`, else 2.
    pub fn exit_code(&self) -> i32 {
        match self {
            UsageError::Help(e) => e.exit_code(),
            UsageError::Usage(_) => EXIT_USAGE,
        }
    }

    /// Prints the help text to stdout, or the usage error to stderr as argparse does.
    pub fn print(&self) {
        match self {
            UsageError::Help(e) => {
                let _ = e.print();
            }
            UsageError::Usage(_) => eprintln!("{USAGE}\ngunicorn: error: {}", self.message()),
        }
    }

    /// The message after `gunicorn: error: ` (or the help text).
    pub fn message(&self) -> String {
        match self {
            UsageError::Help(e) => e.to_string(),
            UsageError::Usage(m) => m.clone(),
        }
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for UsageError {}

/// How an option takes its value.
#[derive(Clone, Copy, PartialEq)]
enum Takes {
    Nothing,
    One,
    Optional,
}

/// One option string of the parser, in argparse's order (help, version, then the settings).
struct Opt {
    string: &'static str,
    /// What the option sets (a setting's name, or the special option's id).
    dest: &'static str,
    takes: Takes,
}

fn options() -> Vec<Opt> {
    let mut opts = vec![
        Opt {
            string: "-h",
            dest: "help",
            takes: Takes::Nothing,
        },
        Opt {
            string: "--help",
            dest: "help",
            takes: Takes::Nothing,
        },
        Opt {
            string: "-v",
            dest: "version",
            takes: Takes::Nothing,
        },
        Opt {
            string: "--version",
            dest: "version",
            takes: Takes::Nothing,
        },
    ];
    for setting in SETTINGS {
        let takes = match setting.kind {
            Kind::FileOnly => continue,
            Kind::Flag | Kind::FlagFalse => Takes::Nothing,
            Kind::OptionalValue { .. } => Takes::Optional,
            Kind::Value | Kind::Append => Takes::One,
        };
        for flag in setting.flags {
            opts.push(Opt {
                string: flag,
                dest: setting.name,
                takes,
            });
        }
    }
    for (string, dest) in [
        ("--list-workers", "list-workers"),
        ("--print-settings-doc", "print-settings-doc"),
    ] {
        opts.push(Opt {
            string,
            dest,
            takes: Takes::Nothing,
        });
    }
    opts
}

/// The words with long-option prefixes expanded, and the unknown long options taken out.
#[derive(Debug, Default, PartialEq)]
pub struct Expanded {
    /// What clap parses.
    pub words: Vec<OsString>,
    /// Unknown long options (`--wokers`, `--wokers=3`), reported once parsing succeeded.
    pub unknown: Vec<String>,
}

/// Expands unambiguous prefixes of long options (argparse's `allow_abbrev`), refuses ambiguous
/// ones, and sets unknown long options aside.
pub fn expand(words: Vec<OsString>) -> Result<Expanded, UsageError> {
    let opts = options();
    let mut out = Expanded::default();
    let mut rest = words.into_iter();
    while let Some(word) = rest.next() {
        let Some(text) = word.to_str().map(str::to_owned) else {
            out.words.push(word);
            continue;
        };
        if text == "--" {
            out.words.push(word);
            out.words.extend(rest);
            break;
        }
        let takes = if let Some(body) = text.strip_prefix("--").filter(|b| !b.is_empty()) {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v)),
                None => (text.clone(), None),
            };
            let opt = match opts.iter().find(|o| o.string == name) {
                Some(opt) => opt,
                None => {
                    let matches: Vec<&Opt> = opts
                        .iter()
                        .filter(|o| o.string.starts_with("--") && o.string.starts_with(&name))
                        .collect();
                    let Some(&first) = matches.first() else {
                        out.unknown.push(text);
                        continue;
                    };
                    if matches.iter().any(|o| o.dest != first.dest) {
                        let strings: Vec<&str> = matches.iter().map(|o| o.string).collect();
                        return Err(UsageError::Usage(format!(
                            "ambiguous option: {text} could match {}",
                            strings.join(", ")
                        )));
                    }
                    first
                }
            };
            out.words.push(match value {
                Some(v) => format!("{}={v}", opt.string).into(),
                None => opt.string.into(),
            });
            if value.is_some() {
                Takes::Nothing
            } else {
                opt.takes
            }
        } else {
            // A short option takes the next word only when its value is not attached (`-w 3`).
            let takes = opts
                .iter()
                .find(|o| o.string == text)
                .map_or(Takes::Nothing, |o| o.takes);
            out.words.push(word);
            takes
        };
        match takes {
            Takes::Nothing => {}
            Takes::One => out.words.extend(rest.next()),
            Takes::Optional => {
                let next = rest.as_slice().first().and_then(|w| w.to_str());
                if next.is_some_and(|w| !w.starts_with('-')) {
                    out.words.extend(rest.next());
                }
            }
        }
    }
    Ok(out)
}

/// argparse's report of the words it did not recognize, with the closest option for each
/// unknown long option that resembles one.
pub fn unrecognized(words: &[String]) -> UsageError {
    let opts = options();
    let suggestions: Vec<&str> = words
        .iter()
        .filter_map(|w| {
            let name = w.split_once('=').map_or(w.as_str(), |(n, _)| n);
            name.starts_with("--")
                .then(|| closest(name, &opts))
                .flatten()
        })
        .collect();
    let mut message = format!("unrecognized arguments: {}", words.join(" "));
    if !suggestions.is_empty() {
        message.push_str(&format!(" (did you mean {}?)", suggestions.join(", ")));
    }
    UsageError::Usage(message)
}

/// The long option nearest to `name` by edit distance, if it is near enough to be a typo.
fn closest(name: &str, opts: &[Opt]) -> Option<&'static str> {
    let limit = (name.len() / 4).clamp(1, 3);
    opts.iter()
        .filter(|o| o.string.starts_with("--"))
        .map(|o| (edit_distance(name, o.string), o.string))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s)
}

/// Levenshtein distance, counting a swap of two neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// argparse's `argument -w/--workers` naming of the option a setting belongs to.
fn argument_name(dest: &str) -> String {
    let strings: Vec<&str> = options()
        .into_iter()
        .filter(|o| o.dest == dest)
        .map(|o| o.string)
        .collect();
    strings.join("/")
}

/// A clap error in argparse's words.
pub fn from_clap(e: clap::Error) -> UsageError {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return UsageError::Help(e);
    }
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg);
    // clap names the option as `--workers <INT>`: argparse as `-w/--workers`.
    let argument = arg.as_deref().and_then(|a| {
        let flag = a.split_whitespace().next()?;
        let opts = options();
        let opt = opts.iter().find(|o| o.string == flag)?;
        Some(argument_name(opt.dest))
    });
    let value = context(ContextKind::InvalidValue);
    let message = match (e.kind(), argument, arg, value) {
        (ErrorKind::UnknownArgument, _, Some(arg), _) => {
            return unrecognized(&[arg]);
        }
        (ErrorKind::InvalidValue, Some(argument), _, Some(v)) if v.is_empty() => {
            format!("argument {argument}: expected one argument")
        }
        (ErrorKind::TooManyValues, Some(argument), _, Some(v)) => {
            format!(
                "argument {argument}: ignored explicit argument {}",
                repr(&v)
            )
        }
        _ => {
            // Anything else: clap's first line, without its own "error: ".
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    UsageError::Usage(message)
}

/// Converts the values of gunicorn's `type=int` / `type=auto_int` settings as argparse does when
/// it parses them: a value Python's `int()` refuses is a usage error.
pub fn check_types(settings: &mut [(&'static str, Value)]) -> Result<(), UsageError> {
    for (name, value) in settings.iter_mut() {
        let Value::Str(text) = value else { continue };
        let (parsed, type_name) = if INT_SETTINGS.contains(name) {
            (python_int(text, 10), "int")
        } else if AUTO_INT_SETTINGS.contains(name) {
            (auto_int(text), "auto_int")
        } else {
            continue;
        };
        match parsed {
            Some(Some(n)) => *value = Value::Int(n),
            // A valid integer too large for us: the setting's validator refuses it.
            Some(None) => {}
            None => {
                return Err(UsageError::Usage(format!(
                    "argument {}: invalid {type_name} value: {}",
                    argument_name(name),
                    repr(text)
                )))
            }
        }
    }
    Ok(())
}

/// gunicorn's `auto_int`: `0NN` is read as octal, then Python's `int(x, 0)`.
fn auto_int(text: &str) -> Option<Option<i64>> {
    let b = text.as_bytes();
    if b.len() >= 2 && b[0] == b'0' && b[1].is_ascii_digit() {
        return python_int(&format!("0o{}", &text[1..]), 0);
    }
    python_int(text, 0)
}

/// Python's `int(text, base)` for base 10 or 0 (ASCII digits): `None` when Python raises
/// ValueError, `Some(None)` when the number is valid but does not fit in an i64.
fn python_int(text: &str, base: u32) -> Option<Option<i64>> {
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = if base == 0 {
        match lower.get(..2) {
            Some("0x") => (16, &lower[2..]),
            Some("0o") => (8, &lower[2..]),
            Some("0b") => (2, &lower[2..]),
            _ => (10, lower.as_str()),
        }
    } else {
        (10, lower.as_str())
    };
    // With a prefix, one underscore may follow it (`0x_1f`).
    let digits = if radix != 10 {
        digits.strip_prefix('_').unwrap_or(digits)
    } else {
        digits
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c == '_' || c.is_digit(radix))
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    // int('012', 0) is refused: a decimal with a leading zero must be all zeros.
    if base == 0 && radix == 10 && clean.starts_with('0') && clean.chars().any(|c| c != '0') {
        return None;
    }
    let n = i64::from_str_radix(&clean, radix).ok();
    Some(n.map(|n| if negative { -n } else { n }))
}

/// Python's `repr()` of a string, as argparse quotes values.
fn repr(s: &str) -> String {
    gunicorn_core::pyrepr::py_repr_str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn expanded(v: &[&str]) -> Result<(Vec<String>, Vec<String>), String> {
        expand(words(v))
            .map(|e| {
                let w = e
                    .words
                    .iter()
                    .map(|w| w.to_string_lossy().into_owned())
                    .collect();
                (w, e.unknown)
            })
            .map_err(|e| e.message())
    }

    #[test]
    fn prefixes_expand_like_argparse() {
        let ok: &[(&[&str], &[&str])] = &[
            (&["--timeo", "5"], &["--timeout", "5"]),
            (&["--timeo=5"], &["--timeout=5"]),
            (&["--workers", "3"], &["--workers", "3"]),
            (&["--pre"], &["--preload"]),
            (&["--check"], &["--check-config"]),
            // A value is never taken for an option.
            (
                &["--access-logformat", "--re"],
                &["--access-logformat", "--re"],
            ),
            (&["-w", "--re"], &["-w", "--re"]),
            (&["--", "--re"], &["--", "--re"]),
            (&["-w3", "--timeo", "1"], &["-w3", "--timeout", "1"]),
        ];
        for (argv, want) in ok {
            let (got, unknown) = expanded(argv).unwrap();
            assert_eq!(got, *want, "{argv:?}");
            assert!(unknown.is_empty(), "{argv:?}");
        }
    }

    #[test]
    fn ambiguous_prefixes_are_refused() {
        let err = expanded(&["--wo", "3"]).unwrap_err();
        assert!(
            err.starts_with("ambiguous option: --wo could match --workers, "),
            "{err}"
        );
        let err = expanded(&["--work=3"]).unwrap_err();
        assert!(
            err.starts_with("ambiguous option: --work=3 could match"),
            "{err}"
        );
    }

    #[test]
    fn unknown_long_options_are_set_aside() {
        let (got, unknown) = expanded(&["--wokers", "3", "--zzz=1", "a:app"]).unwrap();
        assert_eq!(got, ["3", "a:app"]);
        assert_eq!(unknown, ["--wokers", "--zzz=1"]);
        assert_eq!(
            unrecognized(&unknown).message(),
            "unrecognized arguments: --wokers --zzz=1 (did you mean --workers?)"
        );
    }

    #[test]
    fn ints_follow_python() {
        let cases: &[(&str, u32, Option<Option<i64>>)] = &[
            ("3", 10, Some(Some(3))),
            (" 4 ", 10, Some(Some(4))),
            ("3_0", 10, Some(Some(30))),
            ("-3", 10, Some(Some(-3))),
            ("+3", 10, Some(Some(3))),
            ("abc", 10, None),
            ("1.5", 10, None),
            ("3__0", 10, None),
            ("_3", 10, None),
            ("", 10, None),
            ("0x1f", 10, None),
            ("0x1f", 0, Some(Some(31))),
            ("0o22", 0, Some(Some(18))),
            ("022", 0, None),
            ("000", 0, Some(Some(0))),
            ("99999999999999999999", 10, Some(None)),
        ];
        for (text, base, want) in cases {
            assert_eq!(python_int(text, *base), *want, "{text:?} {base}");
        }
        assert_eq!(auto_int("022"), Some(Some(18)));
        assert_eq!(auto_int("abc"), None);
    }

    #[test]
    fn bad_ints_are_usage_errors() {
        let mut settings = vec![("workers", Value::Str("abc".into()))];
        let err = check_types(&mut settings).unwrap_err();
        assert_eq!(
            err.message(),
            "argument -w/--workers: invalid int value: 'abc'"
        );
        let mut settings = vec![("umask", Value::Str("x'y".into()))];
        let err = check_types(&mut settings).unwrap_err();
        assert_eq!(
            err.message(),
            "argument -m/--umask: invalid auto_int value: \"x'y\""
        );
        let mut settings = vec![("workers", Value::Str(" 4 ".into()))];
        check_types(&mut settings).unwrap();
        assert_eq!(settings[0].1, Value::Int(4));
    }

    #[test]
    fn typos_suggest_the_nearest_option() {
        let opts = options();
        assert_eq!(closest("--wokers", &opts), Some("--workers"));
        assert_eq!(closest("--bindd", &opts), Some("--bind"));
        assert_eq!(closest("--prelaod", &opts), Some("--preload"));
        assert_eq!(closest("--zzzzzzzzzzz", &opts), None);
    }
}
