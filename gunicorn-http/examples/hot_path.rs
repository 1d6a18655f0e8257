//! Runs the hot path N times, for counting cycles on a busy machine where wall-clock
//! benchmarks are noisy: `perf stat -e cycles:u,instructions:u target/release/examples/hot_path
//! parse 1000000` (modes: parse, environ, visit, httparse). See docs/http.md.

use gunicorn_http::{
    build_environ, for_each_environ, ConnInfo, HttpConfig, Local, Peer, RequestParser,
};
use std::hint::black_box;
use std::sync::Arc;

include!("../benches/head.in");

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "parse".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let cfg = Arc::new(HttpConfig::default());
    let conn = ConnInfo {
        peer: Peer::Tcp("192.0.2.10:51234".parse().unwrap()),
        local: Local::Tcp("0.0.0.0:8000".parse().unwrap()),
        tls: None,
    };
    let mut parser = RequestParser::new(cfg.clone(), conn.clone());
    let Ok(Some((req, _))) = parser.parse_head(HEAD) else {
        eprintln!("the sample head does not parse");
        std::process::exit(1);
    };
    match mode.as_str() {
        "parse" => {
            for _ in 0..n {
                black_box(parser.parse_head(black_box(HEAD)).ok());
            }
        }
        "environ" => {
            for _ in 0..n {
                black_box(build_environ(black_box(&req), &conn, None, &cfg).ok());
            }
        }
        "visit" => {
            for _ in 0..n {
                let mut total = 0usize;
                let r = for_each_environ(black_box(&req), &conn, None, &cfg, |k, v| {
                    total += k.as_str().len() + v.len()
                });
                black_box((r.ok(), total));
            }
        }
        "httparse" => {
            // Calibration: httparse (no gunicorn rules, no allocation) on the same bytes.
            for _ in 0..n {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut r = httparse::Request::new(&mut headers);
                black_box(r.parse(black_box(HEAD)).ok());
                black_box(&r);
            }
        }
        other => {
            eprintln!("unknown mode {other} (parse | environ | visit | httparse)");
            std::process::exit(2);
        }
    }
}
