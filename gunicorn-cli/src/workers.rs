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
    Ok(threaded_sync(
        class,
        cfg.threads,
        registry::lookup("gthread"),
    ))
}

/// gunicorn's rule: the sync worker with more than one thread is the gthread worker.
fn threaded_sync(
    class: &'static WorkerClass,
    threads: u64,
    gthread: Option<&'static WorkerClass>,
) -> &'static WorkerClass {
    match gthread {
        Some(gthread) if class.name == "sync" && threads > 1 => gthread,
        _ => class,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use gunicorn_core::{BuildError, Worker};

    fn no_build(_: &Config) -> Result<Box<dyn Worker>, BuildError> {
        Err(BuildError("test class".into()))
    }

    gunicorn_core::register_worker!(WorkerClass::new(
        "cli-test-class",
        &["egg:cli-test#class", "cli.test.Class"],
        no_build
    ));

    static SYNC: WorkerClass = WorkerClass::new("sync", &[], no_build);
    static GTHREAD: WorkerClass = WorkerClass::new("gthread", &[], no_build);
    static OTHER: WorkerClass = WorkerClass::new("other", &[], no_build);

    #[test]
    fn names_and_aliases_resolve() {
        let cases: &[(&str, Option<&str>)] = &[
            ("cli-test-class", Some("cli-test-class")),
            ("egg:cli-test#class", Some("cli-test-class")),
            ("cli.test.Class", Some("cli-test-class")),
            ("cli-test", None),
        ];
        for (name, want) in cases {
            let cfg = Config {
                worker_class: name.to_string(),
                ..Config::default()
            };
            let got = resolve(&cfg).map(|c| c.name);
            match want {
                Some(w) => assert_eq!(got.ok(), Some(*w), "{name}"),
                None => {
                    let err = got.unwrap_err();
                    assert!(err.to_string().contains("cli-test-class"), "{err}");
                }
            }
        }
    }

    #[test]
    fn threaded_sync_becomes_gthread_only_when_linked() {
        let cases: &[(&'static WorkerClass, u64, bool, &str)] = &[
            (&SYNC, 1, true, "sync"),
            (&SYNC, 4, true, "gthread"),
            (&SYNC, 4, false, "sync"),
            (&OTHER, 4, true, "other"),
        ];
        for (class, threads, linked, want) in cases {
            let gthread = linked.then_some(&GTHREAD);
            assert_eq!(threaded_sync(class, *threads, gthread).name, *want);
        }
    }

    #[test]
    fn listing_shows_aliases() {
        assert!(listing().contains("cli-test-class (also: egg:cli-test#class, cli.test.Class)"));
    }
}
