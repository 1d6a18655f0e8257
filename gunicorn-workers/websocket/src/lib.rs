//! Sans-IO WebSocket (RFC 6455), server side, for the `asgi` worker: no Python, no sockets.
//! Bytes come in from the event loop and become messages for the app; the app's messages
//! become bytes to write.
//!
//! # The opening handshake
//!
//! [`offer`] looks at a request parsed by gunicorn-http: `Ok(None)` when it does not ask to
//! upgrade (serve it as HTTP), `Ok(Some(Offer))` for a valid upgrade, `Err(HandshakeError)` when
//! it asks but is malformed; [`HandshakeError::status`] and
//! [`HandshakeError::response_headers`] give the refusal (400, or 426 with
//! `Sec-WebSocket-Version: 13`). The app decides (ASGI `websocket.accept`);
//! [`Offer::accept`] then builds the `101 Switching Protocols` head, refusing a subprotocol the
//! client did not offer or a header that would split the response.
//!
//! ```
//! # use std::sync::Arc;
//! # use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer, RequestParser};
//! # let conn = ConnInfo {
//! #     peer: Peer::Tcp("127.0.0.1:40000".parse().unwrap()),
//! #     local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
//! #     tls: None,
//! # };
//! # let head = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//! #     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//! #     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
//! # let (req, _) = RequestParser::new(Arc::new(HttpConfig::default()), conn)
//! #     .parse_head(head).unwrap().unwrap();
//! use gunicorn_websocket::{offer, Event, Message, Session, SessionConfig, SessionState};
//!
//! let offer = offer(&req).unwrap().expect("an upgrade");
//! let head = offer.accept(Some("chat"), &[]).unwrap();
//! assert!(head.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//!
//! let mut ws = Session::new(SessionConfig::default());
//! // A masked text frame "Hi" from the client.
//! ws.feed(&[0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2]).unwrap();
//! assert_eq!(ws.next_event(), Some(Event::Message(Message::Text("Hi".into()))));
//! ws.send(Message::Text("Hello".into())).unwrap();
//! assert_eq!(ws.take_output(), b"\x81\x05Hello");
//! ws.close(1000, "bye").unwrap();
//! assert_eq!(ws.state(), SessionState::Closing);
//! ```
//!
//! # A session
//!
//! After the 101, a [`Session`] is the connection:
//!
//! - [`Session::feed`] takes the bytes read from the socket, in any pieces. Whole messages
//!   (fragments joined) wait in [`Session::next_event`]; pings are answered with a pong queued
//!   to the output, pongs are ignored. The peer's close frame gives [`Event::Closed`] (code 1005
//!   when it had none) and our reply is queued at once (RFC 6455 §5.5.1).
//! - A peer that breaks the protocol fails the connection (§7.1.7): our close frame is queued
//!   (1002 protocol error: unmasked frame, reserved bits or opcode, bad fragment order,
//!   oversized or fragmented control frame, bad close payload; 1007 text or close reason that
//!   is not UTF-8; 1009 a message over [`SessionConfig::max_message_size`], refused from its
//!   frame header) and `feed` returns the [`WsError`] whose
//!   [`close_code`](WsError::close_code) an ASGI `websocket.disconnect` reports.
//! - [`Session::send`] queues a message (one unmasked frame); [`Session::close`] queues our
//!   close frame. Both are refused with [`WsError::NotOpen`] once the session is not open:
//!   never a panic.
//! - [`Session::take_output`] hands over the bytes to write.
//! - [`Session::state`]: `Open`, `Closing` (our close frame is out, waiting for the peer's),
//!   `Closed` (handshake over or connection failed: write the output, then close the TCP
//!   connection; RFC 6455 §7.1.1 wants the server to close it first).
//!
//! Buffering: the start of a frame is held until its last byte arrives, so memory follows the
//! bytes really received, never a length a header announces; a header announcing more than
//! `max_message_size` is refused at once. The output holds what was sent and the replies to the
//! peer's control frames (never more than the bytes fed); writing it out is the caller's job,
//! and so is backpressure: do not call `send` while [`Session::pending_output`] is above a
//! high-water mark, and stop reading the socket while it or [`Session::pending_events`] grow.
//!
//! No extension is negotiated (no `permessage-deflate`), so RSV bits must be 0.
//!
//! Framing, masking, UTF-8 checks, size limits and the closing state machine are tungstenite's
//! (its `WebSocketContext`, which reads and writes through a stream given per call: here an
//! in-memory one over the caller's bytes). In front of it, `frame_scan` reads frame headers
//! only: it finds where frames end (tungstenite gets whole frames, as it reserves a frame's
//! announced length when it sees the header) and fails at the header what needs no payload to
//! judge: an unmasked frame, a length not in the fewest bytes or with its top bit set (as
//! gunicorn 27 checks), a control frame over 125 bytes, a frame over the limit. The handshake is
//! checked here against gunicorn-http's parsed request, as tungstenite's own handshake parses
//! HTTP itself.
#![deny(unsafe_code)]

pub mod close_code;
mod error;
mod frame_scan;
mod handshake;
mod session;
mod state;
mod wire;

pub use error::{HandshakeError, WsError};
pub use handshake::{accept_key, offer, Offer};
pub use session::{Event, Message, Session, SessionConfig, DEFAULT_MAX_MESSAGE_SIZE};
pub use state::SessionState;
