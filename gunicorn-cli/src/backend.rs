//! The calls from the command into the other crates: the arbiter (gunicorn-core) and the Python
//! application loader (gunicorn-python). Kept in one small module so `run()` reads as the boot
//! sequence and the cross-crate surface it uses is visible in one place.

use gunicorn_core::registry::WorkerClass;
use gunicorn_core::Config;
use gunicorn_python::app::AppLoadError;

/// `--check-config` could not load the application. It displays as the text gunicorn prints
/// after "Error while loading the application:".
#[derive(Debug, thiserror::Error)]
pub enum CheckAppError {
    /// A Python exception: its traceback, without the final newline.
    #[error("{}", .traceback.trim_end())]
    Exception {
        /// The formatted traceback.
        traceback: String,
    },
    /// Any other failure: its one-line explanation.
    #[error("{0}")]
    Load(AppLoadError),
}

impl From<AppLoadError> for CheckAppError {
    fn from(e: AppLoadError) -> CheckAppError {
        match e {
            AppLoadError::Exception { traceback, .. } => CheckAppError::Exception { traceback },
            other => CheckAppError::Load(other),
        }
    }
}

/// Loads the application in this process, as `--check-config` does.
pub fn check_app(cfg: &Config) -> Result<(), CheckAppError> {
    gunicorn_python::app::load(cfg)?;
    Ok(())
}

/// `--preload`: loads the application in the master before forking.
pub fn preload(cfg: &Config) -> Result<(), AppLoadError> {
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
    // The dirty arbiter (gunicorn 25+), when dirty_workers and dirty_apps ask for one.
    let dirty = match gunicorn_python::dirty::sidecar(&cfg) {
        Ok(d) => d,
        Err(e) => {
            gunicorn_core::log_error!("{e}");
            return 1;
        }
    };
    match gunicorn_core::Arbiter::new(cfg, class, Box::new(gunicorn_python::PythonHooks)) {
        Ok(mut arbiter) => {
            arbiter.on_reload(reload);
            if let Some(d) = dirty {
                arbiter.add_sidecar(Box::new(d));
            }
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
