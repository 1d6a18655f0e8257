//! Hot path: parsing a typical ~600-byte browser request head, and building its environ.
//! Run: `cargo bench -p gunicorn-http --bench parse` (figures in docs/http.md).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gunicorn_http::{
    build_environ, for_each_environ, ConnInfo, HttpConfig, Local, Peer, RequestParser,
};
use std::sync::Arc;

include!("head.in");

fn conn() -> ConnInfo {
    ConnInfo {
        peer: Peer::Tcp("192.0.2.10:51234".parse().unwrap()),
        local: Local::Tcp("0.0.0.0:8000".parse().unwrap()),
        tls: None,
    }
}

fn bench(c: &mut Criterion) {
    let cfg = Arc::new(HttpConfig::default());
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Bytes(HEAD.len() as u64));
    let mut parser = RequestParser::new(cfg.clone(), conn());
    g.bench_function("parse_head_600B", |b| {
        b.iter(|| {
            let (req, n) = parser.parse_head(black_box(HEAD)).unwrap().unwrap();
            black_box((req, n))
        })
    });
    let (req, _) = RequestParser::new(cfg.clone(), conn())
        .parse_head(HEAD)
        .unwrap()
        .unwrap();
    let c2 = conn();
    g.bench_function("build_environ", |b| {
        b.iter(|| black_box(build_environ(black_box(&req), &c2, None, &cfg).unwrap()))
    });
    g.bench_function("for_each_environ", |b| {
        b.iter(|| {
            let mut total = 0usize;
            let r = for_each_environ(black_box(&req), &c2, None, &cfg, |k, v| {
                total += k.as_str().len() + v.len()
            });
            black_box((r.ok(), total))
        })
    });
    g.bench_function("parse_head_and_environ", |b| {
        b.iter(|| {
            let (req, _) = parser.parse_head(black_box(HEAD)).unwrap().unwrap();
            black_box(build_environ(&req, &c2, None, &cfg).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
