//! Response encoding (skeleton).
use crate::error::HttpError;

pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqMeta {
    pub version: (u8, u8),
    pub is_head: bool,
    pub should_close: bool,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn new(
        req: &ReqMeta,
        status: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Response, HttpError> {
        let _ = (req, status);
        Ok(Response {
            status: 200,
            headers,
        })
    }
    pub fn force_close(&mut self) {}
    pub fn should_close(&self) -> bool {
        true
    }
    pub fn encode_head(&self, out: &mut Vec<u8>) {
        let _ = out;
    }
    pub fn encode_body(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let _ = (data, out);
    }
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let _ = out;
    }
    pub fn body_bytes_sent(&self) -> u64 {
        0
    }
    pub fn is_chunked(&self) -> bool {
        false
    }
    pub fn remaining_length(&self) -> Option<u64> {
        None
    }
}

pub fn early_hints(
    version: (u8, u8),
    headers: &[(String, String)],
) -> Result<Option<Vec<u8>>, HttpError> {
    let _ = (version, headers);
    Ok(None)
}

pub fn http_date() -> String {
    String::new()
}
