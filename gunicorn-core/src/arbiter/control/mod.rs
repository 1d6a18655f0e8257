//! The control socket (gunicorn 25.1+): `gunicornc` and gunicorn's own client talk to the master
//! over a unix socket to show its workers, stats, configuration and listeners, change the
//! number of workers, reload, reopen the logs and shut down. See `docs/control.md`.
//!
//! [`protocol`] is the wire format and the command grammar, sans-IO, shared with the client;
//! `server` the non-blocking listener and connections the arbiter's loop serves; `commands`
//! the arbiter's answers.

mod commands;
pub mod protocol;
mod server;

pub use commands::{socket_path, MAX_WORKERS};
pub(crate) use server::Control;
pub use server::{ControlError, IDLE_TIMEOUT, MAX_CLIENTS, MESSAGE_TIMEOUT};
