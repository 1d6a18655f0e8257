//! The calls from the command into the other crates: the arbiter (gunicorn-core) and the Python
//! application loader (gunicorn-python). Kept in one small module so `run()` reads as the boot
//! sequence and the cross-crate surface it uses is visible in one place.

use gunicorn_core::registry::WorkerClass;
use gunicorn_core::Config;

/// Loads the application in this process, as `--check-config` does. The error comes back as
/// the text gunicorn prints after "Error while loading the application:": the traceback of a
/// Python exception, or the one-line explanation.
pub fn check_app(cfg: &Config) -> Result<(), String> {
    use gunicorn_python::app::AppLoadError;
    match gunicorn_python::app::load(cfg) {
        Ok(_) => Ok(()),
        Err(AppLoadError::Exception { traceback, .. }) => Err(traceback.trim_end().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// `--preload`: loads the application in the master before forking.
pub fn preload(cfg: &Config) -> Result<(), gunicorn_python::app::AppLoadError> {
    gunicorn_python::app::preload(cfg)
}

/// Runs the arbiter until it halts; returns the process exit status. `reload` re-reads the
/// configuration on HUP, as gunicorn's `app.reload()` does.
pub fn run_arbiter(
    cfg: Config,
    class: &'static WorkerClass,
    reload: gunicorn_core::ReloadFn,
) -> i32 {
    // What the server hooks see as `server.cfg`.
    gunicorn_python::server_hooks::set_config(&cfg);
    match gunicorn_core::Arbiter::new(cfg, class, Box::new(gunicorn_python::PythonHooks)) {
        Ok(mut arbiter) => {
            arbiter.on_reload(reload);
            arbiter.run()
        }
        Err(e) => {
            gunicorn_core::log_error!("{e}");
            e.exit_status()
        }
    }
}

/// `--paste`: the ini made absolute and checked, its logging and process name applied (see
/// `gunicorn_python::paste`). Paths are taken from the directory the command started in.
pub fn prepare_paste(cfg: &mut Config) -> Result<(), gunicorn_python::paste::PasteError> {
    let start = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("/"));
    gunicorn_python::paste::prepare(cfg, &start)
}

/// Whether the application comes from somewhere other than APP_MODULE / `wsgi_app`: `--paste`,
/// or a loader set by an embedding Python program.
pub fn has_app_source(cfg: &Config) -> bool {
    gunicorn_python::app::has_source_besides_uri(cfg)
}
