//! The `websocket_session` fuzz target (fuzz/fuzz_targets/websocket_session.rs) run on stable as
//! a bounded, deterministic property test: hand-written scripts, then random ones from a fixed
//! seed. For long runs use `cargo +nightly fuzz run websocket_session` from fuzz/.

#[path = "common/session_target.rs"]
mod session_target;

use session_target::websocket_session;

/// xorshift64*: a fixed sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Scripts that reach each path: a text frame, a fragmented message with a ping inside, the
/// peer's close, our close then the peer's, an unmasked frame, a frame over a 16-byte limit.
fn seeds() -> Vec<Vec<u8>> {
    let mask = [1, 2, 3, 4];
    // op 4: a built frame (first byte, length, mask, payload, split point).
    let frame = |first: u8, payload: &[u8], split: u8| {
        let mut v = vec![4, first, payload.len() as u8];
        v.extend_from_slice(&mask);
        v.extend_from_slice(payload);
        v.push(split);
        v
    };
    vec![
        [vec![0], frame(0x81, b"hello", 3)].concat(),
        [
            vec![3],
            frame(0x01, b"ab", 0),
            frame(0x89, b"ping", 2),
            frame(0x80, b"cd", 9),
            vec![6, 3, b'x', b'y', b'z'],
        ]
        .concat(),
        [vec![0], frame(0x88, &[0x03, 0xe8, b'o', b'k'], 1)].concat(),
        [
            vec![0],
            vec![7, 0x03, 0xe8, 2, b'b', b'y'],
            frame(0x88, &[0x03, 0xe8], 0),
        ]
        .concat(),
        // op 0: raw bytes, an unmasked text frame.
        [vec![0], vec![0, 4, 0x81, 0x02, b'h', b'i']].concat(),
        [vec![1], frame(0x82, &[7; 40], 5)].concat(),
        // Found by cargo fuzz: with no limit, a header announcing an absurd length made the
        // codec reserve it (an allocation failure aborted the process).
        vec![
            0x00, 0xe8, 0x03, 0x11, 0xff, 0x62, 0x79, 0x04, 0x88, 0x02, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x62, 0x79, 0x04, 0x88, 0x02, 0x01, 0x02,
            0x03, 0x04, 0x02, 0x03, 0x04, 0x03, 0xe8, 0x00,
        ],
    ]
}

#[test]
fn fuzz_websocket_session_bounded() {
    let iterations: usize = std::env::var("GUNICORN_WS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seeds = seeds();
    for s in &seeds {
        websocket_session(s);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..iterations {
        // A seed with a few bytes changed, inserted or cut, or random bytes.
        let mut data = if rng.below(4) == 0 {
            (0..rng.below(200)).map(|_| rng.next() as u8).collect()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len() + 1);
            match rng.below(3) {
                0 if at < data.len() => data[at] = rng.next() as u8,
                1 => data.insert(at, rng.next() as u8),
                _ => data.truncate(at.max(1)),
            }
        }
        websocket_session(&data);
    }
}
