//! `docs/settings.md`, generated from the settings table (`gunicorn --print-settings-doc`).
//!
//! A test (`tests/settings_doc.rs`) regenerates it and fails when the committed file is stale;
//! run it with `GUNICORN_UPDATE_DOCS=1` to rewrite the file.

use std::fmt::Write;

use gunicorn_core::config::{Kind, SETTINGS};
use gunicorn_core::gunicorn27::GUNICORN27_SETTINGS;

const INTRO: &str = "\
# Settings

This page is generated from the settings table in `gunicorn-core/src/config.rs` and gunicorn 27's
list in `gunicorn-core/src/gunicorn27.rs` by `gunicorn --print-settings-doc`; do not edit it by hand (a test fails when it is stale, and
`GUNICORN_UPDATE_DOCS=1 cargo test -p gunicorn-cli --test settings_doc` rewrites it).

Names and flags are gunicorn's. Settings are applied in this order, later ones winning:

1. the defaults below;
2. the config file: `-c/--config` on the command line, else `-c` in `$GUNICORN_CMD_ARGS`, else
   `./gunicorn.conf.py` when it exists. It is Python: every module-level name that is a setting is
   applied (`workers = multiprocessing.cpu_count() * 2 + 1`);
3. `$GUNICORN_CMD_ARGS`, split like a shell command line (Python's `shlex.split`);
4. the command line.

A value that is not valid for its setting stops the server with one line naming the setting and
the value, and exit status 1. An exception raised by the config file prints its traceback, exit 1.

**Unknown names in the config file.** Like gunicorn, names that are not settings are ignored, so
a config file may import modules, define helpers and server hooks. Unlike gunicorn, an unknown
*lowercase* name bound to plain data (a string, number, boolean, list, tuple or dict) is reported
with one warning line, `Ignoring unknown setting NAME = VALUE in config file ...`: such a name is
almost always a misspelt setting (`worker = 4`), and gunicorn would ignore it silently. Names
starting with `_`, names with capitals, modules, functions and classes are never reported.

**gunicorn settings this server does not have are refused.** A gunicorn 27 setting or server
hook that the table below does not mark \"yes\" stops the server when a config file sets it, with
one line and exit status 1:
`Error: NAME = VALUE in config file: not supported by this server yet (see docs/settings.md)`
(\"not supported by this server\" for the ones refused by design), unless the value asks for
nothing: gunicorn's default, or `None` (accepted without a word, as it changes nothing). On the command line their flags are unknown options
(exit 2).

**The `ssl_context` hook is refused.** gunicorn's `ssl_context(config, default_ssl_context_factory)`
returns a Python `ssl.SSLContext`, which this server's TLS (rustls, off the GIL) cannot use: a
config file defining it stops the server with one line and exit status 1, rather than being
ignored. The SSL settings below cover what it is used for; see [tls.md](tls.md).
";

/// The whole page.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    gunicorn27_table(&mut out);
    let mut section = "";
    for setting in SETTINGS {
        if setting.section != section {
            section = setting.section;
            let _ = write!(out, "\n## {section}\n");
        }
        let _ = write!(out, "\n### `{}`\n\n", setting.name);
        let _ = writeln!(out, "- Command line: {}", command_line(setting));
        let _ = writeln!(out, "- Default: `{}`", documented_default(setting));
        if !setting.choices.is_empty() {
            let _ = writeln!(out, "- One of: `{}`", setting.choices.join("`, `"));
        }
        out.push('\n');
        for line in setting.doc.lines() {
            let _ = writeln!(out, "{}", line.trim());
        }
    }
    out
}

/// The default as the page shows it: the value, except where it depends on the environment of
/// whoever generates the page (the control socket under `$HOME`), shown as gunicorn words it.
fn documented_default(setting: &gunicorn_core::Setting) -> String {
    match setting.name {
        "control_socket" => "$XDG_RUNTIME_DIR/gunicorn.ctl or $HOME/.gunicorn/gunicorn.ctl".into(),
        _ => setting.default_text(),
    }
}

/// All of gunicorn 27.0.1's settings, with what this server does with each.
fn gunicorn27_table(out: &mut String) {
    let supported = GUNICORN27_SETTINGS
        .iter()
        .filter(|s| s.here.is_supported())
        .count();
    let _ = write!(
        out,
        "\n## gunicorn 27's settings here\n\n\
         gunicorn 27.0.1 has {} settings (server hooks included); {supported} of them work here.\n\
         \"yes\" means the setting below, or the server hook, works as in gunicorn; otherwise the\n\
         last column says what happens instead and why.\n\n\
         | gunicorn setting | Section | Command line | gunicorn's default | Here |\n\
         |---|---|---|---|---|\n",
        GUNICORN27_SETTINGS.len()
    );
    for s in GUNICORN27_SETTINGS {
        let flags = if s.flags.is_empty() {
            "-".to_string()
        } else {
            s.flags
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | `{}` | {} |",
            s.name,
            s.section,
            flags,
            s.default.replace('|', "\\|"),
            s.here.describe().replace('|', "\\|")
        );
    }
}

fn command_line(setting: &gunicorn_core::Setting) -> String {
    if setting.flags.is_empty() || setting.kind == Kind::FileOnly {
        return "none (config file only)".into();
    }
    let value = match setting.kind {
        Kind::Flag | Kind::FlagFalse => String::new(),
        Kind::OptionalValue { .. } => format!(" [{}]", setting.meta),
        Kind::Value | Kind::Append | Kind::FileOnly => format!(" {}", setting.meta),
    };
    let flags: Vec<String> = setting
        .flags
        .iter()
        .map(|f| format!("`{f}{value}`"))
        .collect();
    let mut text = flags.join(", ");
    if setting.kind == Kind::Append {
        text.push_str(" (repeatable)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_heading() {
        let page = markdown();
        for setting in SETTINGS {
            assert!(
                page.contains(&format!("### `{}`", setting.name)),
                "{}",
                setting.name
            );
        }
    }
}
