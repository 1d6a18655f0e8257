//! TLS with gunicorn's settings, for every worker class: the server configuration built from
//! `certfile`, `keyfile`, `ca_certs`, `cert_reqs`, `ssl_version` and `ciphers` ([`load`]), and
//! the connection's stream ([`TlsStream`], a [`crate::Transport`]).
//!
//! The files are read in the master, when a worker class builds its workers (before each fork),
//! so a bad file stops the server before any worker runs, workers read no key file after
//! dropping privileges, and a HUP that brings new certificate files gives the new workers the
//! new certificate while the old workers finish their connections on the old one. A new file
//! that fails to load keeps the certificate loaded before it (see [`load`]).

mod settings;
mod stream;
mod suites;

pub use settings::{enabled, load, Acceptor, TlsError};
pub use stream::TlsStream;
