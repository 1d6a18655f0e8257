//! gunicorn-serve: what every worker class shares and that needs no Python, so that a worker
//! written in pure Rust (the echo plugin) and the Python worker classes serve HTTP by the same
//! rules. Today: the worker's HTTP settings from the configuration ([`http_config`]).
//! The connection logic (head reading, lingering close, error pages, the max-requests budget)
//! moves here next, so that TLS and HTTP/2 are written once for every class.
#![deny(unsafe_code)]

pub mod http_config;

pub use http_config::{http_config, HttpConfigError};
