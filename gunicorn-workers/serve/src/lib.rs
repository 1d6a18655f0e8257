//! gunicorn-serve: what every worker class shares and that needs no Python, so that a worker
//! written in pure Rust (the echo plugin) and the Python worker classes serve HTTP by the same
//! rules. Today: the worker's HTTP settings from the configuration ([`http_config`]), the
//! `max_requests` budget ([`budget`]), the listener addresses in HTTP terms ([`addr`]) and the
//! lingering close with its bounds ([`linger`]), and the answer to a request that failed before
//! the app ([`reject`]). The connection itself (head reading over a stream) moves here next, so
//! that TLS and HTTP/2 are written once for every class.
#![deny(unsafe_code)]

pub mod addr;
pub mod budget;
pub mod http_config;
pub mod linger;
pub mod reject;

pub use budget::{log_autorestart, Count, RequestBudget};
pub use http_config::{http_config, HttpConfigError};
