//! Environ builder (skeleton).
use crate::config::{ConnInfo, HttpConfig};
use crate::error::HttpError;
use crate::parser::Request;
use crate::proxy::ProxyInfo;
use std::borrow::Cow;

pub const SERVER_SOFTWARE: &str = concat!("gunicorn/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environ {
    pub vars: Vec<(Cow<'static, str>, String)>,
}

pub fn build_environ(
    req: &Request,
    conn: &ConnInfo,
    proxy: Option<&ProxyInfo>,
    cfg: &HttpConfig,
) -> Result<Environ, HttpError> {
    let _ = (req, conn, proxy, cfg);
    Ok(Environ::default())
}
