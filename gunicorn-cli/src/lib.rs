//! The `gunicorn` command as a library.
//!
//! [`run`] is the whole command: the `gunicorn` binary's `main` only calls it. A custom binary
//! that links extra worker crates (their `register_worker!` registrations are collected at link
//! time) calls it the same way, and those classes become available to `-k`.
//!
//! The boot sequence follows gunicorn's `WSGIApplication` (`app/base.py`, `app/wsgiapp.py`):
//! parse the command line and `$GUNICORN_CMD_ARGS`, load the config file, apply defaults < file <
//! env < command line, then `--print-config` / `--check-config`, else resolve the worker class
//! and run the arbiter.

pub mod args;
mod backend;
pub mod ctl;
mod dirty_sources;
mod print_config;
mod python_module;
pub mod settings_doc;
pub mod shell_words;
pub mod sources;
pub mod usage;
pub mod workers;

// The sync worker is the default class: make sure its registration is linked in.
use gunicorn_sync as _;
// The greenlet workers (`-k gevent`, `-k eventlet`).
use gunicorn_greenlet as _;
// The gthread worker (`-k gthread`, and `-k sync --threads N`).
use gunicorn_gthread as _;
// The asgi worker (`-k asgi`, and the uvicorn worker class names).
use gunicorn_asgi as _;

use std::ffi::OsString;

use gunicorn_core::config::ValueError;
use gunicorn_core::{Config, ConfigError, Value, VERSION};
use gunicorn_python::app::AppLoadError;

/// Exit status for configuration errors (gunicorn's `sys.exit(1)`).
pub(crate) const EXIT_CONFIG: i32 = 1;

/// Runs the `gunicorn` command with this process's arguments and environment, and returns the
/// exit status.
pub fn run() -> i32 {
    run_with(std::env::args_os().skip(1).collect())
}

/// Runs the `gunicorn` command with `argv` (without the program name).
pub fn run_with(argv_words: Vec<OsString>) -> i32 {
    run_layered(argv_words, Vec::new())
}

/// Runs the `gunicorn` command with `argv`, where `app_settings` (from an embedding program:
/// gunicorn's `Application.init()` and `cfg.set()`) sit between the defaults and the config
/// file: defaults < `app_settings` < config file < `$GUNICORN_CMD_ARGS` < command line.
pub fn run_layered(argv_words: Vec<OsString>, app_settings: Vec<(String, Value)>) -> i32 {
    gunicorn_python::builtin_package::set_package_sources(dirty_sources::SOURCES);
    let argv = match args::parse(argv_words.clone()) {
        Ok(p) => p,
        Err(e) => return clap_exit(&e),
    };
    if argv.version {
        println!("gunicorn (version {VERSION})");
        return 0;
    }
    if argv.list_workers {
        print!("{}", workers::listing());
        return 0;
    }
    if argv.print_settings_doc {
        print!("{}", settings_doc::markdown());
        return 0;
    }
    let env = match env_args() {
        Ok(p) => p,
        Err(status) => return status,
    };
    let cfg = match load_config(&argv, &env, app_settings.clone()) {
        Ok(cfg) => cfg,
        Err(status) => return status,
    };
    boot(
        cfg,
        Box::new(move || {
            let cfg = reload_config(&argv_words, app_settings.clone())?;
            // gunicorn's arbiter logs the configuration again on each reload.
            print_config::log_debug_dump(&cfg);
            Ok(cfg)
        }),
    )
}

/// Runs the server with exactly `settings` over the defaults: no command line, no
/// `$GUNICORN_CMD_ARGS`, no config file, as gunicorn's `BaseApplication` (whose `load_config()`
/// the embedding program writes). HUP keeps these settings and replaces the workers.
pub fn run_settings(settings: Vec<(String, Value)>) -> i32 {
    let none = args::Parsed::default();
    let cfg = match sources::build_config(settings, &none, &none) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("Error: {e}");
            return EXIT_CONFIG;
        }
    };
    let kept = cfg.clone();
    boot(cfg, Box::new(move || Ok(kept.clone())))
}

/// The boot sequence once the configuration is known: logging, `--chdir`, the worker class,
/// `--print-config` / `--check-config`, `--preload`, then the arbiter.
fn boot(mut cfg: Config, reload: gunicorn_core::ReloadFn) -> i32 {
    if let Err(e) = backend::prepare_paste(&mut cfg) {
        eprintln!("Error: {e}");
        return EXIT_CONFIG;
    }
    if cfg.wsgi_app.is_none() && !backend::has_app_source(&cfg) {
        // gunicorn raises ConfigError("No application module specified.") in load_config, and
        // BaseApplication.do_load_config prints it after a blank line and exits 1.
        eprintln!("\nError: No application module specified.");
        return EXIT_CONFIG;
    }
    if let Err(e) = gunicorn_core::log::setup(&cfg) {
        eprintln!("Error: {e}");
        return EXIT_CONFIG;
    }
    // logconfig_dict / --log-config-json / --log-config: Python logging is configured in the
    // master, as gunicorn does, so the arbiter's own lines follow the configuration too.
    if let Err(e) = gunicorn_python::logging::install_in_master(&cfg) {
        eprintln!("Error: {}", e.to_string().trim_end());
        return EXIT_CONFIG;
    }
    if let Err(e) = apply_raw_env(&cfg) {
        eprintln!("Error: {e}");
        return EXIT_CONFIG;
    }
    // gunicorn changes to --chdir in the master, before binding: relative unix-socket, pidfile
    // and log paths are taken from there.
    if let Err(e) = gunicorn_python::app::enter_working_dir(&cfg) {
        eprintln!("Error: {e}");
        return EXIT_CONFIG;
    }
    // Resolved before --check-config so that a bad -k is a configuration error it reports.
    let class = match workers::resolve(&cfg) {
        Ok(class) => class,
        Err(e) => {
            eprintln!("Error: {e}");
            return EXIT_CONFIG;
        }
    };
    if cfg.print_config {
        print!("{}", print_config::render(&cfg));
    }
    if cfg.print_config || cfg.check_config {
        return match backend::check_app(&cfg) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("\nError while loading the application:\n\n{e}");
                EXIT_CONFIG
            }
        };
    }
    // The standard-library modules gunicorn's master has before it forks, when Python runs in
    // ours: every worker then shares them (master_imports). Before --spew, which would trace them.
    if let Err(e) = gunicorn_python::master_imports::import_in_master(&cfg) {
        eprintln!("Error: {e}");
        return EXIT_CONFIG;
    }
    // gunicorn's `debug.spew()` comes after --check-config, before the arbiter starts.
    if let Err(e) = gunicorn_python::spew::start_in_master(&cfg) {
        eprintln!("Error: {e}");
        return EXIT_CONFIG;
    }
    // gunicorn's arbiter logs its configuration before it preloads the application.
    print_config::log_debug_dump(&cfg);
    if cfg.preload_app {
        // gunicorn loads a preloaded application in Arbiter.setup, outside any handler: the
        // exception's traceback, and exit 1 whatever the error.
        if let Err(e) = backend::preload(&cfg) {
            match e {
                AppLoadError::Exception { traceback, .. } => eprintln!("{}", traceback.trim_end()),
                other => eprintln!("{other}"),
            }
            return EXIT_CONFIG;
        }
    }
    backend::run_arbiter(cfg, class, reload)
}

/// Why HUP could not read the configuration again. The arbiter logs it as one line and keeps
/// the old settings.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    /// The command line, or `$GUNICORN_CMD_ARGS`, no longer parses.
    #[error("{0}")]
    Args(#[from] usage::UsageError),
    /// `$GUNICORN_CMD_ARGS` cannot be split into words.
    #[error("GUNICORN_CMD_ARGS: {0}")]
    EnvWords(#[from] shell_words::SplitError),
    /// The current directory, where a config file is looked for, is unreadable.
    #[error("{0}")]
    Cwd(#[from] std::io::Error),
    /// The config file failed to load.
    #[error("{0}")]
    ConfigFile(#[from] gunicorn_python::config_file::ConfigFileError),
    /// A setting's value is refused.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The `--paste` ini is unusable.
    #[error("{0}")]
    Paste(#[from] gunicorn_python::paste::PasteError),
}

/// HUP: the configuration is read again from every source (gunicorn's `app.reload()`), with the
/// same command line.
fn reload_config(
    argv_words: &[OsString],
    app_settings: Vec<(String, Value)>,
) -> Result<Config, ReloadError> {
    let argv = args::parse(argv_words.to_vec())?;
    let env = match std::env::var_os("GUNICORN_CMD_ARGS") {
        Some(text) => args::parse(shell_words::split(&text.to_string_lossy())?)?,
        None => args::Parsed::default(),
    };
    let cwd = std::env::current_dir()?;
    let mut layers = app_settings;
    if let Some(location) = sources::config_location(&argv, &env, &cwd) {
        layers.extend(gunicorn_python::config_file::load(&location)?);
    }
    let mut cfg = sources::build_config(layers, &env, &argv)?;
    backend::prepare_paste(&mut cfg)?;
    apply_raw_env(&cfg)?;
    gunicorn_python::server_hooks::set_config(&cfg);
    Ok(cfg)
}

/// Prints a usage error or the help text; returns argparse's status (2, or 0 for `--help`).
fn clap_exit(e: &usage::UsageError) -> i32 {
    e.print();
    e.exit_code()
}

/// `$GUNICORN_CMD_ARGS`, split like `shlex.split` and parsed with the same parser as argv.
fn env_args() -> Result<args::Parsed, i32> {
    let Some(text) = std::env::var_os("GUNICORN_CMD_ARGS") else {
        return Ok(args::Parsed::default());
    };
    let words = shell_words::split(&text.to_string_lossy()).map_err(|e| {
        eprintln!("Error: GUNICORN_CMD_ARGS: {e}");
        EXIT_CONFIG
    })?;
    args::parse(words).map_err(|e| clap_exit(&e))
}

/// Loads the config file (if any) and applies every source in precedence order, with
/// `app_settings` just above the defaults.
fn load_config(
    argv: &args::Parsed,
    env: &args::Parsed,
    app_settings: Vec<(String, Value)>,
) -> Result<Config, i32> {
    let cwd = std::env::current_dir().map_err(|e| {
        eprintln!("Error: cannot read the current directory: {e}");
        EXIT_CONFIG
    })?;
    let location = sources::config_location(argv, env, &cwd);
    let mut layers = app_settings;
    let file = match &location {
        Some(location) => gunicorn_python::config_file::load(location).map_err(|e| {
            match e {
                // gunicorn prints "Failed to read config file: ..." and the traceback as is.
                gunicorn_python::config_file::ConfigFileError::Exception { .. } => eprint!("{e}"),
                _ => eprintln!("Error: {e}"),
            }
            EXIT_CONFIG
        })?,
        None => Vec::new(),
    };
    layers.extend(file);
    let mut cfg = sources::build_config(layers, env, argv).map_err(|e| {
        eprintln!("Error: {e}");
        EXIT_CONFIG
    })?;
    // --print-config shows the file that was read, also when it was found in the cwd.
    if cfg.config.is_none() {
        cfg.config = location;
    }
    Ok(cfg)
}

/// `-e KEY=VALUE`: set in this process's environment, so the master and every forked worker
/// (and the application) see it, as gunicorn's arbiter does in `setup()`.
fn apply_raw_env(cfg: &Config) -> Result<(), ConfigError> {
    for entry in &cfg.raw_env {
        let invalid = || ConfigError::Invalid {
            name: "raw_env",
            value: entry.clone(),
            reason: ValueError::MustBe("KEY=VALUE"),
        };
        let (key, value) = entry.split_once('=').ok_or_else(invalid)?;
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            return Err(invalid());
        }
        // The command is still single-threaded here: nothing reads the environment concurrently.
        std::env::set_var(key, value);
    }
    Ok(())
}
