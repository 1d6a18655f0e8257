//! One open WebSocket connection, server role (RFC 6455 §5-§7), over tungstenite's frame codec
//! and state machine, fed and drained by the caller.

use std::collections::VecDeque;

use tungstenite::error::{CapacityError, Error as TError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};

use crate::close_code;
use crate::error::WsError;
use crate::frame_scan::{FrameScan, Scanned};
use crate::state::SessionState;
use crate::wire::Wire;

/// gunicorn's `--websocket-max-message-size` default: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How much tungstenite reads from the input per step, and the read buffer it allocates up
/// front for every session. Small, as many idle connections are the usual WebSocket load; a
/// large frame still gets a buffer of its own size.
const READ_CHUNK: usize = 8 * 1024;

/// A held partial frame's buffer is kept for the next one up to this size, and freed beyond it
/// (an idle connection should not keep the memory of its largest message).
const KEEP_HELD: usize = 4 * 1024;

/// RFC 6455 §5.5: a control frame's payload is at most 125 bytes, so a close reason at most 123.
const MAX_CLOSE_REASON: usize = 123;

/// Settings of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The largest message (and so the largest frame) accepted, in bytes; 0 for no limit
    /// (gunicorn's `--websocket-max-message-size`). A larger one fails the connection with close
    /// code 1009 (RFC 6455 §7.4.1) as soon as a frame header announces it.
    pub max_message_size: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// A whole data message (fragments already joined, RFC 6455 §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// What the peer's bytes produced, for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(Message),
    /// The peer's close frame arrived: its code, or 1005 when it had none (RFC 6455 §7.1.5),
    /// and its reason. When the peer started the close, our reply is already queued (§5.5.1).
    /// A code the peer may not send is reported as 1002, the code of our reply.
    Closed {
        code: u16,
        reason: String,
    },
}

/// One WebSocket connection, server side, with no socket: [`feed`](Session::feed) it the bytes
/// read from the connection, take [`next_event`](Session::next_event)s for the app,
/// [`send`](Session::send) the app's messages, and write what
/// [`take_output`](Session::take_output) returns.
///
/// Memory: input is never kept beyond one partial frame (at most `max_message_size`), events
/// hold what was fed, and the output holds what was sent plus at most about as many bytes as
/// were fed (pongs and the close reply echo the peer's control frames). The output is the
/// caller's to bound: while it is not written out, stop calling `send` (backpressure) and stop
/// reading the socket.
#[derive(Debug)]
pub struct Session {
    ctx: WebSocketContext,
    /// Where the peer's frames end: tungstenite is only given whole frames.
    scan: FrameScan,
    /// The start of the peer's current frame, until its last byte arrives.
    held: Vec<u8>,
    output: Vec<u8>,
    events: VecDeque<Event>,
    state: SessionState,
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Self {
        let limit = (cfg.max_message_size != 0).then_some(cfg.max_message_size);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            // Every frame goes straight to `output`: there is no socket to batch writes for.
            .write_buffer_size(0)
            .max_message_size(limit)
            .max_frame_size(limit);
        Session {
            ctx: WebSocketContext::new(Role::Server, Some(config)),
            scan: FrameScan::new(limit),
            held: Vec::new(),
            output: Vec::new(),
            events: VecDeque::new(),
            state: SessionState::Open,
        }
    }

    /// Bytes read from the socket, in any pieces. Whole messages become events; a ping gets a
    /// pong queued to the output (RFC 6455 §5.5.2), a pong is ignored (§5.5.3), the peer's
    /// close frame gets our reply queued (§5.5.1) and an [`Event::Closed`]. Bytes after the
    /// close frame are ignored, and so is anything fed once the state is `Closed`.
    ///
    /// A peer that breaks the protocol fails the connection (§7.1.7): our close frame (1002,
    /// 1007 for text that is not UTF-8, 1009 for a message over the limit) is queued, the state
    /// becomes `Closed`, and the error says why. Messages that completed before the bad frame
    /// stay available from `next_event`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), WsError> {
        if self.state == SessionState::Closed {
            return Ok(());
        }
        let Scanned { whole, error } = self.scan.scan(bytes);
        if whole > 0 {
            let mut held = std::mem::take(&mut self.held);
            let decoded = self.decode(&held, &bytes[..whole]);
            if held.capacity() <= KEEP_HELD {
                held.clear();
                self.held = held;
            }
            decoded?;
        }
        if self.state == SessionState::Closed {
            // The peer's close frame ended the session: what follows it is ignored.
            self.held = Vec::new();
            return Ok(());
        }
        if let Some(e) = error {
            return Err(self.fail(e));
        }
        self.held.extend_from_slice(&bytes[whole..]);
        Ok(())
    }

    /// Runs whole frames (`held`, then `input`) through tungstenite.
    fn decode(&mut self, held: &[u8], input: &[u8]) -> Result<(), WsError> {
        let mut wire = Wire {
            held,
            input,
            output: &mut self.output,
        };
        loop {
            match self.ctx.read(&mut wire) {
                Ok(tungstenite::Message::Text(text)) => {
                    let msg = Message::Text(text.as_str().to_owned());
                    deliver(self.state, &mut self.events, msg);
                }
                Ok(tungstenite::Message::Binary(data)) => {
                    deliver(self.state, &mut self.events, Message::Binary(data.into()));
                }
                Ok(tungstenite::Message::Close(frame)) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (close_code::NO_STATUS, String::new()),
                    };
                    self.events.push_back(Event::Closed { code, reason });
                    // The reply (if ours was not first) goes out on the next read, which then
                    // ends the session with ConnectionClosed.
                }
                // tungstenite queued the pong already; pongs and raw frames need nothing.
                Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_))
                | Ok(tungstenite::Message::Frame(_)) => {}
                Err(TError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(TError::ConnectionClosed | TError::AlreadyClosed) => {
                    self.state = SessionState::Closed;
                    return Ok(());
                }
                Err(e) => return Err(self.fail(from_tungstenite(e))),
            }
        }
        // A pong for the last ping of this input may still wait in tungstenite.
        self.flush();
        Ok(())
    }

    /// The next event for the app, in the order the peer sent them.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How many events wait for [`next_event`](Session::next_event): a caller bounds memory by
    /// not reading the socket while too many wait (gunicorn stops at 32).
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Queue one whole message as a single unmasked frame (RFC 6455 §5.1: a server never masks).
    /// Refused once the session is not `Open`.
    pub fn send(&mut self, msg: Message) -> Result<(), WsError> {
        self.check_open()?;
        let msg = match msg {
            Message::Text(text) => tungstenite::Message::Text(text.into()),
            Message::Binary(data) => tungstenite::Message::Binary(data.into()),
        };
        let mut wire = Wire::output(&mut self.output);
        // Writes to the output cannot fail, and the state is Active (checked above): this only
        // errs if tungstenite's state machine disagrees with ours, which is treated as closed.
        if self.ctx.write(&mut wire, msg).is_err() {
            self.state = SessionState::Closed;
            return Err(WsError::NotOpen(self.state));
        }
        self.flush();
        Ok(())
    }

    /// Queue our close frame (RFC 6455 §5.5.1) and wait for the peer's: the state becomes
    /// `Closing`, then `Closed` when the peer's close frame is fed. The reason is cut to 123
    /// bytes at a character boundary (a control frame carries at most 125). Codes an endpoint
    /// may not send (1005, 1006, 1015, undefined ones) are refused.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        self.check_open()?;
        if !close_code::may_send(code) {
            return Err(WsError::InvalidCloseCode(code));
        }
        self.send_close(code, truncate(reason, MAX_CLOSE_REASON));
        self.state = SessionState::Closing;
        Ok(())
    }

    /// The bytes to write to the socket, taken (empty when there are none).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// How many bytes wait in the output: while this is above the caller's high-water mark,
    /// it should write them before sending more.
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// RFC 6455 §7.1.7 "Fail the WebSocket Connection": our close frame with the code that
    /// names the fault (unless ours is already out), and no more reading.
    fn fail(&mut self, err: WsError) -> WsError {
        let code = err.close_code().unwrap_or(close_code::INTERNAL_ERROR);
        if self.state == SessionState::Open {
            self.send_close(code, reason_for(code));
        }
        self.state = SessionState::Closed;
        self.held = Vec::new();
        err
    }

    fn send_close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let mut wire = Wire::output(&mut self.output);
        // Only "already closed" can come back, and then there is nothing left to send.
        let _ = self.ctx.close(&mut wire, Some(frame));
    }

    /// Move whatever tungstenite queued (a pong, a close reply) to the output.
    fn flush(&mut self) {
        let mut wire = Wire::output(&mut self.output);
        match self.ctx.flush(&mut wire) {
            Ok(()) => {}
            // The close reply went out and the handshake is over (server role).
            Err(_) => self.state = SessionState::Closed,
        }
    }

    fn check_open(&self) -> Result<(), WsError> {
        match self.state {
            SessionState::Open => Ok(()),
            other => Err(WsError::NotOpen(other)),
        }
    }
}

/// The failure a tungstenite read error stands for.
fn from_tungstenite(e: TError) -> WsError {
    match e {
        TError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            WsError::MessageTooBig {
                size,
                max: max_size,
            }
        }
        TError::Utf8(detail) => WsError::InvalidUtf8(detail),
        TError::Protocol(p) => WsError::Protocol {
            code: close_code::PROTOCOL_ERROR,
            detail: p.to_string(),
        },
        // Cannot happen with an in-memory wire and no write limit; still a clean close.
        other => WsError::Protocol {
            code: close_code::INTERNAL_ERROR,
            detail: other.to_string(),
        },
    }
}

/// A data message for the app, unless we already closed: after our close frame the app has said
/// it is done, and RFC 6455 §1.4 lets the endpoint discard what follows.
fn deliver(state: SessionState, events: &mut VecDeque<Event>, msg: Message) {
    if state == SessionState::Open {
        events.push_back(Event::Message(msg));
    }
}

/// The reason our close frame gives for a failure (short: it is for people reading traces).
fn reason_for(code: u16) -> &'static str {
    match code {
        close_code::INVALID_DATA => "Invalid UTF-8",
        close_code::MESSAGE_TOO_BIG => "Message too big",
        close_code::PROTOCOL_ERROR => "Protocol error",
        _ => "Internal error",
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
