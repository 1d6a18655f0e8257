//! `-k NAME`: the worker class, looked up in the registry of linked worker crates.

use gunicorn_core::registry::{self, WorkerClass};
use gunicorn_core::Config;

/// `-k` named no registered class.
#[derive(Debug, thiserror::Error)]
#[error("class uri '{name}' invalid or not found; known worker classes: {known}")]
pub struct UnknownWorkerClass {
    /// The name given.
    pub name: String,
    /// The registered names, comma-separated.
    pub known: String,
}

/// The worker class for `cfg`. As gunicorn does, `-k sync` with `threads > 1` runs the gthread
/// worker, but only when a gthread class is linked; otherwise it stays sync.
pub fn resolve(cfg: &Config) -> Result<&'static WorkerClass, UnknownWorkerClass> {
    let class = registry::lookup(&cfg.worker_class).ok_or_else(|| UnknownWorkerClass {
        name: cfg.worker_class.clone(),
        known: registry::all()
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    if class.name == "sync" && cfg.threads > 1 {
        if let Some(gthread) = registry::lookup("gthread") {
            return Ok(gthread);
        }
    }
    Ok(class)
}

/// `--list-workers`: one line per registered class, with its other accepted spellings.
pub fn listing() -> String {
    let classes = registry::all();
    if classes.is_empty() {
        return "no worker class is linked into this binary\n".into();
    }
    classes
        .iter()
        .map(|c| {
            if c.aliases.is_empty() {
                format!("{}\n", c.name)
            } else {
                format!("{} (also: {})\n", c.name, c.aliases.join(", "))
            }
        })
        .collect()
}
