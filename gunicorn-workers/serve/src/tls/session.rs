//! TLS with no socket at all: ciphertext in, plaintext out, and back. For a worker whose event
//! loop owns the socket and hands it bytes (the asgi worker's protocol callbacks), where
//! [`TlsStream`](super::TlsStream)'s reads and writes on a [`Transport`](crate::Transport) do
//! not fit. Same configuration ([`Acceptor`]), same environ view ([`TlsInfo`]).

use std::io::{self, Read, Write};
use std::sync::Arc;

use gunicorn_http::TlsInfo;
use rustls::ServerConnection;

use super::settings::Acceptor;
use super::stream::info_of;

/// What a piece of ciphertext brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Decrypted bytes (possibly none: a handshake message, a partial record).
    Data,
    /// The client's close_notify: no more input (RFC 8446 §6.1).
    Closed,
}

/// One server-side TLS connection, sans-IO.
pub struct TlsSession {
    conn: ServerConnection,
    info: Option<Arc<TlsInfo>>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// A sans-IO session for a connection whose bytes the caller reads and writes.
    pub fn session(&self) -> io::Result<TlsSession> {
        let mut conn = ServerConnection::new(self.config()).map_err(io::Error::other)?;
        // rustls holds at most 64 KiB of plaintext to send by default and refuses the rest;
        // here every record is taken out at once (`flush` into the caller's buffer), and the
        // caller bounds what it sends with the transport's flow control.
        conn.set_buffer_limit(None);
        Ok(TlsSession { conn, info: None })
    }
}

impl TlsSession {
    /// Takes ciphertext read from the socket: decrypted bytes are appended to `plain`, and what
    /// the handshake (or an alert) must send is appended to `wire`. Err on a TLS protocol error
    /// (the alert is in `wire`: write it, then close).
    pub fn receive(
        &mut self,
        mut data: &[u8],
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> io::Result<Received> {
        let mut closed = false;
        while !data.is_empty() {
            // rustls takes at most its buffer's worth per call; loop until all is in.
            let n = self.conn.read_tls(&mut data)?;
            if n == 0 {
                break;
            }
            match self.conn.process_new_packets() {
                Ok(state) => closed |= state.peer_has_closed(),
                Err(e) => {
                    self.flush(wire);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            self.drain_plaintext(plain)?;
        }
        if self.info.is_none() {
            self.info = info_of(&self.conn);
        }
        self.flush(wire);
        Ok(if closed {
            Received::Closed
        } else {
            Received::Data
        })
    }

    fn drain_plaintext(&mut self, plain: &mut Vec<u8>) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts `plain` into `wire`. Bytes sent before the handshake ends are held by rustls and
    /// go out with the first flush after it.
    pub fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>) -> io::Result<()> {
        let mut rest = plain;
        while !rest.is_empty() {
            let n = self.conn.writer().write(rest)?;
            self.flush(wire);
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Our close_notify, before the transport closes.
    pub fn close_notify(&mut self, wire: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(wire);
    }

    /// What the handshake established; None until it is done.
    pub fn info(&self) -> Option<Arc<TlsInfo>> {
        self.info.clone()
    }

    fn flush(&mut self, wire: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(wire).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::Pki;
    use rustls::ClientConnection;

    /// A rustls client and our session, passing bytes by hand: handshake, a request, a
    /// response, close_notify.
    #[test]
    fn a_request_and_its_response_round_trip() {
        let pki = Pki::new("session");
        let acceptor = super::super::load(&pki.config("a")).unwrap().unwrap();
        let mut server = acceptor.session().unwrap();
        let config = pki.client_config(None, rustls::ALL_VERSIONS, None);
        let mut client = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut plain = Vec::new();
        let mut closed = false;
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            let mut to_client = Vec::new();
            if server
                .receive(&to_server, &mut plain, &mut to_client)
                .unwrap()
                == Received::Closed
            {
                closed = true;
            }
            if plain.ends_with(b"\r\n\r\n") && server.info().is_some() {
                server
                    .send(b"HTTP/1.1 200 OK\r\n\r\n", &mut to_client)
                    .unwrap();
                server.close_notify(&mut to_client);
            }
            let mut slice = &to_client[..];
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
                client.process_new_packets().unwrap();
            }
            let mut got = Vec::new();
            let _ = client.reader().read_to_end(&mut got);
            if got == b"HTTP/1.1 200 OK\r\n\r\n" {
                assert_eq!(plain, b"GET / HTTP/1.1\r\n\r\n");
                assert!(server
                    .info()
                    .is_some_and(|i| i.protocol.starts_with("TLSv1")));
                assert!(!closed);
                return;
            }
        }
        panic!("no response after 10 round trips");
    }

    /// A response far over rustls's default plaintext buffer (64 KiB) goes out whole.
    #[test]
    fn a_large_response_goes_out_whole() {
        let pki = Pki::new("session-large");
        let acceptor = super::super::load(&pki.config("a")).unwrap().unwrap();
        let mut server = acceptor.session().unwrap();
        let config = pki.client_config(None, rustls::ALL_VERSIONS, None);
        let mut client = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut got = Vec::new();
        let mut sent = false;
        for _ in 0..20 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            let (mut plain, mut to_client) = (Vec::new(), Vec::new());
            server
                .receive(&to_server, &mut plain, &mut to_client)
                .unwrap();
            if !sent && server.info().is_some() {
                server.send(&big, &mut to_client).unwrap();
                sent = true;
            }
            let mut slice = &to_client[..];
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
                client.process_new_packets().unwrap();
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = client.reader().read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            if got.len() >= big.len() {
                break;
            }
        }
        assert!(got == big, "{} of {} bytes", got.len(), big.len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let pki = Pki::new("session-garbage");
        let acceptor = super::super::load(&pki.config("a")).unwrap().unwrap();
        let mut server = acceptor.session().unwrap();
        let (mut plain, mut wire) = (Vec::new(), Vec::new());
        let r = server.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &mut plain, &mut wire);
        assert!(r.is_err());
        assert!(plain.is_empty());
    }
}
