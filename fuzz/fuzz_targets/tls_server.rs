//! cargo fuzz target `tls_server`: arbitrary bytes from a client into gunicorn-serve's
//! TlsStream (rustls underneath), read in both forms and closed: never a panic, never a hang
//! (the client's side is closed, so every read ends). The certificate in fuzz/tls/ is a
//! throwaway made for this target.
#![no_main]

#[path = "common/tls_acceptor.rs"]
mod tls_acceptor;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use gunicorn_serve::Transport;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let (server, mut client) = UnixStream::pair().unwrap();
    client.write_all(data).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut tls = tls_acceptor::acceptor().accept(server).unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        match tls.try_read(&mut buf) {
            Ok(Some(n)) if n > 0 => continue,
            _ => break,
        }
    }
    for _ in 0..64 {
        match tls.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let _ = tls.in_handshake();
    let _ = tls.tls_info();
    let _ = tls.shutdown_write();
});
