//! cargo fuzz target `tls_server`: arbitrary bytes from a client into gunicorn-serve's
//! TlsStream (rustls underneath), read in both forms and closed: never a panic, never a hang
//! (the client's side is closed, so every read ends). The certificate in fuzz/tls/ is a
//! throwaway made for this target.
#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use gunicorn_core::Config;
use gunicorn_serve::tls::Acceptor;
use gunicorn_serve::Transport;

fn acceptor() -> &'static Acceptor {
    static ACCEPTOR: OnceLock<Acceptor> = OnceLock::new();
    ACCEPTOR.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tls");
        let cfg = Config {
            certfile: Some(format!("{dir}/server.pem")),
            keyfile: Some(format!("{dir}/server.key")),
            ..Config::default()
        };
        gunicorn_serve::tls::load(&cfg).unwrap().unwrap()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let (server, mut client) = UnixStream::pair().unwrap();
    client.write_all(data).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut tls = acceptor().accept(server).unwrap();
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
