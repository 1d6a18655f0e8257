//! The opening handshake, server side (RFC 6455 §4.2): is a parsed request an upgrade, and the
//! 101 response that accepts it.

use gunicorn_http::Request;
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid WebSocket upgrade request: what the server needs to accept it, and what an ASGI
/// `websocket` scope reports of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `Sec-WebSocket-Key` as sent (the base64 of 16 bytes).
    pub key: String,
    /// `Sec-WebSocket-Protocol` values in the client's order of preference (ASGI scope
    /// `subprotocols`), from every such field, split at commas.
    pub subprotocols: Vec<String>,
    /// `Sec-WebSocket-Extensions` offers, each with its parameters (`permessage-deflate;
    /// client_max_window_bits`). None is negotiated: the 101 never names an extension, so the
    /// peer must leave the RSV bits at 0 (RFC 6455 §9.1).
    pub extensions: Vec<String>,
}

/// RFC 6455 §4.2.1: is this request a WebSocket upgrade?
///
/// `Ok(None)`: it does not ask for one (no `Upgrade` token `websocket`, or no `Connection`
/// token `upgrade`, as RFC 9110 §7.8 requires of an upgrade): serve it as plain HTTP, as
/// gunicorn 27 does. `Ok(Some(offer))`: a valid upgrade. `Err`: it asks for one but is not a
/// valid handshake; [`HandshakeError::status`] says how to refuse it. The checks run in
/// gunicorn's order: method and HTTP version, then `Sec-WebSocket-Version` (426), then
/// `Sec-WebSocket-Key` (400).
///
/// Where gunicorn 27 differs: it serves a non-GET request that asks to upgrade as plain HTTP,
/// and upgrades an HTTP/1.0 one; here both are refused with 400, as RFC 6455 §4.1 and §4.2.1
/// ask (the worker may still serve the first as HTTP on [`HandshakeError::NotGet`]). gunicorn
/// also looks for `upgrade` anywhere in the last `Connection` line (so `Connection: upgrades`
/// passes); here it must be a token of the list.
///
/// Header names are matched case-insensitively (the parser upper-cases them) and token lists
/// (`Connection: keep-alive, Upgrade`) element by element, ignoring case (RFC 9110 §5.6.1,
/// §7.6.1, §7.8).
pub fn offer(req: &Request) -> Result<Option<Offer>, HandshakeError> {
    let upgrade = has_token(req, "UPGRADE", "websocket");
    let connection = has_token(req, "CONNECTION", "upgrade");
    if !(upgrade && connection) {
        return Ok(None);
    }
    if req.method != "GET" {
        return Err(HandshakeError::NotGet(req.method.clone()));
    }
    if req.version < (1, 1) {
        return Err(HandshakeError::OldHttpVersion(req.version.0, req.version.1));
    }
    let version = single(req, "SEC-WEBSOCKET-VERSION", "Sec-WebSocket-Version")?;
    if version != Some("13") {
        return Err(HandshakeError::UnsupportedVersion(
            version.map(str::to_owned),
        ));
    }
    let key =
        single(req, "SEC-WEBSOCKET-KEY", "Sec-WebSocket-Key")?.ok_or(HandshakeError::MissingKey)?;
    if !is_key(key) {
        return Err(HandshakeError::BadKey(key.to_owned()));
    }
    Ok(Some(Offer {
        key: key.to_owned(),
        subprotocols: list(req, "SEC-WEBSOCKET-PROTOCOL"),
        extensions: list(req, "SEC-WEBSOCKET-EXTENSIONS"),
    }))
}

impl Offer {
    /// The head of the 101 response that accepts this offer (RFC 6455 §4.2.2), ending with the
    /// empty line: `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`, the
    /// chosen `Sec-WebSocket-Protocol` if any, then the app's `extra_headers` (ASGI
    /// `websocket.accept` `headers`) in their order. Like gunicorn 27, no `Date` or `Server`.
    ///
    /// Errors (answer 500 and close, as gunicorn does when the app's accept fails): a
    /// subprotocol the client did not offer (compared exactly: RFC 6455 §11.3.4 values are
    /// case-sensitive), a header name that is not a token, or a value with a control byte
    /// (it would split the response). Values are latin-1 bytes, written as given.
    pub fn accept(
        &self,
        subprotocol: Option<&str>,
        extra_headers: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Vec<u8>, HandshakeError> {
        if let Some(chosen) = subprotocol {
            if !self.subprotocols.iter().any(|p| p == chosen) {
                return Err(HandshakeError::SubprotocolNotOffered(chosen.to_owned()));
            }
        }
        for (name, value) in extra_headers {
            check_field(name, value)?;
        }
        let mut head = Vec::with_capacity(160);
        head.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        head.extend_from_slice(b"Sec-WebSocket-Accept: ");
        head.extend_from_slice(accept_key(&self.key).as_bytes());
        head.extend_from_slice(b"\r\n");
        if let Some(chosen) = subprotocol {
            head.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            head.extend_from_slice(chosen.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        for (name, value) in extra_headers {
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        Ok(head)
    }
}

/// RFC 6455 §4.2.2 step 5.4: base64 of the SHA-1 of the key (as sent) and the GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    data_encoding::BASE64.encode(&sha.finalize())
}

/// The base64 of 16 bytes is 22 alphabet characters and `==` (RFC 4648 §4). Like gunicorn's
/// strict `b64decode`, the unused low bits of the last character are not checked.
fn is_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// The value of a field that may appear at most once (`None` when absent).
fn single<'r>(
    req: &'r Request,
    upper_name: &'static str,
    name: &'static str,
) -> Result<Option<&'r str>, HandshakeError> {
    let mut values = req.headers.get_all(upper_name);
    let first = values.next();
    if values.next().is_some() {
        return Err(HandshakeError::DuplicateField(name));
    }
    Ok(first.map(|v| v.trim_matches([' ', '\t'])))
}

/// Every element of a comma-separated field, from all its lines (RFC 9110 §5.3: several lines
/// are one list), trimmed, empty elements skipped (RFC 9110 §5.6.1).
fn list(req: &Request, upper_name: &'static str) -> Vec<String> {
    req.headers
        .get_all(upper_name)
        .flat_map(|v| v.split(','))
        .map(|e| e.trim_matches([' ', '\t']))
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Does the list field hold this token (ASCII case-insensitive)?
fn has_token(req: &Request, upper_name: &'static str, token: &str) -> bool {
    req.headers
        .get_all(upper_name)
        .flat_map(|v| v.split(','))
        .any(|e| e.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
}

/// A response field the app gave: the name a token (RFC 9110 §5.6.2), the value SP, HTAB,
/// VCHAR or obs-text only (RFC 9110 §5.5), as gunicorn 27 checks websocket.accept headers.
fn check_field(name: &[u8], value: &[u8]) -> Result<(), HandshakeError> {
    if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
        return Err(HandshakeError::InvalidHeaderName(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    if !value
        .iter()
        .all(|&c| c == b' ' || c == b'\t' || (0x21..=0x7e).contains(&c) || c >= 0x80)
    {
        return Err(HandshakeError::InvalidHeaderValue(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    Ok(())
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}
