//! PasteDeploy applications (`--paste development.ini[#section]`), as gunicorn's
//! `app/pasterapp.py` and `app/wsgiapp.py` load them:
//!
//! - the ini path is made absolute against the directory the server started in, and must exist
//!   (`'PATH' not found`, exit 1);
//! - when the file has a `[loggers]` section and no `logconfig` was given, it is the logging
//!   configuration (`logging.config.fileConfig`), as gunicorn's `init()` sets it;
//! - the process name defaults to the ini path;
//! - the application is `paste.deploy.loadapp("config:PATH[#section]", relative_to=cwd,
//!   global_conf={--paste-global KEY=VALUE...})`, called where the application is loaded (each
//!   worker, or the master with `--preload`).

use std::path::{Path, PathBuf};

use gunicorn_core::Config;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A `--paste` or `--paste-global` value that cannot be used. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum PasteError {
    /// The ini file does not exist (gunicorn's ConfigError `%r not found`).
    #[error("'{0}' not found")]
    NotFound(String),
    /// A `--paste-global` entry without an unescaped `=`.
    #[error("invalid value for raw_paste_global_conf: {0}: must be KEY=VALUE")]
    GlobalConf(String),
}

/// Resolves `--paste` in the master, before anything is forked: the path made absolute (the
/// `#section` kept), the file checked, `logconfig` defaulted to the ini when it has loggers, the
/// process name defaulted to the ini path, and every `--paste-global` entry checked.
pub fn prepare(cfg: &mut Config, start_dir: &Path) -> Result<(), PasteError> {
    for entry in &cfg.raw_paste_global_conf {
        split_global(entry).ok_or_else(|| PasteError::GlobalConf(entry.clone()))?;
    }
    let Some(uri) = cfg.paste.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let (file, section) = match uri.split_once('#') {
        Some((f, s)) => (f, Some(s)),
        None => (uri, None),
    };
    let file = absolute(start_dir, file);
    if !file.is_file() {
        return Err(PasteError::NotFound(file.display().to_string()));
    }
    let shown = file.display().to_string();
    if cfg.logconfig.is_none() && has_logging_config(&file) {
        cfg.logconfig = Some(shown.clone());
    }
    if cfg.proc_name.is_none() {
        cfg.proc_name = Some(shown.clone());
    }
    cfg.paste = Some(match section {
        Some(s) => format!("{shown}#{s}"),
        None => shown,
    });
    Ok(())
}

fn absolute(start_dir: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        start_dir.join(path)
    }
}

/// gunicorn's `has_logging_config`: the ini file has a `[loggers]` section (configparser
/// section names are case-sensitive; surrounding blanks are allowed).
pub fn has_logging_config(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .map(|text| text.lines().any(|line| line.trim() == "[loggers]"))
        .unwrap_or(false)
}

/// Splits `KEY=VALUE` at the first `=` not preceded by a backslash, and turns `\=` into `=` on
/// both sides, as gunicorn's `Config.paste_global_conf` does.
fn split_global(entry: &str) -> Option<(String, String)> {
    let bytes = entry.as_bytes();
    let at = (0..bytes.len()).find(|&i| bytes[i] == b'=' && (i == 0 || bytes[i - 1] != b'\\'))?;
    let unescape = |s: &str| s.replace("\\=", "=");
    Some((unescape(&entry[..at]), unescape(&entry[at + 1..])))
}

/// `paste.deploy.loadapp` on the prepared `--paste` value, relative to the working directory,
/// with the `--paste-global` pairs as `global_conf`.
pub fn load_app(py: Python<'_>, uri: &str, global_conf: &[String]) -> PyResult<Py<PyAny>> {
    let loadapp = py.import("paste.deploy")?.getattr("loadapp")?;
    let config_uri = if uri.contains(':') {
        uri.to_string()
    } else {
        format!("config:{uri}")
    };
    let kwargs = PyDict::new(py);
    let cwd = py.import("os")?.call_method0("getcwd")?;
    kwargs.set_item("relative_to", cwd)?;
    let globals = PyDict::new(py);
    for (key, value) in global_conf.iter().filter_map(|e| split_global(e)) {
        globals.set_item(key, value)?;
    }
    kwargs.set_item("global_conf", globals)?;
    Ok(loadapp.call((config_uri,), Some(&kwargs))?.unbind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_conf_entries() {
        let cases = [
            ("a=b", Some(("a", "b"))),
            ("a=b=c", Some(("a", "b=c"))),
            ("a\\=x=y", Some(("a=x", "y"))),
            ("k=v\\=w", Some(("k", "v=w"))),
            ("=v", Some(("", "v"))),
            ("novalue", None),
            ("only\\=escaped", None),
        ];
        for (entry, want) in cases {
            let got = split_global(entry);
            assert_eq!(
                got.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
                want,
                "{entry}"
            );
        }
    }

    #[test]
    fn prepare_resolves_the_ini() {
        let dir = std::env::temp_dir().join(format!("paste-prepare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("with-log.ini"),
            "[app:main]\nuse = x\n\n[loggers]\nkeys = root\n",
        )
        .unwrap();
        std::fs::write(dir.join("plain.ini"), "[app:main]\nuse = x\n").unwrap();

        let mut cfg = Config {
            paste: Some("with-log.ini#main".into()),
            ..Config::default()
        };
        prepare(&mut cfg, &dir).unwrap();
        let abs = dir.join("with-log.ini").display().to_string();
        assert_eq!(cfg.paste.as_deref(), Some(format!("{abs}#main").as_str()));
        assert_eq!(cfg.logconfig.as_deref(), Some(abs.as_str()));
        assert_eq!(cfg.proc_name.as_deref(), Some(abs.as_str()));

        let mut cfg = Config {
            paste: Some("plain.ini".into()),
            proc_name: Some("mine".into()),
            ..Config::default()
        };
        prepare(&mut cfg, &dir).unwrap();
        assert_eq!(cfg.logconfig, None);
        assert_eq!(cfg.proc_name.as_deref(), Some("mine"));

        let mut cfg = Config {
            paste: Some("missing.ini".into()),
            ..Config::default()
        };
        let err = prepare(&mut cfg, &dir).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("'{}' not found", dir.join("missing.ini").display())
        );

        let mut cfg = Config {
            raw_paste_global_conf: vec!["nokey".into()],
            ..Config::default()
        };
        assert!(matches!(
            prepare(&mut cfg, &dir),
            Err(PasteError::GlobalConf(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
