//! The crate's two error enums: one for the opening handshake (answered with an HTTP status),
//! one for an open session (answered with a close frame).

use crate::state::SessionState;

/// Why an upgrade request, or the app's answer to it, cannot open a WebSocket.
///
/// [`HandshakeError::status`] says which HTTP response refuses the handshake (RFC 6455 §4.2.1:
/// a request that does not match the handshake gets "an appropriate error code (such as 400 Bad
/// Request)"; §4.2.2: a version we do not speak gets 426 with the versions we do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// RFC 6455 §4.1: "The method of the request MUST be GET".
    #[error("WebSocket upgrade with method {0}: the handshake must be a GET (RFC 6455 §4.1)")]
    NotGet(String),
    /// RFC 6455 §4.1: "the HTTP version MUST be at least 1.1".
    #[error("WebSocket upgrade over HTTP/{0}.{1}: the handshake needs HTTP/1.1 (RFC 6455 §4.1)")]
    OldHttpVersion(u8, u8),
    /// No `Sec-WebSocket-Version`, or not `13` (RFC 6455 §4.2.2: answered 426 with
    /// `Sec-WebSocket-Version: 13`, as gunicorn 27 does).
    #[error("Sec-WebSocket-Version {0:?} is not 13")]
    UnsupportedVersion(Option<String>),
    /// RFC 6455 §4.1: the request must carry a `Sec-WebSocket-Key`.
    #[error("WebSocket upgrade without Sec-WebSocket-Key")]
    MissingKey,
    /// RFC 6455 §4.1: the key is "a randomly selected 16-byte value that has been base64-encoded".
    #[error("Sec-WebSocket-Key {0:?} is not the base64 of 16 bytes")]
    BadKey(String),
    /// RFC 6455 §11.3.1 and §11.3.5: `Sec-WebSocket-Key` and `Sec-WebSocket-Version` must not
    /// appear more than once in a request.
    #[error("{0} appears more than once in the WebSocket upgrade")]
    DuplicateField(&'static str),
    /// The app chose a subprotocol the client did not offer (RFC 6455 §4.2.2: the server picks
    /// one of the client's values, or none).
    #[error("subprotocol {0:?} was not offered by the client")]
    SubprotocolNotOffered(String),
    /// A header the app gave to websocket.accept (or its subprotocol) is not a token name.
    #[error("invalid header name {0:?} in the WebSocket accept")]
    InvalidHeaderName(String),
    /// A header value with CR, LF or another control byte: it would split the 101 response.
    /// The value itself is left out (it may carry request data).
    #[error("invalid value for header {0:?} in the WebSocket accept")]
    InvalidHeaderValue(String),
}

impl HandshakeError {
    /// The HTTP status that refuses the handshake: 426 for a version we do not speak, 400 for a
    /// malformed upgrade request, 500 for an app whose accept cannot be sent (gunicorn answers
    /// 500 when the app fails before accepting).
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion(_) => 426,
            HandshakeError::NotGet(_)
            | HandshakeError::OldHttpVersion(..)
            | HandshakeError::MissingKey
            | HandshakeError::BadKey(_)
            | HandshakeError::DuplicateField(_) => 400,
            HandshakeError::SubprotocolNotOffered(_)
            | HandshakeError::InvalidHeaderName(_)
            | HandshakeError::InvalidHeaderValue(_) => 500,
        }
    }

    /// Headers the refusal must carry: `Sec-WebSocket-Version: 13` with a 426 (RFC 6455 §4.2.2
    /// "the server MUST ... include a |Sec-WebSocket-Version| header field indicating the
    /// version(s) the server is capable of understanding").
    pub fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeError::UnsupportedVersion(_) => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }
}

/// Why an open session failed, or why a call on it was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// The peer broke RFC 6455 (unmasked frame, reserved bits or opcode, bad fragment order,
    /// oversized or fragmented control frame, bad close payload...): "Fail the WebSocket
    /// Connection" (§7.1.7). A close frame with `code` is queued to the output.
    #[error("WebSocket protocol error (close {code}): {detail}")]
    Protocol { code: u16, detail: String },
    /// A text message or close reason that is not UTF-8 (RFC 6455 §8.1): close 1007 queued.
    #[error("WebSocket text that is not UTF-8 (close 1007): {0}")]
    InvalidUtf8(String),
    /// A message (or one frame) larger than `max_message_size` (RFC 6455 §7.4.1): close 1009
    /// queued, before the payload is read.
    #[error("WebSocket message of {size} bytes is larger than the limit of {max} (close 1009)")]
    MessageTooBig { size: usize, max: usize },
    /// send() or close() when the session is no longer open: after our close frame or the
    /// peer's, or after a failure.
    #[error("the WebSocket is not open ({0:?})")]
    NotOpen(SessionState),
    /// close() with a code an endpoint may not send (RFC 6455 §7.4: 1005, 1006 and 1015 are never
    /// sent; 1004 and other codes below 3000 are not defined).
    #[error("{0} is not a close code that may be sent (RFC 6455 §7.4)")]
    InvalidCloseCode(u16),
}

impl WsError {
    /// The close code this failure put on the wire, if it was a failure of the peer's stream
    /// (the code an ASGI `websocket.disconnect` reports).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::Protocol { code, .. } => Some(*code),
            WsError::InvalidUtf8(_) => Some(crate::close_code::INVALID_DATA),
            WsError::MessageTooBig { .. } => Some(crate::close_code::MESSAGE_TOO_BIG),
            WsError::NotOpen(_) | WsError::InvalidCloseCode(_) => None,
        }
    }
}
