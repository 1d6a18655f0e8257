//! The two ends of an accepted connection, as the parser (trusted peers) and the environ
//! (`REMOTE_ADDR`, `SERVER_NAME`) see them. Kept apart from `config` so that the allow lists
//! (which match peers) and the configuration (which holds allow lists) do not import each other.

/// The address of the connected client as the socket reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Tcp(std::net::SocketAddr),
    /// A Unix-socket peer: always trusted, `REMOTE_ADDR` is `""` and there is no `REMOTE_PORT`.
    Unix,
}

/// The address the listener is bound to (gunicorn's `SERVER_NAME`/`SERVER_PORT` come from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Tcp(std::net::SocketAddr),
    /// A Unix-socket listener and its path.
    Unix(String),
}

/// Both ends of one accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub peer: Peer,
    pub local: Local,
}
