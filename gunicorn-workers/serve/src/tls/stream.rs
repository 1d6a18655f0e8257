//! A TLS connection over any [`Transport`], itself a [`Transport`]: blocking `Read`/`Write`
//! wait as the inner stream waits (a socket timeout, a pool thread's bounded poll, a green
//! socket), the `try_` forms never wait. The handshake needs no call of its own: the first
//! reads drive it (or [`TlsStream::handshake`] on a blocking stream), and response bytes
//! written before it ends are held until it has.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use gunicorn_http::{ClientCert, TlsInfo};
use rustls::{ServerConfig, ServerConnection};

use super::suites::openssl_name;
use crate::transport::Transport;

/// A server-side TLS connection on `S`.
pub struct TlsStream<S> {
    sock: S,
    conn: ServerConnection,
    /// A client closing TCP without close_notify ends its input like a clean close.
    suppress_ragged_eofs: bool,
    /// Decrypted bytes wait in `conn` (the last records processed held more than was read).
    buffered: bool,
    info: Option<Arc<TlsInfo>>,
}

impl<S: Transport> TlsStream<S> {
    pub(super) fn new(
        sock: S,
        config: Arc<ServerConfig>,
        suppress_ragged_eofs: bool,
    ) -> io::Result<Self> {
        Ok(TlsStream {
            sock,
            conn: ServerConnection::new(config).map_err(io::Error::other)?,
            suppress_ragged_eofs,
            buffered: false,
            info: None,
        })
    }

    /// The handshake is not finished yet.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// Runs the handshake to its end on a blocking stream (its reads bounded by the caller, e.g.
    /// with `SO_RCVTIMEO`). Err when the client fails it, goes away or stalls.
    pub fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.write_tls_blocking()?;
            if !self.conn.is_handshaking() {
                break;
            }
            if self.conn.read_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.process()?;
        }
        self.write_tls_blocking()
    }

    /// Decrypted bytes already in rustls: `Some(n)` (0 = the end of input), None = none yet.
    fn plaintext(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.conn.reader().read(buf) {
            Ok(n) => {
                self.buffered = n > 0 && n == buf.len();
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.buffered = false;
                Ok(None)
            }
            // TCP closed without close_notify (RFC 8446 §6.1): a truncation attack for a
            // length-delimited protocol, harmless for HTTP/1.1, whose framing says where a
            // request ends; Python's `suppress_ragged_eofs` (on by default) reads it as EOF.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.suppress_ragged_eofs => {
                self.buffered = false;
                Ok(Some(0))
            }
            Err(e) => Err(e),
        }
    }

    /// Processes the records read; on a protocol error the alert goes out (if the socket
    /// takes it now) and the error is `InvalidData`.
    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.buffered = state.plaintext_bytes_to_read() > 0;
                if self.info.is_none() && !self.conn.is_handshaking() {
                    // Once per connection: every request's environ shares it.
                    self.info = self.make_info();
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.write_tls_now();
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    fn write_tls_blocking(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        Ok(())
    }

    /// Writes what rustls has to send without waiting; true when all of it went out.
    fn write_tls_now(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Now(&mut self.sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn make_info(&self) -> Option<Arc<TlsInfo>> {
        if self.conn.is_handshaking() {
            return None;
        }
        let protocol = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        let cipher = self
            .conn
            .negotiated_cipher_suite()
            .map_or("unknown", |s| openssl_name(s.suite()));
        let client = self
            .conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|der| client_cert(der.as_ref()));
        Some(Arc::new(TlsInfo {
            protocol,
            cipher,
            client,
        }))
    }
}

/// The environ's view of a verified client certificate.
fn client_cert(der: &[u8]) -> ClientCert {
    let (subject, issuer) = match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => (cert.subject().to_string(), cert.issuer().to_string()),
        Err(_) => (String::new(), String::new()),
    };
    ClientCert {
        pem: pem_encode("CERTIFICATE", der),
        subject,
        issuer,
    }
}

/// RFC 7468 PEM: base64 in lines of 64 characters between BEGIN and END lines.
fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            b64.push(if i <= n {
                ALPHABET[((v >> (18 - 6 * i)) & 63) as usize]
            } else {
                b'='
            });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The inner stream's non-blocking forms as `Read`/`Write` for rustls (`WouldBlock` = not now).
struct Now<'a, S>(&'a mut S);

impl<S: Transport> Read for Now<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .try_read(buf)?
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

impl<S: Transport> Write for Now<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .try_write(buf)?
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Transport> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.plaintext(buf)? {
                return Ok(n);
            }
            self.write_tls_blocking()?;
            self.conn.read_tls(&mut self.sock)?;
            self.process()?;
        }
    }
}

impl<S: Transport> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.write_tls_blocking()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_tls_blocking()?;
        self.sock.flush()
    }
}

impl<S: Transport> AsFd for TlsStream<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl<S: Transport> Transport for TlsStream<S> {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            if let Some(n) = self.plaintext(buf)? {
                return Ok(Some(n));
            }
            self.write_tls_now()?;
            match self.conn.read_tls(&mut Now(&mut self.sock)) {
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        if !self.write_tls_now()? {
            return Ok(None);
        }
        let n = self.conn.writer().write(buf)?;
        self.write_tls_now()?;
        Ok(Some(n))
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        let _ = self.write_tls_now();
        self.sock.shutdown_write()
    }

    fn passthrough(&self) -> bool {
        false
    }

    fn has_buffered_input(&self) -> bool {
        self.buffered
    }

    fn in_handshake(&self) -> bool {
        self.conn.is_handshaking()
    }

    fn tls_info(&self) -> Option<Arc<TlsInfo>> {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_of_64_with_padding() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "-----BEGIN X-----\n-----END X-----\n"),
            (b"f", "-----BEGIN X-----\nZg==\n-----END X-----\n"),
            (b"fo", "-----BEGIN X-----\nZm8=\n-----END X-----\n"),
            (b"foobar", "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n"),
        ];
        for (der, want) in cases {
            assert_eq!(pem_encode("X", der), *want);
        }
        let long = pem_encode("X", &[0u8; 60]);
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "AAAAAAAAAAAAAAAA");
    }
}
