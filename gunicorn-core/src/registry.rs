//! The worker-class registry: every linked crate that submits a [`WorkerClass`] with
//! `inventory` can be chosen with `-k NAME`.

use crate::config::Config;
use crate::worker::{BuildError, Worker};

/// A named worker class. Built in the arbiter (so a bad setting fails before any fork) and run in
/// each forked child.
pub struct WorkerClass {
    /// The name used with `-k` (`sync`, `gthread`, ...).
    pub name: &'static str,
    /// Other accepted spellings (gunicorn's `egg:gunicorn#sync`, `gunicorn.workers.sync.SyncWorker`).
    pub aliases: &'static [&'static str],
    /// Builds one worker from the configuration.
    pub build: fn(&Config) -> Result<Box<dyn Worker>, BuildError>,
}

impl WorkerClass {
    /// A worker class; usable in `inventory::submit!`.
    pub const fn new(
        name: &'static str,
        aliases: &'static [&'static str],
        build: fn(&Config) -> Result<Box<dyn Worker>, BuildError>,
    ) -> Self {
        WorkerClass {
            name,
            aliases,
            build,
        }
    }
}

impl std::fmt::Debug for WorkerClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerClass")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .finish()
    }
}

inventory::collect!(WorkerClass);

/// Every registered worker class, sorted by name.
pub fn all() -> Vec<&'static WorkerClass> {
    let mut v: Vec<_> = inventory::iter::<WorkerClass>.into_iter().collect();
    v.sort_by_key(|c| c.name);
    v
}

/// The class registered under `name` or one of its aliases.
pub fn lookup(name: &str) -> Option<&'static WorkerClass> {
    inventory::iter::<WorkerClass>
        .into_iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// Registers a worker class: `register_worker!(WorkerClass::new("echo", &[], build));`
#[macro_export]
macro_rules! register_worker {
    ($class:expr) => {
        $crate::inventory::submit! { $class }
    };
}
