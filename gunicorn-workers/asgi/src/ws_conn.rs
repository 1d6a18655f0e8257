//! The state of an upgraded connection (RFC 6455), under the connection's lock: the handshake
//! waiting for the app's answer, the open session (`gunicorn-websocket`, sans-IO over
//! tungstenite's codec), the events waiting for the app's `receive()`, the closing handshake.
//! The app's side of it (`receive`/`send`) is `websocket.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gunicorn_core::log_debug;
use gunicorn_http::{error_page, Request};
use gunicorn_websocket::{
    offer, Event, HandshakeError, Message, Offer, Session, SessionState, WsError,
};
use pyo3::prelude::*;

use crate::effects::{After, Inbound, Resolution};

/// Events waiting for the app before reading from the socket pauses (gunicorn stops at 32).
pub(crate) const EVENT_BACKLOG: usize = 32;
/// Bytes that may arrive before the app accepted; more closes the connection.
const PRE_ACCEPT_LIMIT: usize = 64 * 1024;
/// After our close frame, how long the peer gets to answer with its own.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// A connection we failed (1002, 1007, 1009) closes once the peer has been silent this long
/// (or at [`CLOSE_WAIT`]).
const DRAIN_QUIET: Duration = Duration::from_secs(1);

/// Where the WebSocket is.
pub(crate) enum Stage {
    /// The app has not answered the upgrade yet; bytes the client sent wait.
    Handshake { pending: Vec<u8> },
    /// Accepted: frames flow.
    Open(Box<Session>),
    /// Refused with an HTTP response, or failed before accepting.
    Refused,
    /// We failed the connection (RFC 6455 §7.1.7: a protocol error, a message over the size
    /// limit) and our close frame is written: what the peer still sends (the rest of a large
    /// message, its close frame) is read and dropped until it goes quiet. Closing at once
    /// would leave its bytes unread, and the kernel's RST could destroy our close frame
    /// before the peer reads it, so that it would see 1006 instead of the code.
    Draining { since: Instant, last_read: Instant },
}

/// One upgraded connection.
pub(crate) struct WsConn {
    pub generation: u64,
    pub(crate) offer: Offer,
    pub(crate) stage: Stage,
    pub(crate) events: VecDeque<Inbound>,
    pub(crate) waiter: Option<Py<PyAny>>,
    pub task: Option<Py<PyAny>>,
    pub(crate) max_message: usize,
    /// The client is gone (or the session ended): `websocket.disconnect` was queued.
    pub(crate) gone: bool,
    /// Our close frame went out at this time: the transport closes if the peer does not answer.
    pub(crate) closing_since: Option<Instant>,
    /// The whole exchange ended: the caller closes the transport.
    pub(crate) finished: bool,
}

/// `Some` when `req` asks for a WebSocket: the offer, or why the upgrade is malformed. An
/// upgrade asked by a method other than GET is served as plain HTTP, as gunicorn 27 does, and
/// so is one over HTTP/1.0, whose `Upgrade` a server must ignore (RFC 9110 §7.8).
pub(crate) fn upgrade_request(req: &Request) -> Option<Result<Offer, HandshakeError>> {
    match offer(req) {
        Ok(None) => None,
        Err(HandshakeError::NotGet(_) | HandshakeError::OldHttpVersion(..)) => None,
        Ok(Some(o)) => Some(Ok(o)),
        Err(e) => Some(Err(e)),
    }
}

/// The HTTP refusal of a malformed upgrade (400, or 426 with the version we speak).
pub(crate) fn refusal(e: &HandshakeError) -> Vec<u8> {
    let status = e.status();
    let reason = crate::reason::phrase(status);
    let mut page = error_page(status, reason, &e.to_string());
    if let Some(end) = page.windows(4).position(|w| w == b"\r\n\r\n") {
        let mut extra = Vec::new();
        for (n, v) in e.response_headers() {
            extra.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        page.splice(end + 2..end + 2, extra);
    }
    page
}

impl WsConn {
    pub(crate) fn new(
        generation: u64,
        offer: Offer,
        after_head: Vec<u8>,
        max_message: usize,
    ) -> WsConn {
        let mut events = VecDeque::new();
        events.push_back(Inbound::Connect);
        WsConn {
            generation,
            offer,
            stage: Stage::Handshake {
                pending: after_head,
            },
            events,
            waiter: None,
            task: None,
            max_message,
            gone: false,
            closing_since: None,
            finished: false,
        }
    }

    /// Bytes from the socket.
    pub(crate) fn received(&mut self, data: &[u8], after: &mut After) {
        match &mut self.stage {
            Stage::Handshake { pending } => {
                pending.extend_from_slice(data);
                if pending.len() > PRE_ACCEPT_LIMIT {
                    self.gone(1009, String::new(), after);
                    self.finished = true;
                }
            }
            Stage::Open(session) => {
                let result = session.feed(data);
                after.write.extend_from_slice(&session.take_output());
                self.collect(result, after);
            }
            Stage::Draining { last_read, .. } => *last_read = Instant::now(),
            Stage::Refused => {}
        }
    }

    /// Moves the session's events to the app's queue; a protocol failure ends it.
    pub(crate) fn collect(&mut self, result: Result<(), WsError>, after: &mut After) {
        let Stage::Open(session) = &mut self.stage else {
            return;
        };
        while let Some(ev) = session.next_event() {
            match ev {
                Event::Message(Message::Text(t)) => self.events.push_back(Inbound::Text(t)),
                Event::Message(Message::Binary(b)) => self.events.push_back(Inbound::Bytes(b)),
                Event::Closed { code, reason } => {
                    self.events.push_back(Inbound::Disconnect { code, reason });
                    self.gone = true;
                }
            }
        }
        let failed = result.is_err();
        if let Err(e) = result {
            log_debug!("WebSocket closed: {e}");
            let code = e.close_code().unwrap_or(1002);
            if !self.gone {
                self.events.push_back(Inbound::Disconnect {
                    code,
                    reason: String::new(),
                });
                self.gone = true;
            }
        }
        if failed {
            let now = Instant::now();
            self.stage = Stage::Draining {
                since: now,
                last_read: now,
            };
        } else if session.state() == SessionState::Closed {
            self.finished = true;
        }
        self.wake(after);
    }

    /// Hands the next event to a waiting `receive()`.
    fn wake(&mut self, after: &mut After) {
        if self.waiter.is_some() && !self.events.is_empty() {
            let w = self.waiter.take().expect("checked");
            let ev = self.events.pop_front().expect("checked");
            after.resolve.push((w, Resolution::WebSocket(ev)));
        }
    }

    pub(crate) fn gone(&mut self, code: u16, reason: String, after: &mut After) {
        if !self.gone {
            self.gone = true;
            self.events.push_back(Inbound::Disconnect { code, reason });
        }
        self.wake(after);
    }

    /// The transport closed (connection_lost): 1006, abnormal closure (RFC 6455 §7.1.5).
    pub(crate) fn disconnected(&mut self, after: &mut After) {
        self.finished = true;
        self.gone(1006, String::new(), after);
    }

    /// The connection should be closed now.
    pub(crate) fn is_closed(&self) -> bool {
        self.finished
    }

    /// Reading should pause: the app has this many events it did not take.
    pub(crate) fn backlog(&self) -> usize {
        self.events.len()
    }

    /// Our close frame went out more than [`CLOSE_WAIT`] ago without an answer.
    pub(crate) fn close_overdue(&self, now: Instant) -> bool {
        if let Stage::Draining { since, last_read } = self.stage {
            return now.duration_since(last_read) >= DRAIN_QUIET
                || now.duration_since(since) >= CLOSE_WAIT;
        }
        self.closing_since
            .is_some_and(|t| now.duration_since(t) >= CLOSE_WAIT)
    }

    /// A graceful stop: close 1001 "going away" (RFC 6455 §7.4.1), or nothing before accept.
    pub(crate) fn going_away(&mut self, after: &mut After) {
        if let Stage::Open(session) = &mut self.stage {
            if session.close(1001, "").is_ok() {
                after.write.extend_from_slice(&session.take_output());
                self.closing_since = Some(Instant::now());
            }
        }
    }
}
