//! The part of a Python worker's boot that the sync, gthread and greenlet classes share: load
//! the application, read the HTTP settings and build the WSGI bridge (gunicorn's
//! `Worker.init_process` up to `load_wsgi`), and turn the inherited listeners into non-blocking
//! ones with the address each reports in the environ.

use std::sync::Arc;

use gunicorn_core::{Config, Listener, WorkerError};
use gunicorn_http::{HttpConfig, Local};
use pyo3::{PyErr, Python};

use crate::app;
use crate::wsgi::{Bridge, BridgeOptions};

/// Loads the application (Python starts here unless it was inherited, preloaded; `raw_env`,
/// `chdir` and `pythonpath` are applied by the loader), then reads the HTTP settings (after
/// `raw_env`, so `SCRIPT_NAME` from `-e` counts), builds the bridge and runs the
/// `post_worker_init` hook.
///
/// An exception while loading is `WorkerError::Boot` with its traceback (gunicorn's exit 3); a
/// one-line load error (gunicorn's `AppImportError`) is `WorkerError::AppLoad` (exit 4), whose
/// message the arbiter prints. Anything else failing is `WorkerError::Boot` too.
pub fn load_app_and_bridge(
    cfg: &Config,
    opts: BridgeOptions,
) -> Result<(Bridge, Arc<HttpConfig>), WorkerError> {
    one_malloc_arena(|name| std::env::var_os(name));
    // --spew: traced from before the application is imported, as in gunicorn.
    crate::spew::start(cfg).map_err(|e| WorkerError::Boot(e.to_string()))?;
    let app = app::load(cfg).map_err(|e| match e {
        // gunicorn's spawn_worker: an exception (ImportError, SyntaxError, anything the module
        // raises) is "Exception in worker process", its traceback and str(e), exit 3 ("Worker
        // failed to boot."); only AppImportError (no such attribute, not callable) is exit 4.
        app::AppLoadError::Exception { message, traceback } => {
            WorkerError::Boot(format!("{}\n{message}", traceback.trim_end()))
        }
        // The interpreter could not start (e.g. the worker's user cannot read the venv): the
        // worker failed to boot, gunicorn's exit 3.
        app::AppLoadError::Interpreter(e) => WorkerError::Boot(e.to_string()),
        other => WorkerError::AppLoad(other.to_string()),
    })?;
    let http =
        Arc::new(gunicorn_serve::http_config(cfg).map_err(|e| WorkerError::Boot(e.to_string()))?);
    let bridge = Python::attach(|py| {
        let bridge = Bridge::new(py, &app, opts)?;
        // gunicorn runs post_worker_init once the worker's application is loaded (its
        // `load_wsgi`), before the first request.
        crate::reload::mark_app_loaded();
        crate::server_hooks::post_worker_init(py);
        Ok::<_, PyErr>(bridge)
    })
    .map_err(|e| WorkerError::Boot(e.to_string()))?;
    Ok((bridge, http))
}

/// Makes the worker's threads share one glibc malloc arena, unless the user set a limit in the
/// environment. By default glibc gives each thread that allocates concurrently its own arena
/// (up to 8 per core), and each arena keeps what was freed in it: after 1 MiB uploads every
/// pool thread of a gthread worker held its own freed megabyte or two (22 MiB per worker
/// instead of 15-17). The threads run Python under the GIL, so separate arenas bought no
/// measurable speed (hello keep-alive and Flask CPU per request unchanged).
fn one_malloc_arena(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    if user_chose_arenas(env) {
        return false;
    }
    crate::sys::limit_malloc_arenas(1)
}

/// `MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`, is set.
fn user_chose_arenas(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    env("MALLOC_ARENA_MAX").is_some()
        || env("GLIBC_TUNABLES")
            .is_some_and(|t| t.to_string_lossy().contains("glibc.malloc.arena_max"))
}

/// The listeners made non-blocking, each with the address the environ reports for it
/// (`SERVER_NAME`/`SERVER_PORT`, or the socket path for a unix listener).
pub fn nonblocking_listeners(
    listeners: Vec<Listener>,
) -> Result<Vec<(Listener, Local)>, WorkerError> {
    let boot = |e: std::io::Error| WorkerError::Boot(e.to_string());
    let mut out = Vec::with_capacity(listeners.len());
    for l in listeners {
        l.set_nonblocking(true).map_err(boot)?;
        let local = gunicorn_serve::addr::local(l.local_addr().map_err(boot)?);
        out.push((l, local));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_users_arena_limit_wins() {
        let cases: [(&[(&str, &str)], bool); 5] = [
            (&[], false),
            (&[("MALLOC_ARENA_MAX", "4")], true),
            (&[("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")], true),
            (
                &[(
                    "GLIBC_TUNABLES",
                    "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=3",
                )],
                true,
            ),
            (&[("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")], false),
        ];
        for (vars, want) in cases {
            let env = |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            };
            assert_eq!(user_chose_arenas(env), want, "{vars:?}");
        }
    }
}
