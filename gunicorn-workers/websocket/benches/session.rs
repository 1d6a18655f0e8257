//! A session's hot paths: decoding the peer's masked frames (whole feeds, and a large message
//! over many feeds, which goes through the held partial frame) and encoding our frames.
//! Run pinned to one core: `taskset -c 1 cargo bench -p gunicorn-websocket --bench session`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gunicorn_websocket::{Message, Session, SessionConfig};

/// A client's masked binary frame.
fn masked(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x82];
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

fn drain(ws: &mut Session) -> usize {
    let mut n = 0;
    while let Some(e) = ws.next_event() {
        black_box(&e);
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("websocket");

    // 64 messages of 1 KiB arriving in one 64 KiB read.
    let feed: Vec<u8> = (0..64).flat_map(|_| masked(&[b'x'; 1024])).collect();
    g.throughput(Throughput::Bytes(feed.len() as u64));
    g.bench_function("feed_64x1KiB_one_read", |b| {
        let mut ws = Session::new(SessionConfig::default());
        b.iter(|| {
            ws.feed(black_box(&feed)).unwrap();
            assert_eq!(drain(&mut ws), 64);
        })
    });

    // The same bytes in 1000-byte reads: every frame spans two feeds.
    g.bench_function("feed_64x1KiB_1000B_reads", |b| {
        let mut ws = Session::new(SessionConfig::default());
        b.iter(|| {
            for piece in feed.chunks(1000) {
                ws.feed(black_box(piece)).unwrap();
            }
            assert_eq!(drain(&mut ws), 64);
        })
    });

    // One 1 MiB message in 64 KiB reads.
    let big = masked(&vec![7u8; 1 << 20]);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("feed_1MiB_64KiB_reads", |b| {
        let mut ws = Session::new(SessionConfig::default());
        b.iter(|| {
            for piece in big.chunks(64 * 1024) {
                ws.feed(black_box(piece)).unwrap();
            }
            assert_eq!(drain(&mut ws), 1);
        })
    });

    // Our side: a 1 KiB text message, then the bytes taken.
    let text = "y".repeat(1024);
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("send_1KiB_text", |b| {
        let mut ws = Session::new(SessionConfig::default());
        b.iter(|| {
            ws.send(Message::Text(black_box(&text).clone())).unwrap();
            black_box(ws.take_output())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
