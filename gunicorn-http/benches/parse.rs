//! Hot path: parsing a typical ~600-byte browser request head, and building its environ.
//! Run: `cargo bench -p gunicorn-http --bench parse` (figures in docs/http.md).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gunicorn_http::{build_environ, ConnInfo, HttpConfig, Local, Peer, RequestParser};
use std::sync::Arc;

/// A Firefox navigation request as it arrives on a keep-alive connection.
const HEAD: &[u8] = b"GET /articles/2024/rust-http-parsing?page=2&sort=newest HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/articles/2024\r\n\
Connection: keep-alive\r\n\
Cookie: session=8f2a9c1e7b6d4e3f0a1b2c3d4e5f6071; theme=dark; consent=yes\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
\r\n";

fn conn() -> ConnInfo {
    ConnInfo {
        peer: Peer::Tcp("192.0.2.10:51234".parse().unwrap()),
        local: Local::Tcp("0.0.0.0:8000".parse().unwrap()),
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
