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
    /// What the TLS handshake established, for a connection served over TLS (set once the
    /// handshake is done, before the first request).
    pub tls: Option<std::sync::Arc<TlsInfo>>,
}

/// A TLS connection as the environ reports it (the keys Apache's mod_ssl, uWSGI and granian
/// use: `HTTPS`, `SSL_PROTOCOL`, `SSL_CIPHER`, `SSL_CLIENT_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3` (`SSL_PROTOCOL`).
    pub protocol: &'static str,
    /// The cipher suite's OpenSSL name, as Apache's `SSL_CIPHER` shows it
    /// (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_256_GCM_SHA384`).
    pub cipher: &'static str,
    /// The client's verified certificate, if it sent one.
    pub client: Option<ClientCert>,
    /// The application protocol chosen by ALPN (RFC 7301): `h2`, `http/1.1`, `http/1.0`, or
    /// None when the client offered none.
    pub alpn: Option<&'static str>,
}

/// A client certificate that passed verification against `ca_certs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate, PEM-encoded (`SSL_CLIENT_CERT`).
    pub pem: String,
    /// Its subject (`SSL_CLIENT_S_DN`): the attributes in the certificate's order,
    /// `CN=client one, O=Acme`.
    pub subject: String,
    /// Its issuer (`SSL_CLIENT_I_DN`), written the same way.
    pub issuer: String,
}
