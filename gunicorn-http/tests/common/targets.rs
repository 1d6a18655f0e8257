#![allow(dead_code)] // each fuzz binary uses one of the targets
//! The three fuzz targets as plain functions: `cargo fuzz` (fuzz/) and the bounded stable
//! runs (tests/fuzz_stable.rs) share this file, so both check the same invariants.
//! Each takes arbitrary bytes; the first byte picks settings, the rest is the input.
//! A panic (failed invariant) is a bug.

use gunicorn_http::{
    build_environ, AllowList, BodyDecoder, BodyKind, ConnInfo, HeaderMapPolicy, HttpConfig,
    HttpError, Limits, Local, Peer, ProxyMode, RequestParser,
};
use std::sync::Arc;

/// Settings chosen by the bits of one byte (so the fuzzer explores them too).
pub fn config_from(b: u8) -> HttpConfig {
    let small = b & 0x30 == 0x30;
    let base = HttpConfig::default();
    HttpConfig {
        permit_unconventional_http_method: b & 1 != 0,
        permit_unconventional_http_version: b & 2 != 0,
        permit_obsolete_folding: b & 4 != 0,
        strip_header_spaces: b & 8 != 0,
        header_map: [
            HeaderMapPolicy::Drop,
            HeaderMapPolicy::Refuse,
            HeaderMapPolicy::Dangerous,
        ][usize::from(b >> 4 & 3) % 3],
        proxy_protocol: [
            ProxyMode::Off,
            ProxyMode::V1,
            ProxyMode::V2,
            ProxyMode::Auto,
        ][usize::from(b >> 6)],
        // Small limits, a SCRIPT_NAME and trust in everyone for one setting pattern, so the
        // limit and forwarder paths are reached by short inputs.
        limits: if small {
            Limits::from_settings(40, 4, 32)
        } else {
            base.limits
        },
        script_name: if small { "/app".into() } else { String::new() },
        forwarded_allow_ips: if small {
            AllowList::any()
        } else {
            base.forwarded_allow_ips.clone()
        },
        ..base
    }
}

fn conn_from(b: u8) -> ConnInfo {
    match b % 3 {
        0 => ConnInfo {
            peer: Peer::Tcp("127.0.0.1:40000".parse().unwrap()),
            local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
            tls: None,
        },
        1 => ConnInfo {
            peer: Peer::Tcp("[2001:db8::9]:1".parse().unwrap()),
            local: Local::Tcp("[::]:80".parse().unwrap()),
            tls: None,
        },
        _ => ConnInfo {
            peer: Peer::Unix,
            local: Local::Unix("/tmp/fuzz.sock".into()),
            tls: None,
        },
    }
}

/// Feeds `input` in pieces of `piece` bytes (0 = whole) to a fresh parser, parsing pipelined
/// heads (bodies skipped by Content-Length / chunked decoding). Returns the kinds of outcomes.
pub fn run_stream(
    cfg: &Arc<HttpConfig>,
    conn: &ConnInfo,
    input: &[u8],
    piece: usize,
) -> Vec<String> {
    let mut p = RequestParser::new(cfg.clone(), conn.clone());
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    let step = if piece == 0 {
        input.len().max(1)
    } else {
        piece
    };
    'conn: loop {
        let (req, n) = loop {
            match p.parse_head(&buf) {
                Ok(Some(x)) => break x,
                Ok(None) => {
                    if fed >= input.len() {
                        break 'conn;
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                Err(e) => {
                    // Every error maps to a status and can render its page.
                    let page = gunicorn_http::error_page(e.status(), e.reason(), &e.message());
                    assert!(page.starts_with(b"HTTP/1.1 "));
                    out.push(kind(&e));
                    break 'conn;
                }
            }
        };
        assert!(
            n > 0 && n <= buf.len(),
            "head used {n} of {} bytes",
            buf.len()
        );
        buf.drain(..n);
        out.push(format!("{} {} {:?}", req.method, req.uri, req.body));
        let mut dec = BodyDecoder::new(&req.body, cfg.clone());
        let mut body = Vec::new();
        while !dec.is_done() {
            match dec.decode(&buf, &mut body) {
                Ok(used) => {
                    assert!(used <= buf.len());
                    buf.drain(..used);
                    if dec.is_done() {
                        break;
                    }
                    assert!(buf.is_empty(), "decoder left input while unfinished");
                    if fed >= input.len() {
                        if let Err(e) = dec.eof() {
                            out.push(kind(&e));
                        }
                        break 'conn;
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                Err(e) => {
                    out.push(kind(&e));
                    break 'conn;
                }
            }
        }
        if let BodyKind::Length(n) = req.body {
            assert_eq!(
                body.len() as u64,
                n,
                "a finished length body has its length"
            );
        }
        out.push(format!("body {}", body.len()));
        if req.should_close() {
            break;
        }
    }
    out
}

fn kind(e: &HttpError) -> String {
    format!("{e:?}")
        .split(['(', ' '])
        .next()
        .unwrap_or("")
        .to_string()
}

/// Target 1: the head parser. Invariants: no panic, consumed <= given, and the outcome does
/// not depend on how the bytes were split into reads.
pub fn head_parser(data: &[u8]) {
    let Some((&b, input)) = data.split_first() else {
        return;
    };
    let cfg = Arc::new(config_from(b));
    let conn = conn_from(b);
    let whole = run_stream(&cfg, &conn, input, 0);
    let piece = 1 + input.len() % 7;
    let split = run_stream(&cfg, &conn, input, piece);
    assert_eq!(whole, split, "outcome depends on read size {piece}");
}

/// Target 2: the chunked decoder alone. Invariants: consumed <= given, output only grows,
/// decoding whole and byte by byte agree, and nothing is consumed after the end.
pub fn chunked_decoder(data: &[u8]) {
    let Some((&b, input)) = data.split_first() else {
        return;
    };
    let cfg = Arc::new(config_from(b & 0x3f));
    let mut whole = BodyDecoder::new(&BodyKind::Chunked, cfg.clone());
    let mut out_whole = Vec::new();
    let r_whole = whole.decode(input, &mut out_whole);
    if let Ok(n) = r_whole {
        assert!(n <= input.len());
        if whole.is_done() {
            assert_eq!(
                whole.decode(&input[n..], &mut out_whole),
                Ok(0),
                "nothing is read after the end"
            );
        } else {
            assert_eq!(n, input.len(), "an unfinished decoder consumes everything");
        }
    }
    let mut bytes = BodyDecoder::new(&BodyKind::Chunked, cfg);
    let mut out_bytes = Vec::new();
    let mut used = 0;
    let mut r_bytes = Ok(0);
    for i in 0..input.len() {
        if bytes.is_done() {
            break;
        }
        let before = out_bytes.len();
        match bytes.decode(&input[i..=i], &mut out_bytes) {
            Ok(n) => {
                assert!(n <= 1 && out_bytes.len() >= before);
                used += n;
            }
            Err(e) => {
                r_bytes = Err(e);
                break;
            }
        }
    }
    match (&r_whole, &r_bytes) {
        (Ok(n), Ok(_)) => {
            assert_eq!(*n, used);
            assert_eq!(out_whole, out_bytes);
            assert_eq!(whole.is_done(), bytes.is_done());
            assert_eq!(whole.trailers(), bytes.trailers());
        }
        (Err(a), Err(b)) => assert_eq!(kind(a), kind(b)),
        (a, b) => panic!("whole {a:?} vs byte by byte {b:?}"),
    }
}

/// Target 3: the environ builder over whatever the parser accepts. Invariants: keys are
/// unique, the CGI keys are present, and PATH_INFO never contains more bytes than the path.
pub fn environ_builder(data: &[u8]) {
    let Some((&b, input)) = data.split_first() else {
        return;
    };
    let cfg = Arc::new(config_from(b));
    let conn = conn_from(b.rotate_left(3));
    let mut p = RequestParser::new(cfg.clone(), conn.clone());
    let Ok(Some((req, _))) = p.parse_head(input) else {
        return;
    };
    let mut visited = Vec::new();
    let visit = gunicorn_http::for_each_environ(&req, &conn, p.proxy_info(), &cfg, |k, v| {
        visited.push((k.as_str().to_string(), v.to_string()))
    });
    match build_environ(&req, &conn, p.proxy_info(), &cfg) {
        Ok(env) => {
            assert!(visit.is_ok());
            let built: Vec<(String, String)> = env
                .vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(visited, built, "for_each_environ and build_environ agree");
            let mut keys: Vec<&str> = env.vars.iter().map(|(k, _)| k.as_ref()).collect();
            for k in [
                "REQUEST_METHOD",
                "SCRIPT_NAME",
                "PATH_INFO",
                "QUERY_STRING",
                "SERVER_NAME",
                "SERVER_PORT",
                "SERVER_PROTOCOL",
                "RAW_URI",
                "wsgi.url_scheme",
            ] {
                assert!(keys.contains(&k), "missing {k}");
            }
            keys.sort_unstable();
            let n = keys.len();
            keys.dedup();
            assert_eq!(n, keys.len(), "duplicate environ keys");
            let path_info = env.get("PATH_INFO").unwrap_or_default();
            assert!(path_info.chars().count() <= req.path.chars().count());
            assert!(
                path_info.chars().all(|c| u32::from(c) <= 0xff),
                "PATH_INFO is latin-1"
            );
        }
        Err(e) => {
            assert_eq!(e.status(), 500);
            assert!(visit.is_err() && visited.is_empty());
        }
    }
}
