//! cargo fuzz target `websocket_session`: arbitrary bytes, in arbitrary pieces, into a
//! gunicorn-websocket Session, with sends and closes between them. The invariants live in
//! gunicorn-workers/websocket/tests/common/session_target.rs, shared with the bounded stable
//! run (gunicorn-workers/websocket/tests/fuzz_stable.rs).
#![no_main]

#[path = "../../gunicorn-workers/websocket/tests/common/session_target.rs"]
mod session_target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| session_target::websocket_session(data));
