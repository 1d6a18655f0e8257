//! The opening handshake (RFC 6455 §4.2) over requests parsed by gunicorn-http's own parser.

use std::sync::Arc;

use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer, Request, RequestParser};
use gunicorn_websocket::{accept_key, offer, HandshakeError, Offer};

/// RFC 6455 §1.3's example key.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn parse(head: &str) -> Request {
    let conn = ConnInfo {
        peer: Peer::Tcp("127.0.0.1:40000".parse().unwrap()),
        local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        tls: None,
    };
    let (req, _) = RequestParser::new(Arc::new(HttpConfig::default()), conn)
        .parse_head(head.as_bytes())
        .unwrap_or_else(|e| panic!("{head:?} does not parse: {e}"))
        .unwrap_or_else(|| panic!("{head:?} is incomplete"));
    req
}

/// A request head: the request line, then the fields, then the empty line.
fn request(line: &str, fields: &[&str]) -> Request {
    let mut head = format!("{line}\r\nHost: example.com\r\n");
    for f in fields {
        head.push_str(f);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    parse(&head)
}

const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const VERSION: &str = "Sec-WebSocket-Version: 13";

fn key_field() -> String {
    format!("Sec-WebSocket-Key: {KEY}")
}

fn plain_offer(key: &str) -> Offer {
    Offer {
        key: key.to_owned(),
        subprotocols: vec![],
        extensions: vec![],
    }
}

#[test]
fn accept_key_of_the_rfc_example() {
    // RFC 6455 §1.3.
    assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn valid_upgrades() {
    let key = key_field();
    let cases: &[(&str, &str, Vec<&str>)] = &[
        (
            "minimal",
            "GET /chat HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key, VERSION],
        ),
        (
            "names and tokens in any case",
            "GET /chat HTTP/1.1",
            vec![
                "upgrade: WebSocket",
                "CONNECTION: UPGRADE",
                "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
                "SEC-WEBSOCKET-VERSION: 13",
            ],
        ),
        (
            "Connection token list",
            "GET / HTTP/1.1",
            vec![UPGRADE, "Connection: keep-alive, Upgrade", &key, VERSION],
        ),
        (
            "Connection over two lines",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                "Connection: keep-alive",
                "Connection: upgrade",
                &key,
                VERSION,
            ],
        ),
        (
            "Upgrade token list",
            "GET / HTTP/1.1",
            vec!["Upgrade: foo/2, websocket", CONNECTION, &key, VERSION],
        ),
        (
            "spaces around the values",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  ",
                "Sec-WebSocket-Version:  13 ",
            ],
        ),
        (
            "last character's unused bits are not checked (as gunicorn's b64decode)",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",
                VERSION,
            ],
        ),
    ];
    for (name, line, fields) in cases {
        let got = offer(&request(line, fields));
        let key = if name.starts_with("last") {
            "dGhlIHNhbXBsZSBub25jZR=="
        } else {
            KEY
        };
        assert_eq!(got, Ok(Some(plain_offer(key))), "{name}");
    }
}

#[test]
fn not_upgrades_are_plain_http() {
    let key = key_field();
    let cases: &[(&str, Vec<&str>)] = &[
        ("no Upgrade, no Connection", vec![]),
        (
            "no Connection: upgrade (RFC 9110 §7.8)",
            vec![UPGRADE, &key, VERSION],
        ),
        (
            "Connection without the upgrade token",
            vec![UPGRADE, "Connection: keep-alive, upgrades", &key, VERSION],
        ),
        ("Upgrade: h2c", vec!["Upgrade: h2c", CONNECTION]),
        (
            "Upgrade names websocket as part of a token",
            vec!["Upgrade: websockets", CONNECTION],
        ),
        ("no Upgrade", vec![CONNECTION, &key, VERSION]),
    ];
    for (name, fields) in cases {
        assert_eq!(
            offer(&request("GET / HTTP/1.1", fields)),
            Ok(None),
            "{name}"
        );
    }
}

#[test]
fn malformed_upgrades_are_refused_with_a_status() {
    let key = key_field();
    type Case<'a> = (&'a str, &'a str, Vec<&'a str>, HandshakeError, u16);
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            "POST /chat HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key, VERSION],
            HandshakeError::NotGet("POST".into()),
            400,
        ),
        (
            "HTTP/1.0",
            "GET /chat HTTP/1.0",
            vec![UPGRADE, CONNECTION, &key, VERSION],
            HandshakeError::OldHttpVersion(1, 0),
            400,
        ),
        (
            "version 8",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key, "Sec-WebSocket-Version: 8"],
            HandshakeError::UnsupportedVersion(Some("8".into())),
            426,
        ),
        (
            "no version",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key],
            HandshakeError::UnsupportedVersion(None),
            426,
        ),
        (
            "version list",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key, "Sec-WebSocket-Version: 13, 8"],
            HandshakeError::UnsupportedVersion(Some("13, 8".into())),
            426,
        ),
        (
            "the version is checked before the key (as gunicorn)",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, "Sec-WebSocket-Version: 7"],
            HandshakeError::UnsupportedVersion(Some("7".into())),
            426,
        ),
        (
            "missing key",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, VERSION],
            HandshakeError::MissingKey,
            400,
        ),
        (
            "key of 15 bytes",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA",
                VERSION,
            ],
            HandshakeError::BadKey("AAAAAAAAAAAAAAAAAAAA".into()),
            400,
        ),
        (
            "key of 17 bytes",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=",
                VERSION,
            ],
            HandshakeError::BadKey("AAAAAAAAAAAAAAAAAAAAAAA=".into()),
            400,
        ),
        (
            "key without padding",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",
                VERSION,
            ],
            HandshakeError::BadKey("dGhlIHNhbXBsZSBub25jZQ".into()),
            400,
        ),
        (
            "key with a character outside base64",
            "GET / HTTP/1.1",
            vec![
                UPGRADE,
                CONNECTION,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==",
                VERSION,
            ],
            HandshakeError::BadKey("dGhlIHNhbXBsZSBub25j*Q==".into()),
            400,
        ),
        (
            "two keys",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key, &key, VERSION],
            HandshakeError::DuplicateField("Sec-WebSocket-Key"),
            400,
        ),
        (
            "two versions",
            "GET / HTTP/1.1",
            vec![UPGRADE, CONNECTION, &key, VERSION, VERSION],
            HandshakeError::DuplicateField("Sec-WebSocket-Version"),
            400,
        ),
    ];
    for (name, line, fields, want, status) in cases {
        let got = offer(&request(line, &fields));
        assert_eq!(got.as_ref(), Err(&want), "{name}");
        assert_eq!(want.status(), status, "{name}");
        let headers = want.response_headers();
        if status == 426 {
            assert_eq!(headers, &[("Sec-WebSocket-Version", "13")], "{name}");
        } else {
            assert!(headers.is_empty(), "{name}");
        }
    }
}

#[test]
fn subprotocols_and_extensions_are_listed_in_order() {
    let key = key_field();
    let req = request(
        "GET / HTTP/1.1",
        &[
            UPGRADE,
            CONNECTION,
            &key,
            VERSION,
            "Sec-WebSocket-Protocol: chat, superchat",
            "Sec-WebSocket-Protocol: v2.json,,",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo",
        ],
    );
    let got = offer(&req).unwrap().unwrap();
    assert_eq!(got.subprotocols, ["chat", "superchat", "v2.json"]);
    assert_eq!(
        got.extensions,
        ["permessage-deflate; client_max_window_bits", "x-foo"]
    );
}

fn offer_with(subprotocols: &[&str]) -> Offer {
    Offer {
        key: KEY.to_owned(),
        subprotocols: subprotocols.iter().map(|s| s.to_string()).collect(),
        extensions: vec![],
    }
}

fn h(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (name.as_bytes().to_vec(), value.as_bytes().to_vec())
}

#[test]
fn accept_builds_the_101_head() {
    type Case<'a> = (&'a str, Option<&'a str>, Vec<(Vec<u8>, Vec<u8>)>, &'a str);
    let base = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    let cases: Vec<Case<'_>> = vec![
        ("no subprotocol, no headers", None, vec![], "\r\n"),
        (
            "chosen subprotocol",
            Some("superchat"),
            vec![],
            "Sec-WebSocket-Protocol: superchat\r\n\r\n",
        ),
        (
            "extra headers in order, latin-1 value kept",
            Some("chat"),
            vec![h("set-cookie", "a=1"), h("x-b", "caf\u{e9}")],
            "Sec-WebSocket-Protocol: chat\r\nset-cookie: a=1\r\nx-b: caf\u{e9}\r\n\r\n",
        ),
    ];
    let offer = offer_with(&["chat", "superchat"]);
    for (name, sub, headers, tail) in cases {
        let got = offer.accept(sub, &headers).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("{base}{tail}"),
            "{name}"
        );
    }
    // A latin-1 byte (not UTF-8) in a value goes out as that byte.
    let got = offer
        .accept(None, &[(b"x-l".to_vec(), vec![0xe9])])
        .unwrap();
    assert!(got.ends_with(b"x-l: \xe9\r\n\r\n"));
}

#[test]
fn accept_refusals() {
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Vec<(Vec<u8>, Vec<u8>)>,
        HandshakeError,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "subprotocol not offered",
            Some("other"),
            vec![],
            HandshakeError::SubprotocolNotOffered("other".into()),
        ),
        (
            "subprotocols are case-sensitive (RFC 6455 §11.3.4)",
            Some("CHAT"),
            vec![],
            HandshakeError::SubprotocolNotOffered("CHAT".into()),
        ),
        (
            "name with a space",
            None,
            vec![h("bad name", "x")],
            HandshakeError::InvalidHeaderName("bad name".into()),
        ),
        (
            "empty name",
            None,
            vec![h("", "x")],
            HandshakeError::InvalidHeaderName("".into()),
        ),
        (
            "value with CRLF",
            None,
            vec![h("x-a", "1\r\nx-evil: 1")],
            HandshakeError::InvalidHeaderValue("x-a".into()),
        ),
        (
            "value with NUL",
            None,
            vec![h("x-a", "1\0")],
            HandshakeError::InvalidHeaderValue("x-a".into()),
        ),
    ];
    let offer = offer_with(&["chat"]);
    for (name, sub, headers, want) in cases {
        assert_eq!(offer.accept(sub, &headers), Err(want.clone()), "{name}");
        assert_eq!(want.status(), 500, "{name}");
    }
    let none = offer_with(&[]);
    assert_eq!(
        none.accept(Some("chat"), &[]),
        Err(HandshakeError::SubprotocolNotOffered("chat".into()))
    );
}
