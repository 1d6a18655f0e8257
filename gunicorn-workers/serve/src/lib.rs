//! gunicorn-serve: what every worker class shares and that needs no Python, so that a worker
//! written in pure Rust (the echo plugin) and the Python worker classes serve HTTP by the same
//! rules, and a new transport (TLS) or a new worker class is written once:
//!
//! - [`transport`]: the byte stream a connection is served over ([`Transport`]);
//! - [`tls`]: TLS with gunicorn's settings (rustls), a `Transport` over any other;
//! - [`h2`]: HTTP/2 with gunicorn's settings (the h2 crate), its streams handed to the worker;
//! - [`accept`]: taking connections off core's listeners in batches;
//! - [`head`]: reading a request head, sans-IO ([`HeadReader`]) and blocking ([`read_head`]);
//! - [`reject`]: the answer to a request that failed before the app;
//! - [`linger`]: the lingering close and the unread-body drain, with their bounds;
//! - [`deadline`]: one deadline for a blocking stream's reads and writes (TLS handshakes);
//! - [`budget`]: the `max_requests` budget;
//! - [`addr`]: the listener addresses in HTTP terms;
//! - [`http_config`]: the worker's HTTP settings from the configuration.
//!
//! What stays in a worker crate is its scheduling: one connection at a time (sync), a poller and
//! a pool (gthread), a Python hub's greenlets (greenlet).
#![deny(unsafe_code)]

pub mod accept;
pub mod addr;
pub mod budget;
pub mod deadline;
pub mod h2;
pub mod head;
pub mod http_config;
pub mod linger;
pub mod reject;
#[allow(unsafe_code)]
mod sys;
pub mod tls;
pub mod transport;

pub use budget::{log_autorestart, Count, RequestBudget};
pub use head::{read_head, Awaiting, HeadRead, HeadReader, HeadStep};
pub use http_config::{http_config, HttpConfigError};
pub use transport::Transport;
