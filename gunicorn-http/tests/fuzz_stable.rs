//! The fuzz targets of fuzz/ run on stable as a bounded, deterministic property test: corpus
//! inputs mutated by a fixed-seed generator for a few thousand iterations each. For longer
//! runs use cargo fuzz (docs/http.md).

mod common;
#[path = "common/targets.rs"]
mod targets;

use common::{list_cases, load_case, XorShift};

/// Seed inputs: every corpus case (its bytes) plus a few hand-written chunked bodies.
fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    for dir in ["valid", "invalid"] {
        for path in list_cases(dir) {
            if let Ok(case) = load_case(&path) {
                if case.input.len() <= 4096 {
                    v.push(case.input);
                }
            }
        }
    }
    v
}

const CHUNKED: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n",
    b"a \t;x=\"y\"\r\n0123456789\r\n0\r\n\r\nNEXT",
    b"0\r\n\r\n",
];

/// One mutation: flip, insert, delete, duplicate a range, or splice from another seed.
fn mutate(rng: &mut XorShift, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                const INTERESTING: &[u8] = b"\r\n \t:;,0fF\x00\x7f\x80\xff-_/?#*%";
                v.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
            2 if at < v.len() => {
                let n = 1 + rng.below((v.len() - at).min(8));
                v.drain(at..at + n);
            }
            3 if at < v.len() => {
                let n = 1 + rng.below((v.len() - at).min(32));
                let piece = v[at..at + n].to_vec();
                v.splice(at..at, piece);
            }
            4 if !other.is_empty() => {
                let s = rng.below(other.len());
                let n = 1 + rng.below((other.len() - s).min(64));
                v.splice(at..at, other[s..s + n].iter().copied());
            }
            5 => v.truncate(at),
            _ => {
                let i = rng.below(v.len().max(1));
                if i < v.len() {
                    v[i] = rng.below(256) as u8;
                }
            }
        }
    }
    v
}

/// `GUNICORN_HTTP_FUZZ_ITERS=N` replaces the default iteration count, for a longer
/// run on stable, e.g. `GUNICORN_HTTP_FUZZ_ITERS=2000000 cargo test --release -p gunicorn-http
/// --test fuzz_stable`. `GUNICORN_HTTP_FUZZ_SEED` changes the sequence.
fn run(target: fn(&[u8]), seeds: &[Vec<u8>], iterations: usize, seed: u64) {
    let iterations = std::env::var("GUNICORN_HTTP_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(iterations);
    let seed = std::env::var("GUNICORN_HTTP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(seed, |s| seed ^ s.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut rng = XorShift(seed);
    // Every seed unmutated first, with a few settings bytes.
    for s in seeds {
        for b in [0u8, 0x0f, 0x30, 0xff] {
            let mut data = vec![b];
            data.extend_from_slice(s);
            target(&data);
        }
    }
    for _ in 0..iterations {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let mut data = vec![rng.below(256) as u8];
        data.extend(mutate(&mut rng, a, b));
        target(&data);
    }
}

#[test]
fn fuzz_head_parser_bounded() {
    run(targets::head_parser, &seeds(), 20000, 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn fuzz_chunked_decoder_bounded() {
    let mut s: Vec<Vec<u8>> = CHUNKED.iter().map(|c| c.to_vec()).collect();
    // Bodies of the corpus too (whatever follows the first empty line).
    for input in seeds() {
        if let Some(i) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            s.push(input[i + 4..].to_vec());
        }
    }
    run(targets::chunked_decoder, &s, 30000, 0x2545_f491_4f6c_dd1d);
}

#[test]
fn fuzz_environ_builder_bounded() {
    run(
        targets::environ_builder,
        &seeds(),
        20000,
        0xd1b5_4a32_d192_ed03,
    );
}
