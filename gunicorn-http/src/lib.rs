//! gunicorn-http: sans-IO HTTP/1.1 for a WSGI server. Never touches a socket, never Python.
//!
//! - [`parser`]: request head (PROXY header, request line, header block) with gunicorn's
//!   strictness rules and RFC 9112 framing decisions.
//! - [`body`]: Content-Length and chunked body decoders (state machines), trailers.
//! - [`environ`]: the CGI part of the WSGI environ as plain Rust data; [`cgi_key`] its fixed
//!   key names.
//! - [`response`]: response head encoding, body framing, the cached Date header;
//!   [`app_head`] the app's status and fields, validated, in one buffer.
//! - [`uwsgi`]: the uWSGI binary protocol (`--protocol uwsgi`) read into the same [`Request`].
//! - [`error`]: [`HttpError`] with gunicorn's status mapping and error page.
//!
//! Rules and where we differ from gunicorn: `docs/http.md`.
#![deny(unsafe_code)]
// Table-driven tests use tuple tables and tweak a default config field by field.
#![cfg_attr(
    test,
    allow(clippy::type_complexity, clippy::field_reassign_with_default)
)]

pub mod allow;
pub mod app_head;
pub mod body;
pub mod cgi_key;
pub mod config;
pub mod conn;
pub mod environ;
pub mod error;
mod fields;
pub mod headers;
mod line;
pub mod parser;
pub mod proxy;
pub mod response;
mod syntax;
pub mod uwsgi;

pub use allow::{AllowList, AllowListError};
pub use app_head::AppHead;
pub use body::BodyDecoder;
pub use cgi_key::CgiKey;
pub use config::{HeaderMapPolicy, HttpConfig, Limits, Protocol, ProxyMode};
pub use conn::{ClientCert, ConnInfo, Local, Peer, TlsInfo};
pub use environ::{
    build_environ, for_each_environ, percent_decode, EnvKey, Environ, SERVER_SOFTWARE,
};
pub use error::{error_page, latin1, HttpError};
pub use headers::{HeaderIter, Headers};
pub use parser::{BodyKind, Request, RequestParser};
pub use proxy::ProxyInfo;
pub use response::{early_hints, http_date, ReqMeta, Response, CONTINUE_100};
pub use uwsgi::UwsgiParser;
