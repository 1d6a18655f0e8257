//! gunicorn-core: the embeddable pre-fork arbiter.
//!
//! This crate holds everything a pre-fork server needs that is neither Python nor HTTP:
//! the settings table ([`config`]), the worker-class registry ([`registry`]), the [`Worker`]
//! trait and its [`WorkerContext`], the [`Hooks`] the arbiter calls around forks, and the
//! arbiter itself. A Rust program can run its own workers under it with no Python linked.
#![deny(unsafe_code)]

pub mod arbiter;
pub mod bind;
pub mod config;
pub mod handle;
pub mod hooks;
pub mod log;
pub mod registry;
pub mod worker;

pub use config::{Config, ConfigError, Setting, Value};
pub use hooks::{Hooks, NoHooks};
pub use registry::WorkerClass;
pub use worker::{BuildError, Worker, WorkerContext, WorkerError};

#[doc(hidden)]
pub use inventory;

/// The version string reported by `--version` and `Starting gunicorn <version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod heartbeat;
pub mod listener;
pub mod process;
pub mod shutdown;
pub mod signals;
mod sys;
pub use arbiter::{Arbiter, ArbiterError, ReloadFn};
pub use bind::{BindAddr, BindError};
pub use handle::ArbiterHandle;
pub use heartbeat::Heartbeat;
pub use listener::{Listener, LocalAddr, PeerAddr, Stream};
pub use shutdown::{Shutdown, StopKind};
