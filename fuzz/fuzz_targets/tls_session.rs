//! cargo fuzz target `tls_session`: arbitrary bytes from a client, in pieces (the split points
//! come from the first byte), into gunicorn-serve's sans-IO TlsSession, the asgi worker's TLS:
//! never a panic, output bounded by the input (alerts and handshake flights only), and once it
//! failed, it stays failed or quiet. The certificate in fuzz/tls/ is a throwaway.
#![no_main]

use std::sync::OnceLock;

use gunicorn_core::Config;
use gunicorn_serve::tls::Acceptor;

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
    if data.is_empty() || data.len() > 32 * 1024 {
        return;
    }
    let step = usize::from(data[0]).max(1) * 7;
    let data = &data[1..];
    let mut session = acceptor().session().unwrap();
    let (mut plain, mut wire) = (Vec::new(), Vec::new());
    for piece in data.chunks(step) {
        if session.receive(piece, &mut plain, &mut wire).is_err() {
            break;
        }
    }
    // No handshake can complete without a real client: nothing decrypted, and what went out
    // is a server flight or an alert, never more than a few certificates' worth.
    assert!(plain.is_empty() || session.info().is_some());
    assert!(wire.len() <= 64 * 1024, "{} bytes out", wire.len());
    let _ = session.send(b"HTTP/1.1 200 OK\r\n\r\n", &mut wire);
    session.close_notify(&mut wire);
});
