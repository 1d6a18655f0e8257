//! cargo fuzz target `uwsgi_parser`: gunicorn-http's uWSGI packet parser (`--protocol uwsgi`).
//!
//! The first byte picks the settings and the peer; with its top bit set the rest is read as
//! variables separated by 0xff (`key 0xfe value 0xff ...`) and framed into a well-formed
//! packet, so that the fuzzer reaches the rules on the variables and not only the framing.
//! Invariants: no panic; the outcome (requests, their bodies skipped, the error's kind and
//! status) does not depend on how the bytes were split into reads; a request never uses more bytes than it was
//! given, and a packet uses exactly its header plus its announced vars block; every error
//! renders a page; the environ of a parsed packet has unique keys and PATH_INFO is the
//! `PATH_INFO` variable as sent.
#![no_main]

use std::sync::Arc;

use gunicorn_http::uwsgi::HEADER_LEN;
use gunicorn_http::{
    build_environ, AllowList, BodyDecoder, BodyKind, ConnInfo, HttpConfig, Limits, Local, Peer,
    Protocol, ProxyMode, UwsgiParser,
};

fn config_from(b: u8) -> HttpConfig {
    let base = HttpConfig::default();
    HttpConfig {
        protocol: Protocol::Uwsgi,
        permit_unconventional_http_method: b & 1 != 0,
        casefold_http_method: b & 2 != 0,
        limits: if b & 4 != 0 {
            Limits::from_settings(40, 4, 32)
        } else {
            base.limits
        },
        uwsgi_allow_ips: if b & 8 != 0 {
            AllowList::any()
        } else {
            base.uwsgi_allow_ips.clone()
        },
        proxy_protocol: if b & 16 != 0 {
            ProxyMode::Auto
        } else {
            ProxyMode::Off
        },
        is_ssl: b & 32 != 0,
        ..base
    }
}

fn conn_from(b: u8) -> ConnInfo {
    let peer = match b % 3 {
        0 => Peer::Tcp("127.0.0.1:40000".parse().unwrap()),
        1 => Peer::Tcp("[2001:db8::9]:1".parse().unwrap()),
        _ => Peer::Unix,
    };
    ConnInfo {
        peer,
        local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        tls: None,
    }
}

/// `key 0xfe value 0xff key 0xfe value ...` framed as a packet (sizes cut to fit a u16).
fn framed(input: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for var in input.split(|&b| b == 0xff) {
        let mut parts = var.splitn(2, |&b| b == 0xfe);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        for item in [key, value] {
            block.extend_from_slice(&(item.len() as u16).to_le_bytes());
            block.extend_from_slice(item);
        }
    }
    block.truncate(usize::from(u16::MAX));
    let mut out = vec![0];
    out.extend_from_slice(&(block.len() as u16).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&block);
    out
}

/// Parses `input` on one connection, fed `step` bytes at a time (0 = all at once): each
/// request and its body, then the end. Returns the outcomes as strings.
fn run(cfg: &Arc<HttpConfig>, conn: &ConnInfo, input: &[u8], step: usize) -> Vec<String> {
    let step = if step == 0 { input.len().max(1) } else { step };
    let mut p = UwsgiParser::new(Arc::clone(cfg), conn.clone());
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    let more = |buf: &mut Vec<u8>, fed: &mut usize| -> bool {
        if *fed >= input.len() {
            return false;
        }
        let end = (*fed + step).min(input.len());
        buf.extend_from_slice(&input[*fed..end]);
        *fed = end;
        true
    };
    loop {
        let (req, used) = loop {
            match p.parse_head(&buf) {
                Ok(Some(x)) => break x,
                Ok(None) => {
                    if !more(&mut buf, &mut fed) {
                        out.push(format!("more {}", buf.len()));
                        return out;
                    }
                }
                Err(e) => {
                    let page = gunicorn_http::error_page(e.status(), e.reason(), &e.message());
                    assert!(page.starts_with(b"HTTP/1.1 "));
                    assert!((400..=501).contains(&e.status()), "{e:?}");
                    // The kind and status, not the message: a PROXY line's error shows as much
                    // of the line as has arrived (as for HTTP heads, see the head_parser
                    // target).
                    let kind = format!("{e:?}");
                    let kind = kind.split(['(', ' ']).next().unwrap_or_default();
                    out.push(format!("{kind} {}", e.status()));
                    return out;
                }
            }
        };
        assert!(used <= buf.len(), "used {used} of {}", buf.len());
        check_request(cfg, conn, &p, &req, &buf[..used]);
        buf.drain(..used);
        out.push(format!("{req:?}"));
        let BodyKind::Length(n) = req.body else {
            panic!("a uwsgi body is always a length");
        };
        let mut dec = BodyDecoder::new(&req.body, Arc::clone(cfg));
        let mut body = Vec::new();
        while !dec.is_done() {
            let used = dec
                .decode(&buf, &mut body)
                .expect("a length body never fails");
            buf.drain(..used);
            if !dec.is_done() && !more(&mut buf, &mut fed) {
                out.push(format!("short body {}", body.len()));
                return out;
            }
        }
        assert_eq!(body.len() as u64, n);
        if req.should_close() {
            out.push("close".into());
            return out;
        }
    }
}

/// The invariants of one parsed packet (`packet` holds exactly its bytes, after any PROXY
/// header).
fn check_request(
    cfg: &HttpConfig,
    conn: &ConnInfo,
    p: &UwsgiParser,
    req: &gunicorn_http::Request,
    packet: &[u8],
) {
    // Without a PROXY header, the bytes used are the packet's header and its announced block.
    assert!(packet.len() >= HEADER_LEN);
    if p.proxy_info().is_none() {
        let datasize = u16::from_le_bytes([packet[1], packet[2]]);
        assert_eq!(packet.len(), HEADER_LEN + usize::from(datasize));
        assert_eq!(packet[0], 0, "only modifier1 0 is served");
    }
    let env = match build_environ(req, conn, p.proxy_info(), cfg) {
        Ok(env) => env,
        // Only SCRIPT_NAME can fail the environ, and none is set here.
        Err(e) => panic!("environ: {e:?}"),
    };
    let mut keys: Vec<&str> = env.vars.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!(n, keys.len(), "duplicate environ keys");
    // PATH_INFO is decoded exactly once: the variable as sent.
    let path_info = env.get("PATH_INFO").unwrap_or_default();
    assert_eq!(path_info.replace('%', "%25"), req.path);
    assert!(["http", "https"].contains(&req.scheme));
    assert_eq!(req.version, (1, 1));
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 70_000 {
        return;
    }
    let input = if b & 0x80 != 0 {
        framed(rest)
    } else {
        rest.to_vec()
    };
    let cfg = Arc::new(config_from(b));
    let conn = conn_from(b.rotate_right(6));
    let whole = run(&cfg, &conn, &input, 0);
    for step in [1, 1 + input.len() % 13, 4] {
        assert_eq!(
            run(&cfg, &conn, &input, step),
            whole,
            "outcome depends on read size {step}"
        );
    }
    // A framed packet (no PROXY header looked for) uses exactly its header and block.
    if b & 0x90 == 0x80 {
        let mut p = UwsgiParser::new(Arc::clone(&cfg), conn.clone());
        if let Ok(Some((_, used))) = p.parse_head(&input) {
            assert_eq!(used, input.len());
        }
    }
});
