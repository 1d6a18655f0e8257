//! The server's version.

/// The version string reported by `--version` and `Starting gunicorn <version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
