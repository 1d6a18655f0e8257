//! cargo fuzz target `head_reader`: gunicorn-serve's head reader fed the same bytes in pieces
//! (the split points come from the input's first bytes) must reach the same result as the
//! parser given them at once: the same request and the same bytes after it, the same error
//! status, or the same need for more bytes. Also its blocking form, reading the pieces; and a
//! reader whose previous request was recycled into it (a kept-alive connection's next request
//! is written into the last one's buffers) must parse the rest of the input as a fresh parser.
#![no_main]

use std::sync::Arc;

use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer, RequestParser};
use gunicorn_serve::{read_head, HeadRead, HeadReader, HeadStep};

fn conn() -> ConnInfo {
    ConnInfo {
        peer: Peer::Tcp("127.0.0.1:5000".parse().unwrap()),
        local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        tls: None,
    }
}

fn reader() -> HeadReader {
    HeadReader::new(RequestParser::new(Arc::new(HttpConfig::default()), conn()))
}

/// The result reduced to what must match: `ready <request> <after>`, `invalid <status>`, `more`.
fn whole(data: &[u8]) -> String {
    let mut parser = RequestParser::new(Arc::new(HttpConfig::default()), conn());
    match parser.parse_head(data) {
        Ok(Some((req, used))) => format!("ready {req:?} {:?}", &data[used..]),
        Ok(None) => "more".into(),
        Err(e) => format!("invalid {}", e.status()),
    }
}

fn in_pieces(data: &[u8], cuts: &[usize]) -> String {
    let mut r = reader();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        match r.feed(&data[start..end]) {
            HeadStep::NeedMore => start = end,
            HeadStep::Ready { req, mut after_head } => {
                after_head.extend_from_slice(&data[end..]);
                return format!("ready {req:?} {after_head:?}");
            }
            HeadStep::Invalid(e) => return format!("invalid {}", e.status()),
        }
    }
    "more".into()
}

fn blocking(data: &[u8], cuts: &[usize]) -> String {
    let mut r = reader();
    let len = data.len();
    let mut pieces = cuts
        .iter()
        .chain(std::iter::once(&len))
        .scan(0, |start, &end| {
            let piece = &data[*start..end];
            *start = end;
            Some(piece)
        })
        .filter(|p| !p.is_empty());
    let mut fed = 0;
    let out = read_head(&mut r, Vec::new(), |buf, _| {
        let Some(piece) = pieces.next() else {
            return Ok(0);
        };
        // A read returns at most the buffer's size; the rest of the piece is lost to this
        // check, so pieces are at most that long (READ_CHUNK is 8 KiB, inputs are smaller).
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        fed += n;
        Ok(n)
    });
    match out {
        HeadRead::Ready { req, mut after_head } => {
            after_head.extend_from_slice(&data[fed..]);
            format!("ready {req:?} {after_head:?}")
        }
        HeadRead::Invalid(gunicorn_http::HttpError::NoMoreData) => "more".into(),
        HeadRead::Invalid(e) => format!("invalid {}", e.status()),
        HeadRead::Closed => "more".into(),
    }
}

/// `first` read whole and its request recycled into the reader, then `second` in one piece.
fn after_recycling(first: &[u8], second: &[u8]) -> String {
    let mut r = reader();
    if let HeadStep::Ready { req, .. } = r.feed(first) {
        r.recycle(req);
    } else {
        r = reader();
    }
    match r.feed(second) {
        HeadStep::NeedMore => "more".into(),
        HeadStep::Ready { req, after_head } => format!("ready {req:?} {after_head:?}"),
        HeadStep::Invalid(e) => format!("invalid {}", e.status()),
    }
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if input.len() < 2 || input.len() > 8000 {
        return;
    }
    // Up to 4 split points from the first byte, spaced by the second.
    let (head, data) = input.split_at(2);
    let count = (head[0] % 5) as usize;
    let step = 1 + head[1] as usize;
    let cuts: Vec<usize> = (1..=count)
        .map(|i| i * step)
        .filter(|&c| c < data.len())
        .collect();
    let want = whole(data);
    assert_eq!(in_pieces(data, &cuts), want, "fed in pieces at {cuts:?}");
    assert_eq!(blocking(data, &cuts), want, "read in pieces at {cuts:?}");
    // The same data after a request that was recycled: the first split point divides them.
    let split = cuts.first().copied().unwrap_or(data.len() / 2);
    let (first, second) = data.split_at(split);
    assert_eq!(
        after_recycling(first, second),
        whole(second),
        "after recycling a request of {first:?}"
    );
});
