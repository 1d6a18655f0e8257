//! A session over frames built by hand (RFC 6455 §5.2), each case fed whole, one byte at a
//! time, and in uneven pieces: the result must not depend on how the bytes arrive.

use gunicorn_websocket::{Event, Message, Session, SessionConfig, SessionState, WsError};

const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame: FIN bit, opcode, and a payload, masked with `mask` (a client's) or not (a
/// server's), its length in the fewest bytes.
fn frame_with(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A client frame (masked).
fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(u8::from(fin) << 7 | opcode, payload, Some(MASK))
}

/// A server frame (unmasked, final), as the session must write it.
fn server(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(0x80 | opcode, payload, None)
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

fn binary(b: &[u8]) -> Event {
    Event::Message(Message::Binary(b.to_vec()))
}

fn closed(code: u16, reason: &str) -> Event {
    Event::Closed {
        code,
        reason: reason.into(),
    }
}

struct Outcome {
    events: Vec<Event>,
    output: Vec<u8>,
    /// The close code of the first error any feed returned.
    error: Option<u16>,
    state: SessionState,
}

fn run(max: usize, input: &[u8], pieces: &[usize]) -> Outcome {
    let mut ws = Session::new(SessionConfig {
        max_message_size: max,
    });
    let mut error = None;
    let mut output = Vec::new();
    let mut rest = input;
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        let (now, later) = rest.split_at(n);
        rest = later;
        if let Err(e) = ws.feed(now) {
            error.get_or_insert(e.close_code().expect("a failure has a close code"));
        }
        output.extend(ws.take_output());
    }
    let mut events = Vec::new();
    while let Some(e) = ws.next_event() {
        events.push(e);
    }
    Outcome {
        events,
        output,
        error,
        state: ws.state(),
    }
}

struct Case {
    name: &'static str,
    max: usize,
    input: Vec<u8>,
    events: Vec<Event>,
    output: Vec<u8>,
    error: Option<u16>,
    state: SessionState,
}

fn case(name: &'static str, input: Vec<u8>, events: Vec<Event>, output: Vec<u8>) -> Case {
    let state = if events.iter().any(|e| matches!(e, Event::Closed { .. })) {
        SessionState::Closed
    } else {
        SessionState::Open
    };
    Case {
        name,
        max: 1 << 20,
        input,
        events,
        output,
        error: None,
        state,
    }
}

/// A case the peer fails: the events before the fault, then our close frame with `code`.
fn failing(name: &'static str, input: Vec<u8>, events: Vec<Event>, code: u16) -> Case {
    let reason = match code {
        1007 => "Invalid UTF-8",
        1009 => "Message too big",
        _ => "Protocol error",
    };
    Case {
        name,
        max: 1 << 20,
        input,
        events,
        output: server(CLOSE, &close_payload(code, reason)),
        error: Some(code),
        state: SessionState::Closed,
    }
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

fn cases() -> Vec<Case> {
    let long: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    let huge: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
    vec![
        case(
            "masked text",
            client(true, TEXT, b"hello"),
            vec![text("hello")],
            vec![],
        ),
        case(
            "empty text",
            client(true, TEXT, b""),
            vec![text("")],
            vec![],
        ),
        case(
            "masked binary",
            client(true, BINARY, &[0, 1, 2, 255]),
            vec![binary(&[0, 1, 2, 255])],
            vec![],
        ),
        case(
            "16-bit length",
            client(true, BINARY, &long),
            vec![binary(&long)],
            vec![],
        ),
        case(
            "64-bit length",
            client(true, BINARY, &huge),
            vec![binary(&huge)],
            vec![],
        ),
        case(
            "UTF-8 text",
            client(true, TEXT, "h\u{e9}\u{1f600}".as_bytes()),
            vec![text("h\u{e9}\u{1f600}")],
            vec![],
        ),
        case(
            "fragmented text",
            cat(&[
                client(false, TEXT, b"Hel"),
                client(false, CONT, b"lo "),
                client(true, CONT, b"world"),
            ]),
            vec![text("Hello world")],
            vec![],
        ),
        case(
            "a character split across fragments",
            cat(&[
                client(false, TEXT, &"\u{e9}".as_bytes()[..1]),
                client(true, CONT, &"\u{e9}".as_bytes()[1..]),
            ]),
            vec![text("\u{e9}")],
            vec![],
        ),
        case(
            "fragmented binary",
            cat(&[client(false, BINARY, &[1]), client(true, CONT, &[2, 3])]),
            vec![binary(&[1, 2, 3])],
            vec![],
        ),
        case(
            "ping between fragments is answered",
            cat(&[
                client(false, TEXT, b"a"),
                client(true, PING, b"p"),
                client(true, CONT, b"b"),
            ]),
            vec![text("ab")],
            server(PONG, b"p"),
        ),
        case(
            "ping with payload",
            client(true, PING, b"are you there"),
            vec![],
            server(PONG, b"are you there"),
        ),
        case(
            "empty ping",
            client(true, PING, b""),
            vec![],
            server(PONG, b""),
        ),
        case("pong ignored", client(true, PONG, b"x"), vec![], vec![]),
        case(
            "two frames in one feed",
            cat(&[client(true, TEXT, b"one"), client(true, BINARY, b"two")]),
            vec![text("one"), binary(b"two")],
            vec![],
        ),
        case(
            "close with code and reason is echoed",
            client(true, CLOSE, &close_payload(1000, "bye")),
            vec![closed(1000, "bye")],
            server(CLOSE, &close_payload(1000, "bye")),
        ),
        case(
            "close with an application code",
            client(true, CLOSE, &close_payload(4001, "")),
            vec![closed(4001, "")],
            server(CLOSE, &close_payload(4001, "")),
        ),
        case(
            "close without code is 1005, answered without code",
            client(true, CLOSE, b""),
            vec![closed(1005, "")],
            server(CLOSE, b""),
        ),
        case(
            "a close code that may not be sent is answered 1002",
            client(true, CLOSE, &close_payload(1005, "")),
            vec![closed(1002, "Protocol violation")],
            server(CLOSE, &close_payload(1002, "Protocol violation")),
        ),
        case(
            "messages before the close, nothing after it",
            cat(&[
                client(true, TEXT, b"last"),
                client(true, CLOSE, &close_payload(1001, "")),
                client(true, TEXT, b"ignored"),
                vec![0xff, 0xff],
            ]),
            vec![text("last"), closed(1001, "")],
            server(CLOSE, &close_payload(1001, "")),
        ),
        failing(
            "unmasked frame",
            frame_with(0x81, b"hi", None),
            vec![],
            1002,
        ),
        failing(
            "invalid UTF-8 text",
            client(true, TEXT, &[b'a', 0xff]),
            vec![],
            1007,
        ),
        failing(
            "invalid UTF-8 across fragments",
            cat(&[
                client(false, TEXT, &[0xe2, 0x82]),
                client(true, CONT, &[0x41]),
            ]),
            vec![],
            1007,
        ),
        failing(
            "close reason not UTF-8",
            client(true, CLOSE, &[0x03, 0xe8, 0xc0]),
            vec![],
            1007,
        ),
        failing(
            "RSV1 set without an extension",
            frame_with(0x80 | 0x40 | TEXT, b"x", Some(MASK)),
            vec![],
            1002,
        ),
        failing(
            "reserved data opcode",
            client(true, 0x3, b"x"),
            vec![],
            1002,
        ),
        failing(
            "reserved control opcode",
            client(true, 0xB, b""),
            vec![],
            1002,
        ),
        failing(
            "continuation without a start",
            client(true, CONT, b"x"),
            vec![],
            1002,
        ),
        failing(
            "new message inside a fragmented one",
            cat(&[client(false, TEXT, b"a"), client(true, TEXT, b"b")]),
            vec![],
            1002,
        ),
        failing("fragmented ping", client(false, PING, b"p"), vec![], 1002),
        failing(
            "ping over 125 bytes",
            client(true, PING, &[0; 126]),
            vec![],
            1002,
        ),
        failing(
            "16-bit length for a short payload (RFC 6455 §5.2 fewest bytes)",
            [vec![0x82, 0x80 | 126, 0, 5], MASK.to_vec(), vec![0; 5]].concat(),
            vec![],
            1002,
        ),
        failing(
            "64-bit length for a short payload",
            [
                vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5],
                MASK.to_vec(),
                vec![0; 5],
            ]
            .concat(),
            vec![],
            1002,
        ),
        failing(
            "64-bit length with the top bit set",
            vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5],
            vec![],
            1002,
        ),
        failing(
            "unmasked, refused from the header before the payload",
            vec![0x82, 126, 0x10, 0x00],
            vec![],
            1002,
        ),
        failing(
            "close payload of one byte",
            client(true, CLOSE, &[0x03]),
            vec![],
            1002,
        ),
        failing(
            "good messages stay before a bad frame",
            cat(&[client(true, TEXT, b"ok"), frame_with(0x82, b"no", None)]),
            vec![text("ok")],
            1002,
        ),
        Case {
            max: 10,
            ..failing(
                "frame over the limit",
                client(true, BINARY, &[0; 11]),
                vec![],
                1009,
            )
        },
        Case {
            max: 10,
            ..failing(
                "fragments over the limit",
                cat(&[
                    client(false, TEXT, b"123456"),
                    client(true, CONT, b"789012"),
                ]),
                vec![],
                1009,
            )
        },
        Case {
            max: 10,
            ..failing(
                "refused from the header, before the payload",
                client(true, BINARY, &[0; 1 << 16])[..14].to_vec(),
                vec![],
                1009,
            )
        },
        Case {
            max: 10,
            ..case(
                "a message at the limit",
                client(true, TEXT, b"0123456789"),
                vec![text("0123456789")],
                vec![],
            )
        },
        Case {
            max: 0,
            ..case(
                "0 is no limit",
                client(true, BINARY, &huge),
                vec![binary(&huge)],
                vec![],
            )
        },
    ]
}

#[test]
fn frames_in_any_pieces() {
    let splits: &[(&str, &[usize])] = &[
        ("whole", &[usize::MAX]),
        ("one byte at a time", &[1]),
        ("uneven pieces", &[3, 1, 7, 2]),
    ];
    for c in cases() {
        for (how, pieces) in splits {
            let got = run(c.max, &c.input, pieces);
            let at = format!("{} ({how})", c.name);
            assert_eq!(got.events, c.events, "{at}: events");
            assert_eq!(got.output, c.output, "{at}: output");
            assert_eq!(got.error, c.error, "{at}: error");
            assert_eq!(got.state, c.state, "{at}: state");
        }
    }
}

#[test]
fn send_writes_unmasked_frames() {
    let long = vec![b'x'; 200];
    let huge = vec![7u8; 70_000];
    let cases: Vec<(&str, Message, Vec<u8>)> = vec![
        (
            "text",
            Message::Text("Hello".into()),
            server(TEXT, b"Hello"),
        ),
        ("empty binary", Message::Binary(vec![]), server(BINARY, b"")),
        (
            "16-bit length",
            Message::Binary(long.clone()),
            server(BINARY, &long),
        ),
        (
            "64-bit length",
            Message::Binary(huge.clone()),
            server(BINARY, &huge),
        ),
    ];
    for (name, msg, want) in cases {
        let mut ws = Session::new(SessionConfig::default());
        ws.send(msg).unwrap();
        assert_eq!(ws.pending_output(), want.len(), "{name}");
        assert_eq!(ws.take_output(), want, "{name}");
        assert!(ws.take_output().is_empty(), "{name}: output is taken");
    }
    // Exact bytes of a small frame, independent of the helper.
    let mut ws = Session::new(SessionConfig::default());
    ws.send(Message::Text("Hi".into())).unwrap();
    assert_eq!(ws.take_output(), [0x81, 0x02, b'H', b'i']);
}

#[test]
fn our_close_waits_for_the_peers() {
    let mut ws = Session::new(SessionConfig::default());
    ws.close(1000, "bye").unwrap();
    assert_eq!(ws.state(), SessionState::Closing);
    assert_eq!(ws.take_output(), server(CLOSE, &close_payload(1000, "bye")));
    assert_eq!(
        ws.send(Message::Text("late".into())),
        Err(WsError::NotOpen(SessionState::Closing))
    );
    assert_eq!(
        ws.close(1000, ""),
        Err(WsError::NotOpen(SessionState::Closing))
    );
    // A message the peer sent before it saw our close is dropped; pings are not answered
    // (RFC 6455 §5.5.2 answers pings until a close frame, ours included).
    ws.feed(&client(true, TEXT, b"in flight")).unwrap();
    ws.feed(&client(true, PING, b"p")).unwrap();
    assert_eq!(ws.next_event(), None);
    assert!(ws.take_output().is_empty());
    ws.feed(&client(true, CLOSE, &close_payload(1000, "ok")))
        .unwrap();
    assert_eq!(ws.next_event(), Some(closed(1000, "ok")));
    assert_eq!(ws.state(), SessionState::Closed);
    assert!(ws.take_output().is_empty(), "no second close frame");
    // Anything later is ignored.
    ws.feed(&client(true, TEXT, b"after")).unwrap();
    ws.feed(&[0xff; 8]).unwrap();
    assert_eq!(ws.next_event(), None);
    assert!(ws.take_output().is_empty());
}

#[test]
fn close_codes_and_reasons() {
    let long = "\u{e9}".repeat(100); // 200 bytes; 123 falls inside a character
    type Case<'a> = (&'a str, u16, &'a str, Result<Vec<u8>, WsError>);
    let cases: Vec<Case<'_>> = vec![
        ("normal", 1000, "", Ok(close_payload(1000, ""))),
        ("app code", 4000, "why", Ok(close_payload(4000, "why"))),
        (
            "internal error",
            1011,
            "Application error",
            Ok(close_payload(1011, "Application error")),
        ),
        (
            "1005 is never sent",
            1005,
            "",
            Err(WsError::InvalidCloseCode(1005)),
        ),
        (
            "1006 is never sent",
            1006,
            "",
            Err(WsError::InvalidCloseCode(1006)),
        ),
        (
            "1015 is never sent",
            1015,
            "",
            Err(WsError::InvalidCloseCode(1015)),
        ),
        (
            "undefined code",
            2000,
            "",
            Err(WsError::InvalidCloseCode(2000)),
        ),
        ("zero", 0, "", Err(WsError::InvalidCloseCode(0))),
        (
            "reason cut to 123 bytes at a character boundary",
            1000,
            &long,
            Ok(close_payload(1000, &"\u{e9}".repeat(61))),
        ),
    ];
    for (name, code, reason, want) in cases {
        let mut ws = Session::new(SessionConfig::default());
        let got = ws.close(code, reason).map(|()| ws.take_output());
        match want {
            Ok(payload) => {
                assert_eq!(got, Ok(server(CLOSE, &payload)), "{name}");
                assert_eq!(ws.state(), SessionState::Closing, "{name}");
            }
            Err(e) => {
                assert_eq!(got, Err(e), "{name}");
                assert_eq!(ws.state(), SessionState::Open, "{name}: still open");
                assert!(ws.take_output().is_empty(), "{name}");
            }
        }
    }
}

#[test]
fn nothing_is_sent_after_the_peers_close_or_a_failure() {
    let inputs: &[(&str, Vec<u8>)] = &[
        (
            "peer's close",
            client(true, CLOSE, &close_payload(1000, "")),
        ),
        ("protocol error", frame_with(0x81, b"x", None)),
    ];
    for (name, input) in inputs {
        let mut ws = Session::new(SessionConfig::default());
        let _ = ws.feed(input);
        ws.take_output();
        assert_eq!(ws.state(), SessionState::Closed, "{name}");
        let closed = Err(WsError::NotOpen(SessionState::Closed));
        assert_eq!(ws.send(Message::Binary(vec![1])), closed, "{name}: send");
        assert_eq!(ws.close(1000, ""), closed, "{name}: close");
        assert_eq!(ws.feed(&client(true, TEXT, b"x")), Ok(()), "{name}: feed");
        assert!(ws.take_output().is_empty(), "{name}");
    }
}

#[test]
fn errors_name_the_fault() {
    let mut ws = Session::new(SessionConfig {
        max_message_size: 4,
    });
    let err = ws.feed(&client(true, TEXT, b"12345")).unwrap_err();
    assert_eq!(err, WsError::MessageTooBig { size: 5, max: 4 });
    assert_eq!(err.close_code(), Some(1009));
    assert!(err.to_string().contains("1009"), "{err}");

    let mut ws = Session::new(SessionConfig::default());
    let err = ws.feed(&frame_with(0x81, b"x", None)).unwrap_err();
    assert!(
        matches!(err, WsError::Protocol { code: 1002, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("mask"), "{err}");
}

#[test]
fn replies_stay_within_the_bytes_fed() {
    // Many pings in one feed: one pong each, never more output than input.
    let pings: Vec<u8> = (0..100)
        .flat_map(|_| client(true, PING, &[9; 125]))
        .collect();
    let mut ws = Session::new(SessionConfig::default());
    ws.feed(&pings).unwrap();
    let out = ws.take_output();
    assert_eq!(out, server(PONG, &[9; 125]).repeat(100));
    assert!(out.len() <= pings.len());
}

#[test]
fn with_no_limit_a_huge_announced_frame_holds_only_what_arrived() {
    // A header announcing 2^62 bytes, then 1000 of them: nothing is reserved for the rest
    // (this aborted the process when the codec saw the header first).
    let mut ws = Session::new(SessionConfig {
        max_message_size: 0,
    });
    let mut head = vec![0x82, 0x80 | 127];
    head.extend_from_slice(&(1u64 << 62).to_be_bytes());
    head.extend_from_slice(&MASK);
    ws.feed(&head).unwrap();
    for _ in 0..10 {
        ws.feed(&[0; 100]).unwrap();
    }
    assert_eq!(ws.state(), SessionState::Open);
    assert_eq!(ws.next_event(), None);
    assert!(ws.take_output().is_empty());
    // The app can still close, and the peer's close (once its frame ends) is not awaited here.
    ws.close(1001, "going away").unwrap();
    assert_eq!(
        ws.take_output(),
        server(CLOSE, &close_payload(1001, "going away"))
    );
}
