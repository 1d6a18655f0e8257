//! A TLS connection over any [`Transport`], itself a [`Transport`]: blocking `Read`/`Write`
//! wait as the inner stream waits (a socket timeout, a pool thread's bounded poll, a green
//! socket), the `try_` forms never wait. The handshake needs no call of its own: the first
//! reads drive it (or [`TlsStream::handshake`] on a blocking stream), and response bytes
//! written before it ends are held until it has.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
                // Exactly: a read that filled `buf` may have taken the last byte there was.
                self.buffered = n > 0 && self.conn.reader().fill_buf().is_ok_and(|b| !b.is_empty());
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
        info_of(&self.conn)
    }
}

/// What the handshake established, as the environ reports it; None while handshaking.
pub(super) fn info_of(conn: &ServerConnection) -> Option<Arc<TlsInfo>> {
    if conn.is_handshaking() {
        return None;
    }
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or("unknown", |s| openssl_name(s.suite()));
    let client = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|der| client_cert(der.as_ref()));
    // Only the protocols this server offers can be chosen.
    let alpn = match conn.alpn_protocol() {
        Some(b"h2") => Some("h2"),
        Some(b"http/1.1") => Some("http/1.1"),
        Some(b"http/1.0") => Some("http/1.0"),
        _ => None,
    };
    Some(Arc::new(TlsInfo {
        protocol,
        cipher,
        client,
        alpn,
    }))
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

/// How long `shutdown_write` waits for room for the close_notify alert: a client reading the
/// response makes room at once; one that reads nothing gets the FIN without it after this.
const CLOSE_NOTIFY_WAIT: Duration = Duration::from_millis(200);

/// Waits until `fd` can take more bytes, at most `limit`; false on a timeout or an error (a
/// signal's interruption is neither: the caller tries again within its deadline).
fn wait_writable(fd: BorrowedFd<'_>, limit: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::ZERO);
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(
        poll(&mut fds, timeout),
        Ok(1..) | Err(nix::errno::Errno::EINTR)
    )
}

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

    fn try_flush(&mut self) -> io::Result<bool> {
        self.write_tls_now()
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        // RFC 8446 section 6.1: close_notify before our side closes, so the client tells the
        // end of the response from a truncation. Right after a large response the send buffer
        // can still be full (all of it handed to the kernel, not yet read): the alert waits a
        // little for room rather than being dropped before the FIN.
        self.conn.send_close_notify();
        let deadline = Instant::now() + CLOSE_NOTIFY_WAIT;
        while let Ok(false) = self.write_tls_now() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait_writable(self.sock.as_fd(), left) {
                break;
            }
        }
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
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use gunicorn_core::config::{CertReqs, SslVersion};
    use rustls::crypto::ring::cipher_suite;

    use crate::tls::settings::tests::acceptor;
    use crate::tls::tests::{client_handshake, connect, Client, Pki, IO_TIMEOUT};

    const TLS13: &[&str] = &[
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ];

    /// The client's handshake, then `go` once the server says so (its handshake done), after
    /// reading the TLS 1.3 session tickets the server wrote then: a socket closed with unread
    /// input is reset (ECONNRESET on the server's side), not closed.
    fn after_signal<T>(
        signal: mpsc::Receiver<()>,
        go: impl FnOnce(&mut Client) -> T,
    ) -> impl FnOnce(Client) -> T {
        move |mut client: Client| {
            while client.conn.is_handshaking() {
                client.conn.complete_io(&mut client.sock).unwrap();
            }
            signal.recv_timeout(IO_TIMEOUT).unwrap();
            client.conn.read_tls(&mut client.sock).unwrap();
            client.conn.process_new_packets().unwrap();
            go(&mut client)
        }
    }

    /// Reads what the client sent until `n` bytes arrived.
    fn read_n(server: &mut TlsStream<UnixStream>, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        server.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn round_trip_over_tls_13() {
        let pki = Pki::new("round-trip");
        let acceptor = acceptor(&pki.config("a"));
        let (tx, rx) = mpsc::channel();
        let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
        let (mut server, thread) = connect(
            &acceptor,
            client,
            after_signal(rx, |c| {
                c.write_all(b"ping").unwrap();
                let mut pong = [0u8; 4];
                c.read_exact(&mut pong).unwrap();
                assert_eq!(&pong, b"pong");
                // After the server's shutdown_write: a close_notify, a clean end (Ok(0)).
                let mut rest = Vec::new();
                c.read_to_end(&mut rest).unwrap();
                rest
            }),
        );
        assert!(server.in_handshake());
        assert!(server.tls_info().is_none());
        server.handshake().unwrap();
        assert!(!server.in_handshake());
        assert!(!server.passthrough());
        let info = server.tls_info().unwrap();
        assert_eq!(info.protocol, "TLSv1.3");
        assert!(TLS13.contains(&info.cipher), "{}", info.cipher);
        assert!(info.client.is_none());
        // Nothing sent yet: the non-blocking read says so.
        let mut buf = [0u8; 16];
        assert_eq!(server.try_read(&mut buf).unwrap(), None);
        assert!(!server.has_buffered_input());
        tx.send(()).unwrap();
        assert_eq!(read_n(&mut server, 4), b"ping");
        server.write_all(b"pong").unwrap();
        server.flush().unwrap();
        server.shutdown_write().unwrap();
        assert_eq!(thread.join().unwrap(), b"");
    }

    #[test]
    fn tls_12_with_the_cipher_suite_s_openssl_name() {
        let pki = Pki::new("tls12");
        let acceptor = acceptor(&pki.config("a"));
        let client = pki.client_config(
            None,
            &[&rustls::version::TLS12],
            Some(vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        );
        let (mut server, thread) = connect(&acceptor, client, client_handshake);
        server.handshake().unwrap();
        let info = server.tls_info().unwrap();
        assert_eq!(
            (info.protocol, info.cipher),
            ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
        );
        drop(server);
        assert!(thread.join().unwrap().unwrap().contains("O=Server A"));
    }

    /// ALPN: HTTP/1.1 for a client that offers it beside h2, HTTP/1.0 for one that offers only
    /// that (as gunicorn serves it), none for a client that offers nothing.
    #[test]
    fn alpn_http_1_x() {
        let pki = Pki::new("alpn");
        let acceptor = acceptor(&pki.config("a"));
        type Protocols = &'static [&'static [u8]];
        let cases: &[(Protocols, Option<&[u8]>)] = &[
            (&[b"h2", b"http/1.1"], Some(b"http/1.1")),
            (&[b"http/1.0"], Some(b"http/1.0")),
            (&[], None),
        ];
        for (offered, chosen) in cases {
            let mut config = (*pki.client_config(None, rustls::DEFAULT_VERSIONS, None)).clone();
            config.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();
            let (mut server, thread) = connect(&acceptor, Arc::new(config), client_handshake);
            server.handshake().unwrap();
            assert_eq!(server.conn.alpn_protocol(), *chosen, "{offered:?}");
            drop(server);
            thread.join().unwrap().unwrap();
        }
    }

    /// `ssl_version TLSv1_2` refuses a TLS 1.3-only client, `TLSv1_3` a TLS 1.2-only one.
    #[test]
    fn ssl_version_limits_the_versions() {
        let pki = Pki::new("versions");
        let cases = [
            (SslVersion::Tls12, &rustls::version::TLS13),
            (SslVersion::Tls13, &rustls::version::TLS12),
        ];
        for (version, client_version) in cases {
            let mut cfg = pki.config("a");
            cfg.ssl_version = version;
            let client = pki.client_config(None, &[client_version], None);
            let (mut server, thread) = connect(&acceptor(&cfg), client, client_handshake);
            let err = server.handshake().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{version:?}: {err}");
            drop(server);
            assert!(thread.join().unwrap().is_err());
        }
    }

    /// cert_reqs 2: a client certificate verified against ca_certs is required and shows in
    /// the TLS info; cert_reqs 1: optional.
    #[test]
    fn client_certificates() {
        let pki = Pki::new("mtls");
        let with_reqs = |reqs| {
            let mut cfg = pki.config("a");
            cfg.cert_reqs = reqs;
            cfg.ca_certs = Some(pki.path("ca.pem"));
            acceptor(&cfg)
        };
        let client_pem = String::from_utf8(pki.read("client.pem")).unwrap();
        for reqs in [CertReqs::Required, CertReqs::Optional] {
            let client = pki.client_config(Some("client"), rustls::DEFAULT_VERSIONS, None);
            let (mut server, thread) = connect(&with_reqs(reqs), client, client_handshake);
            server.handshake().unwrap();
            let info = server.tls_info().unwrap();
            let cert = info.client.as_ref().expect("the client's certificate");
            assert_eq!(cert.subject, "O=Clients, CN=client one", "{reqs:?}");
            assert_eq!(cert.issuer, "CN=Test CA");
            assert_eq!(cert.pem, client_pem);
            drop(server);
            thread.join().unwrap().unwrap();
        }
        // Without a certificate: refused when required, served when optional.
        let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
        let (mut server, thread) =
            connect(&with_reqs(CertReqs::Required), client, client_handshake);
        assert!(server.handshake().is_err());
        drop(server);
        let _ = thread.join().unwrap();
        let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
        let (mut server, thread) =
            connect(&with_reqs(CertReqs::Optional), client, client_handshake);
        server.handshake().unwrap();
        assert!(server.tls_info().unwrap().client.is_none());
        drop(server);
        thread.join().unwrap().unwrap();
        // A certificate of another CA is refused even when optional.
        let other = Pki::new("mtls-other");
        pki.write("stranger.pem", other.read("client.pem"));
        pki.write("stranger.key", other.read("client.key"));
        let config = pki.client_config(Some("stranger"), rustls::DEFAULT_VERSIONS, None);
        let (mut server, thread) =
            connect(&with_reqs(CertReqs::Optional), config, client_handshake);
        assert!(server.handshake().is_err());
        drop(server);
        let _ = thread.join().unwrap();
    }

    /// A client that closes TCP without close_notify: the end of input with
    /// suppress_ragged_eofs (gunicorn's default), an error without it; the blocking and the
    /// non-blocking reads alike.
    #[test]
    fn ragged_eofs() {
        let pki = Pki::new("ragged");
        for suppress in [true, false] {
            for blocking in [true, false] {
                let mut cfg = pki.config("a");
                cfg.suppress_ragged_eofs = suppress;
                let (tx, rx) = mpsc::channel();
                let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
                let (mut server, thread) = connect(
                    &acceptor(&cfg),
                    client,
                    after_signal(rx, |c| {
                        c.write_all(b"hello").unwrap();
                        // Dropped: the socket closes with no close_notify.
                    }),
                );
                server.handshake().unwrap();
                tx.send(()).unwrap();
                thread.join().unwrap();
                let mut buf = [0u8; 64];
                let mut got = Vec::new();
                let end = loop {
                    let read = if blocking {
                        server.read(&mut buf).map(Some)
                    } else {
                        server.try_read(&mut buf)
                    };
                    match read {
                        Ok(Some(0)) => break Ok(0),
                        Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
                        Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                        Err(e) => break Err(e),
                    }
                };
                assert_eq!(got, b"hello");
                let case = format!("suppress {suppress}, blocking {blocking}");
                match end {
                    Ok(_) => assert!(suppress, "{case}"),
                    Err(e) => {
                        assert!(!suppress, "{case}: {e}");
                        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{case}");
                    }
                }
            }
        }
    }

    /// Decrypted bytes left in the stream after a short read are reported, so that a worker
    /// reads them before waiting on the socket (which has nothing more to say).
    #[test]
    fn buffered_input_after_a_short_read() {
        let pki = Pki::new("buffered");
        let (tx, rx) = mpsc::channel();
        let (sent_tx, sent_rx) = mpsc::channel();
        let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
        let (mut server, thread) = connect(
            &acceptor(&pki.config("a")),
            client,
            after_signal(rx, move |c| {
                // Two records.
                c.write_all(&[b'1'; 100]).unwrap();
                c.write_all(&[b'2'; 100]).unwrap();
                sent_tx.send(()).unwrap();
                let _ = c.read_to_end(&mut Vec::new());
            }),
        );
        server.handshake().unwrap();
        tx.send(()).unwrap();
        sent_rx.recv_timeout(IO_TIMEOUT).unwrap();
        // Both records are in the socket; wait until the kernel says so.
        let deadline = Instant::now() + IO_TIMEOUT;
        while nix::sys::socket::recv(
            std::os::fd::AsRawFd::as_raw_fd(server.get_ref()),
            &mut [0u8; 512],
            nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        )
        .unwrap_or(0)
            < 2 * (100 + 22)
        {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut small = [0u8; 10];
        assert_eq!(server.read(&mut small).unwrap(), 10);
        assert!(server.has_buffered_input());
        assert_eq!(server.try_read(&mut small).unwrap(), Some(10));
        assert!(server.has_buffered_input());
        // The rest, exactly: nothing is left inside.
        let mut rest = [0u8; 180];
        assert_eq!(server.try_read(&mut rest).unwrap(), Some(180));
        assert_eq!(rest[..80], [b'1'; 80]);
        assert_eq!(rest[80..], [b'2'; 100]);
        assert!(!server.has_buffered_input());
        assert_eq!(server.try_read(&mut rest).unwrap(), None);
        drop(server);
        thread.join().unwrap();
    }

    /// The non-blocking forms drive the handshake (as gthread's event loop does) and write
    /// what the blocking ones write; `try_flush` says when all is out.
    #[test]
    fn the_non_blocking_forms_shake_hands_too() {
        let pki = Pki::new("nonblocking");
        let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
        let (mut server, thread) = connect(&acceptor(&pki.config("a")), client, |mut c| {
            c.write_all(b"request").unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            got
        });
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut buf = [0u8; 64];
        let n = loop {
            assert!(Instant::now() < deadline, "no request");
            match server.try_read(&mut buf).unwrap() {
                Some(n) => break n,
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        assert_eq!(&buf[..n], b"request");
        assert!(!server.in_handshake());
        assert_eq!(server.tls_info().unwrap().protocol, "TLSv1.3");
        let body = vec![b'x'; 256 * 1024];
        let mut sent = 0;
        while sent < body.len() || !server.try_flush().unwrap() {
            assert!(Instant::now() < deadline, "response stuck");
            match server.try_write(&body[sent..]).unwrap() {
                Some(n) => sent += n,
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        server.shutdown_write().unwrap();
        assert_eq!(thread.join().unwrap(), body);
    }

    /// Plain HTTP, a client that leaves, and one that stalls: the handshake fails (with an
    /// alert for the first), never hangs past the socket's timeout.
    #[test]
    fn failed_handshakes() {
        let pki = Pki::new("failed");
        let acceptor = acceptor(&pki.config("a"));

        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        theirs
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut server = acceptor.accept(ours).unwrap();
        let err = server.handshake().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        drop(server);
        let mut alert = Vec::new();
        theirs.read_to_end(&mut alert).unwrap();
        assert_eq!(alert.first(), Some(&0x15), "a TLS alert record: {alert:?}");

        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let mut server = acceptor.accept(ours).unwrap();
        let err = server.handshake().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");

        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut server = acceptor.accept(ours).unwrap();
        let started = Instant::now();
        let err = server.handshake().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(started.elapsed() < IO_TIMEOUT);
    }

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
