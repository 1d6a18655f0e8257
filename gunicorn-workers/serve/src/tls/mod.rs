//! TLS with gunicorn's settings, for every worker class: the server configuration built from
//! `certfile`, `keyfile`, `ca_certs`, `cert_reqs`, `ssl_version` and `ciphers` ([`load`]), and
//! the connection's stream ([`TlsStream`], a [`crate::Transport`]).
//!
//! The files are read in the master, when a worker class builds its workers (before each fork),
//! so a bad file stops the server before any worker runs, workers read no key file after
//! dropping privileges, and a HUP that brings new certificate files gives the new workers the
//! new certificate while the old workers finish their connections on the old one. A new file
//! that fails to load keeps the certificate loaded before it (see [`load`]).

mod session;
mod settings;
mod stream;
mod suites;

pub use session::{Received, TlsSession};
pub use settings::{enabled, load, Acceptor, TlsError};
pub use stream::TlsStream;

/// Reports a handshake that failed (the client left, stalled past its deadline, sent plain
/// HTTP or garbage, or refused our certificate): at debug level only, since scanners send such
/// connections all day, and counted in StatsD as `gunicorn.tls.handshake_failures`.
pub fn handshake_failed(conn: &gunicorn_http::ConnInfo, reason: &dyn std::fmt::Display) {
    gunicorn_core::log_debug!(
        "TLS handshake failed from ip={}: {reason}",
        crate::reject::peer_ip(conn)
    );
    gunicorn_core::statsd::increment("gunicorn.tls.handshake_failures", 1);
}

/// Certificates for the tls module's tests, made with the `openssl` command in a fresh temp
/// dir (removed on drop), and a rustls client talking to an [`Acceptor`] over a socket pair.
#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use rustls::crypto::ring;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::{Acceptor, TlsStream};

    /// A client of the tests: rustls over its end of the socket pair.
    pub(crate) type Client = StreamOwned<ClientConnection, UnixStream>;

    /// Every wait of these tests on a socket ends within this.
    pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

    const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
";

    /// A CA (`ca.pem`), two server certificates for localhost and 127.0.0.1 signed by it
    /// (`a.pem`/`a.key` with subject `O=Server A`, `b.pem`/`b.key` with `O=Server B`), and a
    /// client certificate (`client.pem`/`client.key`, `CN=client one`: X.509 v3 with
    /// `extendedKeyUsage=clientAuth`, or webpki refuses it). EC P-256 keys, in PKCS#8.
    pub(crate) struct Pki {
        dir: PathBuf,
    }

    impl Pki {
        pub(crate) fn new(tag: &str) -> Pki {
            static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "gunicorn-serve-tls-{tag}-{}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let pki = Pki { dir };
            pki.write("openssl.cnf", OPENSSL_CNF);
            pki.openssl(
                "req -x509 -new -config openssl.cnf -extensions ca -newkey ec \
                 -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30",
                &["-subj", "/CN=Test CA"],
            );
            pki.issue("a", "server", "/O=Server A/CN=localhost", 2);
            pki.issue("b", "server", "/O=Server B/CN=localhost", 3);
            pki.issue("client", "client", "/O=Clients/CN=client one", 4);
            pki
        }

        /// `NAME.key` and `NAME.pem` signed by the CA, with the extensions of section `kind`.
        fn issue(&self, name: &str, kind: &str, subject: &str, serial: u32) {
            self.openssl(
                &format!(
                    "req -new -config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
                     -nodes -keyout {name}.key -out {name}.csr"
                ),
                &["-subj", subject],
            );
            self.openssl(
                &format!(
                    "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -set_serial {serial} \
                     -out {name}.pem -days 30 -extfile openssl.cnf -extensions {kind}"
                ),
                &[],
            );
        }

        /// Runs `openssl` with the words of `args` then `more`, in the directory; panics with
        /// its output when it fails.
        pub(crate) fn openssl(&self, args: &str, more: &[&str]) {
            let out = Command::new("openssl")
                .args(args.split_whitespace())
                .args(more)
                .current_dir(&self.dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args} {more:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        /// The path of `name` in the directory, as a setting takes it.
        pub(crate) fn path(&self, name: &str) -> String {
            self.dir.join(name).to_string_lossy().into_owned()
        }

        /// Writes `data` to `name` and returns its path.
        pub(crate) fn write(&self, name: &str, data: impl AsRef<[u8]>) -> String {
            std::fs::write(self.dir.join(name), data).expect("write file");
            self.path(name)
        }

        /// The contents of `name`.
        pub(crate) fn read(&self, name: &str) -> Vec<u8> {
            std::fs::read(self.dir.join(name)).expect("read file")
        }

        /// A configuration with TLS on: certificate `NAME.pem`, key `NAME.key`.
        pub(crate) fn config(&self, name: &str) -> gunicorn_core::Config {
            gunicorn_core::Config {
                certfile: Some(self.path(&format!("{name}.pem"))),
                keyfile: Some(self.path(&format!("{name}.key"))),
                ..Default::default()
            }
        }

        /// A client trusting the CA, with the certificate `NAME.pem`/`NAME.key` when given,
        /// limited to `versions` and `suites` when given.
        pub(crate) fn client_config(
            &self,
            cert: Option<&str>,
            versions: &[&'static rustls::SupportedProtocolVersion],
            suites: Option<Vec<rustls::SupportedCipherSuite>>,
        ) -> Arc<ClientConfig> {
            #[allow(deprecated)] // ring, as the server (settings.rs says why)
            let mut provider = ring::default_provider();
            if let Some(suites) = suites {
                provider.cipher_suites = suites;
            }
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(&self.read("ca.pem")) {
                roots.add(ca.unwrap()).unwrap();
            }
            let builder = ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots);
            let config = match cert {
                None => builder.with_no_client_auth(),
                Some(name) => {
                    let chain = CertificateDer::pem_slice_iter(&self.read(&format!("{name}.pem")))
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap();
                    let key =
                        PrivateKeyDer::from_pem_slice(&self.read(&format!("{name}.key"))).unwrap();
                    builder.with_client_auth_cert(chain, key).unwrap()
                }
            };
            Arc::new(config)
        }
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Starts TLS with `acceptor` on one end of a socket pair and runs `client` in a thread on
    /// the other end (a rustls client of `config` for `localhost`); the server's stream has
    /// not shaken hands yet. Both ends time out after [`IO_TIMEOUT`].
    pub(crate) fn connect<T: Send + 'static>(
        acceptor: &Acceptor,
        config: Arc<ClientConfig>,
        client: impl FnOnce(Client) -> T + Send + 'static,
    ) -> (TlsStream<UnixStream>, JoinHandle<T>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        for sock in [&ours, &theirs] {
            sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        }
        let conn = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        let thread = std::thread::spawn(move || client(StreamOwned::new(conn, theirs)));
        (acceptor.accept(ours).unwrap(), thread)
    }

    /// The client side of a handshake alone: Ok with the server certificate's subject, once
    /// the server closed the connection (the server writes after the handshake: TLS 1.3's
    /// session tickets).
    pub(crate) fn client_handshake(mut client: Client) -> Result<String, std::io::Error> {
        while client.conn.is_handshaking() {
            client.conn.complete_io(&mut client.sock)?;
        }
        let der = client.conn.peer_certificates().unwrap()[0].clone();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let _ = std::io::Read::read_to_end(&mut client, &mut Vec::new());
        Ok(cert.subject().to_string())
    }
}
