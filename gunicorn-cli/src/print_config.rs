//! gunicorn's two views of the whole configuration: `--print-config` (gunicorn's
//! `Config.__str__`: `name = value`, sorted by name, names padded) and the "Current
//! configuration:" dump logged at boot and after each HUP with `--log-level debug` (gunicorn's
//! `Arbiter.setup`: `  name: value`, in the order gunicorn declares its settings).
//!
//! Values are Python's `str()` of what gunicorn would hold ([`Setting::show_py`]), and a few
//! settings whose value gunicorn computes are shown as it computes them: `user` / `group` as
//! numbers (the effective ids when unset), `chdir` as the absolute working directory, `config`
//! as `./gunicorn.conf.py` when no file was given. Server hooks are listed by name: the
//! function's `__qualname__` for a hook the config file set, gunicorn's default no-op
//! (`<OnReload.on_reload()>`) otherwise.

use gunicorn_core::config::{Setting, SETTINGS};
use gunicorn_core::gunicorn27::GUNICORN27_SETTINGS;
use gunicorn_core::log::{self, Level};
use gunicorn_core::Config;
use pyo3::Python;

/// The `__qualname__` of gunicorn's default for each server hook this server runs.
const DEFAULT_HOOKS: &[(&str, &str)] = &[
    ("on_starting", "OnStarting.on_starting"),
    ("on_reload", "OnReload.on_reload"),
    ("when_ready", "WhenReady.when_ready"),
    ("pre_fork", "Prefork.pre_fork"),
    ("post_fork", "Postfork.post_fork"),
    ("post_worker_init", "PostWorkerInit.post_worker_init"),
    ("worker_int", "WorkerInt.worker_int"),
    ("worker_abort", "WorkerAbort.worker_abort"),
    ("pre_exec", "PreExec.pre_exec"),
    ("pre_request", "PreRequest.pre_request"),
    ("post_request", "PostRequest.post_request"),
    ("child_exit", "ChildExit.child_exit"),
    ("worker_exit", "WorkerExit.worker_exit"),
    ("nworkers_changed", "NumWorkersChanged.nworkers_changed"),
    ("on_exit", "OnExit.on_exit"),
    ("on_dirty_starting", "OnDirtyStarting.on_dirty_starting"),
    ("dirty_post_fork", "DirtyPostFork.dirty_post_fork"),
    ("dirty_worker_init", "DirtyWorkerInit.dirty_worker_init"),
    ("dirty_worker_exit", "DirtyWorkerExit.dirty_worker_exit"),
];

/// One setting or hook: its name, its `--print-config` text and its debug-dump text.
struct Row {
    name: &'static str,
    printed: String,
    dumped: String,
}

/// The effective uid and gid of this process (the owner of `/proc/self` on Linux), which
/// gunicorn shows for an unset `user` / `group`.
fn effective_ids() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self").ok()?;
    Some((meta.uid(), meta.gid()))
}

/// A setting's value as gunicorn's `str()` shows it (see the module's documentation).
pub fn py_value(setting: &Setting, cfg: &Config) -> String {
    match setting.name {
        "user" | "group" => {
            let is_user = setting.name == "user";
            let given = if is_user { &cfg.user } else { &cfg.group };
            let id = match given {
                None => effective_ids().map(|(u, g)| if is_user { u } else { g }),
                Some(_) => gunicorn_core::process::worker_ids(cfg)
                    .ok()
                    .flatten()
                    .map(|(u, g)| if is_user { u } else { g }),
            };
            match (id, given) {
                (Some(id), _) => id.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => "None".into(),
            }
        }
        // The server has changed to `chdir` by the time this is shown (and `--help` shows the
        // default, the working directory), as gunicorn's absolute path.
        "chdir" => match std::env::current_dir() {
            Ok(dir) => dir.to_string_lossy().into_owned(),
            Err(_) => cfg.chdir.clone().unwrap_or_else(|| "None".into()),
        },
        "config" if cfg.config.is_none() => "./gunicorn.conf.py".into(),
        _ => setting.show_py(cfg),
    }
}

fn rows(cfg: &Config) -> Vec<Row> {
    let mut rows: Vec<Row> = SETTINGS
        .iter()
        .map(|s| {
            let text = py_value(s, cfg);
            Row {
                name: s.name,
                printed: text.clone(),
                dumped: text,
            }
        })
        .collect();
    // Hooks live in the embedded interpreter only when a config file set one.
    let set = if gunicorn_python::server_hooks::any() {
        Python::attach(gunicorn_python::server_hooks::describe)
    } else {
        Vec::new()
    };
    for (name, default) in DEFAULT_HOOKS {
        let row = match set.iter().find(|(n, _, _)| n == name) {
            Some((_, qualname, repr)) => Row {
                name,
                printed: format!("<{qualname}()>"),
                dumped: repr.clone(),
            },
            None => Row {
                name,
                printed: format!("<{default}()>"),
                dumped: format!("<function {default}>"),
            },
        };
        rows.push(row);
    }
    rows
}

/// `--print-config`'s text: `name = value` lines sorted by name, each ending in a newline.
pub fn render(cfg: &Config) -> String {
    let mut rows = rows(cfg);
    rows.sort_by_key(|r| r.name);
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    rows.iter()
        .map(|r| format!("{:<width$} = {}\n", r.name, r.printed))
        .collect()
}

/// The debug dump's message: "Current configuration:" then `  name: value` lines in
/// gunicorn's order.
pub fn debug_dump(cfg: &Config) -> String {
    let mut rows = rows(cfg);
    // gunicorn's declaration order: GUNICORN27_SETTINGS is KNOWN_SETTINGS in order.
    let rank = |name: &str| {
        GUNICORN27_SETTINGS
            .iter()
            .position(|g| g.name == name)
            .unwrap_or(GUNICORN27_SETTINGS.len())
    };
    rows.sort_by_key(|r| rank(r.name));
    let mut out = String::from("Current configuration:");
    for r in rows {
        out.push_str(&format!("\n  {}: {}", r.name, r.dumped));
    }
    out
}

/// Logs [`debug_dump`] at debug level, as gunicorn's arbiter does when it sets up.
pub fn log_debug_dump(cfg: &Config) {
    if log::enabled(Level::Debug) {
        log::log(Level::Debug, format_args!("{}", debug_dump(cfg)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_place_in_gunicorns_order() {
        for s in SETTINGS {
            assert!(
                gunicorn_core::gunicorn27::lookup(s.name).is_some(),
                "{}",
                s.name
            );
        }
        for (name, _) in DEFAULT_HOOKS {
            assert!(gunicorn_core::gunicorn27::lookup(name).is_some(), "{name}");
        }
        let hooks: Vec<&str> = gunicorn_python::server_hooks::HOOKS
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let defaults: Vec<&str> = DEFAULT_HOOKS.iter().map(|(n, _)| *n).collect();
        assert_eq!(hooks, defaults);
    }
}
