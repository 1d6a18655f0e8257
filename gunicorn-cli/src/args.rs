//! The command-line parser, generated from the settings table.
//!
//! Every row of [`gunicorn_core::config::SETTINGS`] that has flags becomes one clap argument built
//! with the builder API, so a setting added to the table is on the command line, in `--help` and
//! in `GUNICORN_CMD_ARGS` without touching this file. Values are not converted here: they come
//! back as [`Value::Str`] (or lists of them, or booleans for flags) and are converted by the
//! table's own validators when applied, like gunicorn, which lets argparse store strings and
//! validates them in `Config.set`.

use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command};
use gunicorn_core::config::{Kind, SETTINGS};
use gunicorn_core::Value;

use crate::usage::{self, UsageError};

/// The id of the positional `APP_MODULE` argument.
const APP_MODULE: &str = "APP_MODULE";
const VERSION: &str = "version";
const LIST_WORKERS: &str = "list-workers";
const PRINT_SETTINGS_DOC: &str = "print-settings-doc";

/// What one command line (argv or `GUNICORN_CMD_ARGS`) said.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Settings given, as `(name, value)` in the order of the settings table.
    pub settings: Vec<(&'static str, Value)>,
    /// The positional `APP_MODULE`, if given.
    pub app_module: Option<String>,
    /// `-v/--version`.
    pub version: bool,
    /// `--list-workers`: print the registered worker classes.
    pub list_workers: bool,
    /// `--print-settings-doc` (hidden): print docs/settings.md generated from the table.
    pub print_settings_doc: bool,
}

impl Parsed {
    /// The value given for the setting `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.settings
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// The `gunicorn` command, one argument per flagged setting.
pub fn command() -> Command {
    let mut cmd = Command::new("gunicorn")
        .override_usage("gunicorn [OPTIONS] [APP_MODULE]")
        .about("A pre-fork WSGI HTTP server, compatible with gunicorn.")
        .disable_version_flag(true)
        // argparse's `store`: an option given twice keeps the last value (`-w 2 -w 3` is 3);
        // `append` options keep accumulating.
        .args_override_self(true)
        .arg(
            Arg::new(VERSION)
                .short('v')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Show program's version number and exit"),
        )
        .arg(
            Arg::new(LIST_WORKERS)
                .long("list-workers")
                .action(ArgAction::SetTrue)
                .help("List the worker classes linked into this binary and exit"),
        )
        .arg(
            Arg::new(PRINT_SETTINGS_DOC)
                .long("print-settings-doc")
                .action(ArgAction::SetTrue)
                .hide(true),
        )
        .arg(
            Arg::new(APP_MODULE)
                .value_name("APP_MODULE")
                .help("The WSGI application, as module:variable")
                .action(ArgAction::Set),
        );
    let defaults = gunicorn_core::Config::default();
    for setting in SETTINGS {
        if setting.flags.is_empty() || setting.kind == Kind::FileOnly {
            continue;
        }
        // Grouped under the sections of gunicorn's settings reference.
        // `[default]` after the summary, as gunicorn's `--help` shows each default.
        // gunicorn's defaults of comma-list settings are strings (`127.0.0.1,::1`).
        let default = match setting.name {
            "forwarded_allow_ips"
            | "proxy_allow_ips"
            | "uwsgi_allow_ips"
            | "forwarder_headers"
            | "http_protocols" => setting.default_text(),
            _ => crate::print_config::py_value(setting, &defaults),
        };
        let mut arg = Arg::new(setting.name)
            .help(format!("{} [{default}]", summary(setting.doc)))
            .help_heading(setting.section);
        let mut longs = Vec::new();
        for flag in setting.flags {
            if let Some(long) = flag.strip_prefix("--") {
                longs.push(long);
            } else if let Some(c) = flag.strip_prefix('-').and_then(|s| s.chars().next()) {
                arg = arg.short(c);
            }
        }
        if let Some((first, rest)) = longs.split_first() {
            arg = arg.long(*first);
            for alias in rest {
                arg = arg.visible_alias(*alias);
            }
        }
        if !setting.meta.is_empty() {
            arg = arg.value_name(setting.meta);
        }
        arg = match setting.kind {
            Kind::Flag | Kind::FlagFalse => arg.action(ArgAction::SetTrue),
            Kind::Append => arg.action(ArgAction::Append).allow_hyphen_values(true),
            Kind::OptionalValue { implicit } => arg
                .action(ArgAction::Set)
                .num_args(0..=1)
                .default_missing_value(implicit),
            Kind::Value | Kind::FileOnly => arg.action(ArgAction::Set).allow_hyphen_values(true),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The first sentence of a setting's documentation, for `--help` (the doc text wraps, so a
/// sentence may span lines). The periods of `e.g.` and `i.e.` end no sentence.
fn summary(doc: &str) -> String {
    let text = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut from = 0;
    while let Some(at) = text[from..].find(". ") {
        let end = from + at;
        if text[..=end].ends_with("e.g.") || text[..=end].ends_with("i.e.") {
            from = end + 2;
            continue;
        }
        return text[..=end].to_string();
    }
    text
}

/// Parses one command line as gunicorn's argparse does (see [`crate::usage`]): prefixes of long
/// options expanded, the last of a repeated option winning, the values of integer settings
/// converted. `args` excludes the program name. An error is a usage error (exit 2), or a
/// request for `--help` (exit 0): see [`UsageError::exit_code`].
pub fn parse<I, T>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let expanded = usage::expand(args.into_iter().map(Into::into).collect())?;
    let argv = std::iter::once(OsString::from("gunicorn")).chain(expanded.words);
    let matches = command().try_get_matches_from(argv).map_err(|e| {
        // argparse reports the words it did not know once parsing ends: the words that
        // followed an unknown option were taken as positionals there.
        if e.kind() == clap::error::ErrorKind::UnknownArgument && !expanded.unknown.is_empty() {
            usage::unrecognized(&expanded.unknown)
        } else {
            usage::from_clap(e)
        }
    })?;
    let mut parsed = collect(&matches);
    usage::check_types(&mut parsed.settings)?;
    if !expanded.unknown.is_empty() {
        return Err(usage::unrecognized(&expanded.unknown));
    }
    Ok(parsed)
}

fn collect(m: &ArgMatches) -> Parsed {
    let mut parsed = Parsed {
        app_module: m.get_one::<String>(APP_MODULE).cloned(),
        version: m.get_flag(VERSION),
        list_workers: m.get_flag(LIST_WORKERS),
        print_settings_doc: m.get_flag(PRINT_SETTINGS_DOC),
        ..Parsed::default()
    };
    for setting in SETTINGS {
        if setting.flags.is_empty() || setting.kind == Kind::FileOnly {
            continue;
        }
        let value = match setting.kind {
            // Only a flag that was given says anything; its absence leaves lower sources alone.
            Kind::Flag => m.get_flag(setting.name).then_some(Value::Bool(true)),
            Kind::FlagFalse => m.get_flag(setting.name).then_some(Value::Bool(false)),
            // argparse's `append` starts from an empty list on each command line, so a `-b` on
            // the command line replaces the config file's whole `bind` list.
            Kind::Append => m
                .get_many::<String>(setting.name)
                .map(|vals| Value::List(vals.map(|v| Value::Str(v.clone())).collect())),
            Kind::Value | Kind::OptionalValue { .. } | Kind::FileOnly => m
                .get_one::<String>(setting.name)
                .map(|v| Value::Str(v.clone())),
        };
        if let Some(value) = value {
            parsed.settings.push((setting.name, value));
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (&'a [&'a str], &'a [(&'a str, Value)]);

    #[test]
    fn settings_are_collected_from_flags() {
        let cases: &[Case<'_>] = &[
            (&["-w", "4"], &[("workers", Value::Int(4))]),
            (&["--workers=4"], &[("workers", Value::Int(4))]),
            (&["-w4"], &[("workers", Value::Int(4))]),
            // argparse: the last of a repeated option wins; flags may repeat.
            (
                &["-w", "2", "--workers", "3"],
                &[("workers", Value::Int(3))],
            ),
            (&["--workers", "2", "-w3"], &[("workers", Value::Int(3))]),
            (
                &["--preload", "--preload"],
                &[("preload_app", Value::Bool(true))],
            ),
            (
                &["--proxy-protocol", "v1", "--proxy-protocol"],
                &[("proxy_protocol", Value::Str("auto".into()))],
            ),
            (
                &["--log-level", "debug", "--log-level", "info"],
                &[("loglevel", Value::Str("info".into()))],
            ),
            // Prefixes of long options, as argparse's allow_abbrev.
            (&["--timeo", "5"], &[("timeout", Value::Int(5))]),
            (&["--timeo=5"], &[("timeout", Value::Int(5))]),
            (&["--prel"], &[("preload_app", Value::Bool(true))]),
            (&["--preload"], &[("preload_app", Value::Bool(true))]),
            (&["--no-sendfile"], &[("sendfile", Value::Bool(false))]),
            (
                &["-b", "127.0.0.1:1", "--bind", "[::1]:2"],
                &[(
                    "bind",
                    Value::List(vec![
                        Value::Str("127.0.0.1:1".into()),
                        Value::Str("[::1]:2".into()),
                    ]),
                )],
            ),
            (
                &["--proxy-protocol"],
                &[("proxy_protocol", Value::Str("auto".into()))],
            ),
            (
                &["--proxy-protocol", "v2"],
                &[("proxy_protocol", Value::Str("v2".into()))],
            ),
            (
                &["--limit-request-field_size", "10"],
                &[("limit_request_field_size", Value::Int(10))],
            ),
            (
                &["--log-file", "x"],
                &[("errorlog", Value::Str("x".into()))],
            ),
            (
                &["-e", "A=1", "-e", "B=2"],
                &[(
                    "raw_env",
                    Value::List(vec![Value::Str("A=1".into()), Value::Str("B=2".into())]),
                )],
            ),
            (&[], &[]),
        ];
        for (argv, want) in cases {
            let parsed = parse(argv.iter().copied()).unwrap();
            let got: Vec<(&str, Value)> = parsed.settings.clone();
            assert_eq!(got, want.to_vec(), "{argv:?}");
        }
    }

    #[test]
    fn help_summaries_are_first_sentences() {
        let cases: &[(&str, &str)] = &[
            ("One line.", "One line."),
            ("First part\ncontinues. Second.", "First part continues."),
            ("No period", "No period"),
            ("Uses `a.b` names. More.", "Uses `a.b` names."),
            ("Tags, e.g. `a:b`. More.", "Tags, e.g. `a:b`."),
            ("Tags, i.e. these. More.", "Tags, i.e. these."),
        ];
        for (doc, want) in cases {
            assert_eq!(summary(doc), *want, "{doc:?}");
        }
    }

    #[test]
    fn positional_app_and_specials() {
        let p = parse(["-w", "2", "hello:app"]).unwrap();
        assert_eq!(p.app_module.as_deref(), Some("hello:app"));
        assert_eq!(p.get("workers"), Some(&Value::Int(2)));
        assert!(parse(["--version"]).unwrap().version);
        assert!(parse(["-v"]).unwrap().version);
        assert!(parse(["--list-workers"]).unwrap().list_workers);
        assert!(parse(["--print-settings-doc"]).unwrap().print_settings_doc);
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        let cases: &[(&[&str], i32)] = &[
            (&["--no-such-flag"], 2),
            (&["-w"], 2),
            (&["a:app", "b:app"], 2),
            (&["-w", "abc"], 2),
            (&["--re"], 2),
            (&["--wokers", "3"], 2),
            (&["--help"], 0),
        ];
        for (argv, code) in cases {
            let err = parse(argv.iter().copied()).unwrap_err();
            assert_eq!(err.exit_code(), *code, "{argv:?}");
        }
    }

    #[test]
    fn every_flag_in_the_table_is_accepted() {
        for setting in SETTINGS {
            for flag in setting.flags {
                let argv: Vec<&str> = match setting.kind {
                    Kind::Flag | Kind::FlagFalse | Kind::OptionalValue { .. } => vec![flag],
                    _ => vec![flag, "1"],
                };
                let parsed = parse(argv.iter().copied()).unwrap_or_else(|e| panic!("{flag}: {e}"));
                assert!(parsed.get(setting.name).is_some(), "{flag}");
            }
        }
    }
}
