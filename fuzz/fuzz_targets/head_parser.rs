//! cargo fuzz target `head_parser`: the invariants live in gunicorn-http/tests/common/targets.rs,
//! shared with the bounded stable run (gunicorn-http/tests/fuzz_stable.rs).
#![no_main]

#[path = "../../gunicorn-http/tests/common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::head_parser(data));
