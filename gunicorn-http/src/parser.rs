//! Request head parser (skeleton; filled in next commit).
use crate::config::{ConnInfo, HttpConfig};
use crate::error::HttpError;
use crate::proxy::ProxyInfo;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub path: String,
    pub query: String,
    pub fragment: String,
    pub version: (u8, u8),
    pub headers: Vec<(String, String)>,
    pub body: BodyKind,
    pub expect_continue: bool,
    pub scheme: &'static str,
    pub must_close: bool,
}

impl Request {
    pub fn should_close(&self) -> bool {
        self.must_close
    }
    pub fn header(&self, upper_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == upper_name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct RequestParser {
    cfg: Arc<HttpConfig>,
    conn: ConnInfo,
    proxy: Option<ProxyInfo>,
}

impl RequestParser {
    pub fn new(cfg: Arc<HttpConfig>, conn: ConnInfo) -> Self {
        RequestParser {
            cfg,
            conn,
            proxy: None,
        }
    }
    pub fn parse_head(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        let _ = (&self.cfg, &self.conn, buf);
        Ok(None)
    }
    pub fn proxy_info(&self) -> Option<&ProxyInfo> {
        self.proxy.as_ref()
    }
}
