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

/// Reports a handshake that failed (the client left, stalled past its deadline, sent plain
/// HTTP or garbage, or refused our certificate): at debug level only, since scanners send such
/// connections all day, and counted in StatsD as `gunicorn.tls.handshake_failures`.
pub fn handshake_failed(conn: &gunicorn_http::ConnInfo, reason: &dyn std::fmt::Display) {
    gunicorn_core::log_debug!(
        "TLS handshake failed from ip={}: {reason}",
        crate::reject::peer_ip(conn)
    );
    gunicorn_core::statsd::increment("gunicorn.tls.handshake_failures", 1);
}
