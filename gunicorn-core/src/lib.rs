//! gunicorn-core: the embeddable pre-fork arbiter.
//!
//! This crate holds everything a pre-fork server needs that is neither Python nor HTTP:
//! the settings table ([`config`]), the worker-class registry ([`registry`]), the [`Worker`]
//! trait and its [`WorkerContext`], the [`Hooks`] the arbiter calls around forks, the error log
//! ([`log`]), bind addresses ([`bind`]), and the [`Arbiter`] itself, with an [`ArbiterHandle`]
//! to control it. A Rust program can run its own workers under it with no Python linked
//! (see `docs/embedding.md`).
#![deny(unsafe_code)]

pub mod access_log;
pub mod arbiter;
pub mod bind;
pub mod config;
mod datagram;
pub mod gunicorn27;
pub mod handle;
pub mod heartbeat;
pub mod hooks;
pub mod listener;
pub mod log;
pub mod log_record;
pub mod process;
pub mod pyrepr;
pub mod registry;
pub mod shutdown;
pub mod signals;
pub mod statsd;
mod sys;
pub mod syslog;
mod version;
pub mod worker;

pub use arbiter::{Arbiter, ArbiterError, ReloadFn, Sidecar};
pub use bind::{BindAddr, BindError};
pub use config::{Config, ConfigError, Setting, Value};
pub use handle::ArbiterHandle;
pub use heartbeat::Heartbeat;
pub use hooks::{Hooks, NoHooks};
pub use listener::{Listener, LocalAddr, PeerAddr, Stream};
pub use registry::WorkerClass;
pub use shutdown::{Shutdown, StopKind};
pub use worker::{BuildError, Worker, WorkerContext, WorkerError};

#[doc(hidden)]
pub use inventory;

pub use version::VERSION;
