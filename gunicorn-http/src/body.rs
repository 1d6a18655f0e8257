//! Body decoders (skeleton).
use crate::config::HttpConfig;
use crate::error::HttpError;
use crate::parser::BodyKind;
use std::sync::Arc;

pub struct BodyDecoder {
    _cfg: Arc<HttpConfig>,
    trailers: Vec<(String, String)>,
}

impl BodyDecoder {
    pub fn new(kind: &BodyKind, cfg: Arc<HttpConfig>) -> Self {
        let _ = kind;
        BodyDecoder {
            _cfg: cfg,
            trailers: Vec::new(),
        }
    }
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let _ = (input, out);
        Ok(0)
    }
    pub fn is_done(&self) -> bool {
        true
    }
    pub fn eof(&mut self) -> Result<(), HttpError> {
        Ok(())
    }
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }
}
