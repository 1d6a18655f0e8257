//! cargo fuzz target `tls_session`: arbitrary bytes from a client, in pieces (the split points
//! come from the first byte), into gunicorn-serve's sans-IO TlsSession, the asgi worker's TLS:
//! never a panic, nothing decrypted without a handshake, and what goes out bounded (a server
//! flight or an alert). The certificate in fuzz/tls/ is a throwaway.
#![no_main]

#[path = "common/tls_acceptor.rs"]
mod tls_acceptor;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.is_empty() || data.len() > 32 * 1024 {
        return;
    }
    let step = usize::from(data[0]).max(1) * 7;
    let data = &data[1..];
    let mut session = tls_acceptor::acceptor().session().unwrap();
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
