//! The `websocket_session` fuzz target as a plain function: `cargo fuzz` (fuzz/) and the bounded
//! stable run (tests/fuzz_stable.rs) share it, so both check the same invariants. A panic
//! (failed invariant) is a bug.
//!
//! The first byte picks `max_message_size`; the rest is a script of operations on one session:
//! feed a piece of raw bytes (of a length the script gives, so input arrives in arbitrary
//! pieces), feed a well-formed masked frame built from script bytes (so the fuzzer reaches
//! fragments, control frames and the closing handshake quickly), send a message, or close.
//!
//! Invariants: no panic; the output is only unmasked, final server frames, at most one close
//! frame and nothing after it; the output never exceeds the bytes fed plus what was sent plus
//! two control frames (replies echo the peer's control frames, which are at least as long);
//! the events never carry more bytes than were fed, and no message is over the limit; the
//! state only moves forward; once `Closed`, nothing more comes out and send/close are refused.

use gunicorn_websocket::{Event, Message, Session, SessionConfig, SessionState};

const LIMITS: [usize; 5] = [0, 16, 125, 1024, 16 << 20];

/// Reads the script: bytes in order, zero once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (now, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        now
    }
}

fn rank(s: SessionState) -> u8 {
    match s {
        SessionState::Open => 0,
        SessionState::Closing => 1,
        SessionState::Closed => 2,
    }
}

/// A client frame: masked, with the length in the fewest bytes.
fn masked_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Walks the server's output frame by frame and checks each (RFC 6455 §5.1, §5.2, §5.5).
fn check_output(out: &[u8]) {
    let mut rest = out;
    let mut closed = false;
    while !rest.is_empty() {
        assert!(!closed, "bytes after our close frame");
        assert!(rest.len() >= 2, "truncated frame header");
        let (b0, b1) = (rest[0], rest[1]);
        assert_eq!(b0 & 0xf0, 0x80, "FIN set, RSV clear: {b0:#x}");
        let opcode = b0 & 0x0f;
        assert!(matches!(opcode, 0x1 | 0x2 | 0x8 | 0xA), "opcode {opcode}");
        assert_eq!(b1 & 0x80, 0, "a server never masks");
        let (len, header) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[2..10]);
                (usize::try_from(u64::from_be_bytes(b)).unwrap(), 10)
            }
            n => (usize::from(n), 2),
        };
        assert!(rest.len() >= header + len, "truncated frame payload");
        let payload = &rest[header..header + len];
        if opcode >= 0x8 {
            assert!(len <= 125, "control frame of {len} bytes");
        }
        if opcode == 0x8 {
            closed = true;
            assert_ne!(len, 1, "a close payload is empty or has a code");
            if len >= 2 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                assert!(
                    gunicorn_websocket::close_code::may_send(code),
                    "close code {code} may not be sent"
                );
                assert!(std::str::from_utf8(&payload[2..]).is_ok(), "close reason");
            }
        }
        if opcode == 0x1 {
            assert!(std::str::from_utf8(payload).is_ok(), "text frame");
        }
        rest = &rest[header + len..];
    }
}

pub fn websocket_session(data: &[u8]) {
    let mut script = Script(data);
    let max = LIMITS[usize::from(script.byte()) % LIMITS.len()];
    let mut ws = Session::new(SessionConfig {
        max_message_size: max,
    });
    let mut output = Vec::new();
    let mut fed = 0usize;
    let mut sent = 0usize;
    let mut delivered = 0usize;
    let mut state = ws.state();
    let mut ops = 0;
    while !script.0.is_empty() && ops < 10_000 {
        ops += 1;
        let before = ws.state();
        let out_before = output.len();
        let op = script.byte();
        let mut fed_now = 0;
        match op % 8 {
            // Raw bytes, in a piece of 0..=255 bytes.
            0..=3 => {
                let n = usize::from(script.byte());
                let piece = script.take(n).to_vec();
                fed_now = piece.len();
                if ws.feed(&piece).is_err() {
                    assert_eq!(ws.state(), SessionState::Closed, "a failure closes");
                }
            }
            // A well-formed masked frame: FIN/RSV/opcode byte, then a payload of 0..=255 bytes
            // (or a long one of repeated bytes), fed whole or split in two.
            4 | 5 => {
                let first = script.byte();
                let n = match script.byte() {
                    0xff => 300 + usize::from(script.byte()) * 64,
                    n => usize::from(n),
                };
                let mask = [script.byte(), script.byte(), script.byte(), script.byte()];
                let mut payload = script.take(n).to_vec();
                payload.resize(n, b'a');
                let frame = masked_frame(first, &payload, mask);
                fed_now = frame.len();
                let split = usize::from(script.byte()) % (frame.len() + 1);
                let _ = ws.feed(&frame[..split]);
                let _ = ws.feed(&frame[split..]);
            }
            6 => {
                let n = usize::from(script.byte());
                let bytes = script.take(n).to_vec();
                let msg = if op & 0x80 != 0 {
                    Message::Text(String::from_utf8_lossy(&bytes).into_owned())
                } else {
                    Message::Binary(bytes)
                };
                let size = match &msg {
                    Message::Text(t) => t.len(),
                    Message::Binary(b) => b.len(),
                };
                let ok = ws.send(msg).is_ok();
                assert_eq!(ok, before == SessionState::Open, "send only when open");
                if ok {
                    sent += size + 10;
                }
            }
            _ => {
                let code = u16::from_be_bytes([script.byte(), script.byte()]);
                let n = usize::from(script.byte());
                let reason = String::from_utf8_lossy(script.take(n)).into_owned();
                let ok = ws.close(code, &reason).is_ok();
                if ok {
                    assert_eq!(before, SessionState::Open);
                    assert_eq!(ws.state(), SessionState::Closing);
                }
            }
        }
        fed += fed_now;
        let pending = ws.pending_output();
        let taken = ws.take_output();
        assert_eq!(taken.len(), pending);
        output.extend(taken);
        while let Some(event) = ws.next_event() {
            if let Event::Message(m) = event {
                let size = match m {
                    Message::Text(t) => t.len(),
                    Message::Binary(b) => b.len(),
                };
                if max != 0 {
                    assert!(size <= max, "message of {size} over the limit {max}");
                }
                delivered += size;
            }
        }
        let now = ws.state();
        assert!(
            rank(now) >= rank(state),
            "state went back: {state:?} -> {now:?}"
        );
        if before == SessionState::Closed {
            assert_eq!(output.len(), out_before, "output after Closed");
        }
        state = now;
        assert!(
            output.len() <= fed + sent + 2 * 127,
            "output {} for {fed} fed and {sent} sent",
            output.len()
        );
        assert!(delivered <= fed, "{delivered} delivered of {fed} fed");
    }
    check_output(&output);
    if ws.state() == SessionState::Closed {
        assert!(ws.send(Message::Binary(vec![1])).is_err());
        assert!(ws.close(1000, "").is_err());
        assert!(ws.feed(&[0x81, 0x80, 0, 0, 0, 0]).is_ok());
        assert!(ws.take_output().is_empty());
        assert!(ws.next_event().is_none());
    }
}
