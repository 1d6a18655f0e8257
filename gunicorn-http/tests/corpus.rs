//! Runs every case of `tests/requests/{valid,invalid}` (format: tests/requests/README.md),
//! feeding the bytes whole, split in two at every position, and in small random-sized
//! pieces, and checks that every feeding gives the same outcome as the expectation file.

mod common;

use common::{drive, list_cases, load_case, seed_of, Block, Case, Outcome, XorShift};

/// Compares one outcome with its expectation block; returns the mismatches.
fn check_block(outcome: &Outcome, block: &Block) -> Vec<String> {
    let mut errs = Vec::new();
    match outcome {
        Outcome::Error { stage, error } => {
            let kind = format!("{error:?}");
            let kind = kind.split(['(', ' ']).next().unwrap_or("");
            let mut saw_error = false;
            for (k, v) in block {
                match k.as_str() {
                    "error" => {
                        saw_error = true;
                        if v != kind {
                            errs.push(format!("error: got {kind} ({error}), want {v}"));
                        }
                    }
                    "status" => {
                        if v != &error.status().to_string() {
                            errs.push(format!("status: got {}, want {v}", error.status()));
                        }
                    }
                    "stage" => {
                        if v != stage {
                            errs.push(format!("stage: got {stage}, want {v}"));
                        }
                    }
                    _ => errs.push(format!(
                        "got error {kind} at {stage} ({error}) but block expects {k} = {v}"
                    )),
                }
            }
            if !saw_error {
                errs.push(format!("unexpected error {kind} at {stage}: {error}"));
            }
        }
        Outcome::Request(fields) => {
            let mut headers_want: Vec<&str> = Vec::new();
            let mut trailers_want: Vec<&str> = Vec::new();
            let mut check_headers = false;
            let mut check_trailers = false;
            for (k, v) in block {
                match k.as_str() {
                    "error" | "status" | "stage" => {
                        errs.push(format!("expected {k} = {v} but the request parsed"))
                    }
                    "header" => {
                        check_headers = true;
                        headers_want.push(v);
                    }
                    "headers" if v == "none" => check_headers = true,
                    "trailer" => {
                        check_trailers = true;
                        trailers_want.push(v);
                    }
                    _ => {
                        let got = fields
                            .iter()
                            .find(|(fk, _)| fk == k)
                            .map(|(_, fv)| fv.as_str());
                        let want = if v == "!absent" {
                            None
                        } else {
                            Some(v.as_str())
                        };
                        if got != want {
                            errs.push(format!("{k}: got {got:?}, want {want:?}"));
                        }
                    }
                }
            }
            if !block.iter().any(|(k, _)| k == "body") {
                // An omitted body means an empty one.
                let got = fields
                    .iter()
                    .find(|(k, _)| k == "body")
                    .map(|(_, v)| v.as_str());
                if got != Some("") {
                    errs.push(format!("body: got {got:?}, want empty"));
                }
            }
            let got_headers: Vec<&str> = fields
                .iter()
                .filter(|(k, _)| k == "header")
                .map(|(_, v)| v.as_str())
                .collect();
            if check_headers && got_headers != headers_want {
                errs.push(format!(
                    "headers: got {got_headers:?}, want {headers_want:?}"
                ));
            }
            let got_trailers: Vec<&str> = fields
                .iter()
                .filter(|(k, _)| k == "trailer")
                .map(|(_, v)| v.as_str())
                .collect();
            if check_trailers && got_trailers != trailers_want {
                errs.push(format!(
                    "trailers: got {got_trailers:?}, want {trailers_want:?}"
                ));
            }
        }
    }
    errs
}

/// Outcomes with each error reduced to its kind: the detail text of an error (a size seen, the
/// start of a too-long line) may depend on how much had arrived; the kind and stage may not.
fn normalise(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Request(fields) => format!("{fields:?}"),
            Outcome::Error { stage, error } => format!(
                "{stage}: {}",
                format!("{error:?}").split(['(', ' ']).next().unwrap_or("")
            ),
        })
        .collect()
}

fn check_case(case: &Case, want_error: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let whole = drive(&case.cfg, &case.conn, &case.input, || 0);
    if whole.len() != case.blocks.len() {
        errs.push(format!(
            "{} requests/outcomes, expectation has {} blocks: {whole:#?}",
            whole.len(),
            case.blocks.len()
        ));
    }
    for (i, (o, b)) in whole.iter().zip(&case.blocks).enumerate() {
        for e in check_block(o, b) {
            errs.push(format!("request {}: {e}", i + 1));
        }
    }
    let ends_in_error = matches!(whole.last(), Some(Outcome::Error { .. }));
    if ends_in_error != want_error {
        errs.push(format!(
            "ends in error = {ends_in_error}, directory wants {want_error}"
        ));
    }
    // Same outcome whatever the read boundaries (the parser must be truly incremental).
    let n = case.input.len();
    let cuts: Vec<usize> = if n <= 3000 {
        (1..n).collect()
    } else {
        (1..n).step_by(n / 500).collect()
    };
    for cut in cuts {
        let mut first = true;
        let got = drive(&case.cfg, &case.conn, &case.input, || {
            if std::mem::take(&mut first) {
                cut
            } else {
                0
            }
        });
        if normalise(&got) != normalise(&whole) {
            errs.push(format!("split at {cut} differs: {got:?}"));
            break;
        }
    }
    let mut rng = XorShift(seed_of(&case.name));
    for round in 0..8 {
        let max = [1, 2, 3, 7, 16, 64, 200, 1000][round];
        let got = drive(&case.cfg, &case.conn, &case.input, || 1 + rng.below(max));
        if normalise(&got) != normalise(&whole) {
            errs.push(format!("random pieces (max {max}) differ: {got:?}"));
            break;
        }
    }
    errs
}

fn run_dir(dir: &str, want_error: bool) -> usize {
    let cases = list_cases(dir);
    let mut failures = Vec::new();
    for path in &cases {
        match load_case(path) {
            Ok(case) => {
                for e in check_case(&case, want_error) {
                    failures.push(format!("{dir}/{}: {e}", case.name));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn valid_requests() {
    let n = run_dir("valid", false);
    assert!(n > 0);
}

#[test]
fn invalid_requests() {
    let n = run_dir("invalid", true);
    assert!(n > 0);
}

#[test]
fn corpus_is_large_enough() {
    let total = list_cases("valid").len() + list_cases("invalid").len();
    assert!(total >= 150, "only {total} corpus cases");
}

#[test]
fn unescape_format() {
    let cases: &[(&str, &[u8])] = &[
        ("a\\r\\nb", b"a\r\nb"),
        ("a\nb", b"ab"),
        ("\\x00\\xff\\0\\t\\\\", b"\x00\xff\x00\t\\"),
        ("<\\*3(z)>", b"<zzz>"),
    ];
    for (text, want) in cases {
        assert_eq!(common::unescape(text, true).unwrap(), *want, "{text}");
    }
    assert!(common::unescape("\\q", true).is_err());
}
