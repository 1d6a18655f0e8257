//! Where the configuration comes from, and in which order it is applied.
//!
//! gunicorn (`Application.load_config`) applies, later winning: the defaults, the config file,
//! `$GUNICORN_CMD_ARGS`, then the command line. The config file is the `-c` of the command line,
//! else the `-c` of `$GUNICORN_CMD_ARGS`, else `./gunicorn.conf.py` when it exists. The positional
//! APP_MODULE of the command line sets `wsgi_app` last; one in `$GUNICORN_CMD_ARGS` is ignored,
//! as gunicorn ignores it.

use std::path::Path;

use gunicorn_core::{Config, ConfigError, Value};

use crate::args::Parsed;

/// The config file to load, if any.
pub fn config_location(argv: &Parsed, env: &Parsed, cwd: &Path) -> Option<String> {
    let given = |p: &Parsed| match p.get("config") {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    given(argv).or_else(|| given(env)).or_else(|| {
        let default = cwd.join("gunicorn.conf.py");
        default
            .exists()
            .then(|| default.to_string_lossy().into_owned())
    })
}

/// Builds the configuration from the defaults, then `file`, `env` and `argv`.
pub fn build_config(
    file: Vec<(String, Value)>,
    env: &Parsed,
    argv: &Parsed,
) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    for (name, value) in file {
        cfg.set(&name, value)?;
    }
    for source in [env, argv] {
        for (name, value) in &source.settings {
            cfg.set(name, value.clone())?;
        }
    }
    if let Some(app) = &argv.app_module {
        cfg.set("wsgi_app", Value::Str(app.clone()))?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse;

    #[test]
    fn precedence_is_defaults_file_env_argv() {
        let file = vec![
            ("workers".to_string(), Value::Int(2)),
            ("timeout".to_string(), Value::Int(5)),
            ("backlog".to_string(), Value::Int(7)),
            ("wsgi_app".to_string(), Value::Str("file:app".into())),
        ];
        let env = parse(["-w", "3", "-t", "6", "env:app"]).unwrap();
        let argv = parse(["-w", "4"]).unwrap();
        let cfg = build_config(file, &env, &argv).unwrap();
        assert_eq!(cfg.workers, 4, "argv wins");
        assert_eq!(cfg.timeout, 6, "env beats the file");
        assert_eq!(cfg.backlog, 7, "the file beats the default");
        assert_eq!(cfg.graceful_timeout, 30, "default");
        assert_eq!(
            cfg.wsgi_app.as_deref(),
            Some("file:app"),
            "env APP_MODULE ignored"
        );
        let argv = parse(["cli:app"]).unwrap();
        let cfg = build_config(Vec::new(), &env, &argv).unwrap();
        assert_eq!(cfg.wsgi_app.as_deref(), Some("cli:app"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let argv = parse(["-w", "-3"]).unwrap();
        let err = build_config(Vec::new(), &Parsed::default(), &argv).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for workers: -3: must be a positive integer"
        );
    }

    #[test]
    fn config_file_search_order() {
        let dir = std::env::temp_dir().join(format!("gunicorn-cli-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let none = Parsed::default();
        assert_eq!(config_location(&none, &none, &dir), None);
        std::fs::write(dir.join("gunicorn.conf.py"), "").unwrap();
        let default = dir.join("gunicorn.conf.py").to_string_lossy().into_owned();
        assert_eq!(config_location(&none, &none, &dir), Some(default));
        let env = parse(["-c", "env.py"]).unwrap();
        let argv = parse(["-c", "argv.py"]).unwrap();
        assert_eq!(
            config_location(&none, &env, &dir).as_deref(),
            Some("env.py")
        );
        assert_eq!(
            config_location(&argv, &env, &dir).as_deref(),
            Some("argv.py")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
