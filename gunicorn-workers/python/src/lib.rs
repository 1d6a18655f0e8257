//! gunicorn-python: embedded CPython for the workers: interpreter setup ([`interpreter`]), fork
//! hooks ([`PythonHooks`]), the config file's server hooks ([`server_hooks`]), the config file ([`config_file`]), app loading ([`app`]), the
//! WSGI bridge ([`wsgi`]) and the boot steps the worker classes share ([`worker_boot`]).
#![deny(unsafe_code)]

pub mod app;
pub mod builtin_package;
pub mod config_file;
pub mod dirty;
pub mod event_loop;
mod hooks;
pub mod interpreter;
pub mod loaded;
pub mod logging;
pub mod master_imports;
pub mod paste;
mod pyerr;
pub mod reload;
pub mod server_hooks;
pub mod spew;
#[allow(unsafe_code)]
mod sys;
pub mod worker_boot;
pub mod wsgi;

pub use app::{preload, App, AppLoadError};
pub use hooks::PythonHooks;
pub use interpreter::{ensure_initialized, PythonError};
