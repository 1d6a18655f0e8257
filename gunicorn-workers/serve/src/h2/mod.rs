//! HTTP/2 (RFC 9113), served once for every worker class that can run streams concurrently:
//!
//! - [`server`]: the worker's HTTP/2 thread (the h2 crate on a current-thread tokio runtime),
//!   its connections and their streams, with gunicorn's `http2_*` settings and the bounds
//!   that keep a connection from costing more than its share;
//! - [`stream`]: a stream as a worker thread sees it: a blocking body, a blocking reply;
//! - [`mode`]: whether and how a worker serves HTTP/2, from the settings;
//! - [`park`]: how a greenlet waits on them instead of blocking the hub's thread;
//! - [`request`]: a stream's head as the same [`gunicorn_http::Request`] as HTTP/1's, read by
//!   the same rules;
//! - [`io`]: a [`crate::Transport`] (plain or TLS) as the async stream h2 runs on;
//! - [`preface`]: recognising cleartext HTTP/2 (h2c with prior knowledge);
//! - [`upgrade`]: h2c by `Upgrade: h2c` from an HTTP/1.1 request.

pub mod io;
pub mod mode;
pub mod park;
pub mod preface;
pub mod request;
pub mod server;
pub mod stream;
pub mod upgrade;

pub use mode::H2Mode;
pub use park::Park;
pub use server::{Closed, H2Server, H2Settings, Incoming};

use gunicorn_core::{log_warning, Config};

/// For a worker class that serves HTTP/1 only: gunicorn's warning when `http_protocols` asks
/// for `h2` (its sync worker says it and serves HTTP/1.1; ALPN then offers HTTP/1.x only, so a
/// client falls back at once). `class` names the worker (`sync`).
pub fn warn_unsupported(cfg: &Config, class: &str) {
    if cfg.http_protocols.h2() {
        log_warning!(
            "HTTP/2 is not supported by the {class} worker. Use gthread, gevent, or asgi \
             workers for HTTP/2 support. Falling back to HTTP/1.1 only."
        );
    }
}
pub use stream::{split_page, Dispatch, Page, ReplyMsg, StreamBody, StreamJob, StreamReply};
