//! gunicorn's SSL settings read into a rustls server configuration, with one error line per bad
//! setting or file, and the last good configuration kept when new files fail to load.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gunicorn_core::config::{CertReqs, HttpProtocol, HttpProtocols, SslVersion};
use gunicorn_core::{log_error, Config};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};

use super::stream::TlsStream;
use super::suites::OPENSSL_NAMES;
use crate::transport::Transport;

/// Why TLS cannot be set up. Each message names the setting and its value (or file).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("keyfile {0} is set without certfile")]
    KeyWithoutCert(String),
    #[error("{setting} {path}: {source}")]
    Read {
        setting: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting} {path}: {reason}")]
    Pem {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error("certfile {0}: no certificate in it (PEM CERTIFICATE blocks)")]
    NoCertificate(String),
    #[error("{setting} {path}: no private key in it (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")]
    NoKey { setting: &'static str, path: String },
    #[error(
        "{setting} {path}: the private key is encrypted, and this server takes no key password \
         (decrypt it: openssl pkey -in KEY -out PLAIN_KEY)"
    )]
    EncryptedKey { setting: &'static str, path: String },
    #[error("keyfile {keyfile} does not match certfile {certfile}")]
    KeyMismatch { certfile: String, keyfile: String },
    #[error("certfile {certfile} / keyfile {keyfile}: {source}")]
    Certificate {
        certfile: String,
        keyfile: String,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "cert_reqs {0} needs ca_certs (the CAs that client certificates are verified against)"
    )]
    NeedsCaCerts(u8),
    #[error("ca_certs {path}: {reason}")]
    CaCerts { path: String, reason: String },
    #[error("ciphers {value:?}: {name:?} is not a cipher suite of this server (known: {known})")]
    UnknownCipher {
        value: String,
        name: String,
        known: String,
    },
    #[error("ciphers {value:?} leaves no cipher suite for ssl_version {version}")]
    NoCipherLeft { value: String, version: String },
    #[error("ssl_version {version}: {source}")]
    Versions {
        version: String,
        #[source]
        source: rustls::Error,
    },
}

/// What accepts TLS connections: the server configuration and how reads treat a ragged EOF.
#[derive(Clone)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
    suppress_ragged_eofs: bool,
    /// How long a handshake may take on a blocking stream (`--timeout`, None = unbounded).
    handshake_timeout: Option<Duration>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("suppress_ragged_eofs", &self.suppress_ragged_eofs)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Starts TLS on an accepted connection. The handshake is driven by the first reads (see
    /// [`TlsStream`]); `rustls` fails only when out of memory.
    pub fn accept<S: Transport>(&self, sock: S) -> std::io::Result<TlsStream<S>> {
        TlsStream::new(sock, Arc::clone(&self.config), self.suppress_ragged_eofs)
    }

    /// The server configuration, for a connection the caller drives itself.
    pub(super) fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The bound on a blocking handshake (`--timeout`; None when the timeout is off).
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// This acceptor, also offering HTTP/2 by ALPN (RFC 7301, RFC 9113 §3.2) in the order of
    /// `http_protocols`: `h2,h1` prefers it, `h1,h2` prefers HTTP/1.1 (rustls picks the
    /// server's first protocol the client offers). HTTP/1.x stays offered with `h2` alone, as
    /// gunicorn serves a client that does not pick h2 over HTTP/1.1 rather than refusing it.
    pub fn offering_h2(&self, protocols: &HttpProtocols) -> Acceptor {
        let mut config = (*self.config).clone();
        let h1: [Vec<u8>; 2] = [b"http/1.1".to_vec(), b"http/1.0".to_vec()];
        config.alpn_protocols = Vec::new();
        for p in &protocols.0 {
            match p {
                HttpProtocol::H2 => config.alpn_protocols.push(b"h2".to_vec()),
                HttpProtocol::H1 => config.alpn_protocols.extend(h1.iter().cloned()),
            }
        }
        if !protocols.0.contains(&HttpProtocol::H1) {
            config.alpn_protocols.extend(h1.iter().cloned());
        }
        Acceptor {
            config: Arc::new(config),
            ..self.clone()
        }
    }
}

/// Whether the configuration asks for TLS (gunicorn's `is_ssl`: certfile or keyfile set).
pub fn enabled(cfg: &Config) -> bool {
    cfg.certfile.is_some() || cfg.keyfile.is_some()
}

/// The TLS settings an acceptor was built from. A file that fails to load falls back only to
/// an acceptor of the same settings: new settings that do not load are an error, so a HUP
/// asking for, say, `cert_reqs 2` with a missing `ca_certs` is refused by the arbiter (which
/// keeps the configuration in force) instead of serving on under the old `cert_reqs`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    certfile: Option<String>,
    keyfile: Option<String>,
    ca_certs: Option<String>,
    cert_reqs: CertReqs,
    ssl_version: SslVersion,
    ciphers: Option<String>,
    suppress_ragged_eofs: bool,
    timeout: u64,
}

impl Settings {
    fn of(cfg: &Config) -> Settings {
        Settings {
            certfile: cfg.certfile.clone(),
            keyfile: cfg.keyfile.clone(),
            ca_certs: cfg.ca_certs.clone(),
            cert_reqs: cfg.cert_reqs,
            ssl_version: cfg.ssl_version,
            ciphers: cfg.ciphers.clone(),
            suppress_ragged_eofs: cfg.suppress_ragged_eofs,
            timeout: cfg.timeout,
        }
    }
}

/// How many settings' last good acceptors are kept: the configuration in force and the ones a
/// reload tried (a reload the arbiter refused for another setting leaves the old one in force).
const KEPT: usize = 4;

/// The last acceptor that loaded for each recent set of settings (the latest last), and the
/// last failure logged (logged once).
static LAST_GOOD: Mutex<Vec<(Settings, Acceptor)>> = Mutex::new(Vec::new());
static LAST_FAILURE: Mutex<Option<String>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The TLS acceptor for `cfg`, None when TLS is off. Reads the files every time (each worker
/// built after a HUP gets the files as they are then). When they fail to load and the same
/// settings loaded before in this process (a certificate rotated to a broken file), the error
/// is logged once and the previous acceptor is returned: connections keep being served with
/// the old certificate rather than a worker failing to boot. Settings that never loaded are
/// an error (at startup: exit 1; at a HUP: the arbiter keeps the configuration in force).
pub fn load(cfg: &Config) -> Result<Option<Acceptor>, TlsError> {
    if !enabled(cfg) {
        return Ok(None);
    }
    let settings = Settings::of(cfg);
    match build(cfg) {
        Ok(acceptor) => {
            let mut good = lock(&LAST_GOOD);
            good.retain(|(s, _)| *s != settings);
            if good.len() >= KEPT {
                good.remove(0);
            }
            good.push((settings, acceptor.clone()));
            *lock(&LAST_FAILURE) = None;
            Ok(Some(acceptor))
        }
        Err(e) => {
            let previous = lock(&LAST_GOOD)
                .iter()
                .find(|(s, _)| *s == settings)
                .map(|(_, a)| a.clone());
            let Some(previous) = previous else {
                return Err(e);
            };
            let message = e.to_string();
            let mut last = lock(&LAST_FAILURE);
            if last.as_deref() != Some(message.as_str()) {
                log_error!("TLS: {message}; the certificate loaded before stays in use");
                *last = Some(message);
            }
            Ok(Some(previous))
        }
    }
}

fn build(cfg: &Config) -> Result<Acceptor, TlsError> {
    let certfile = match (&cfg.certfile, &cfg.keyfile) {
        (Some(c), _) => c.clone(),
        (None, Some(k)) => return Err(TlsError::KeyWithoutCert(k.clone())),
        (None, None) => unreachable!("checked by enabled()"),
    };
    // gunicorn's load_cert_chain(certfile, keyfile): the key may sit in the certificate file.
    let (key_setting, keyfile) = match &cfg.keyfile {
        Some(k) => ("keyfile", k.clone()),
        None => ("certfile", certfile.clone()),
    };
    let certs = read_certs("certfile", &certfile)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(certfile));
    }
    let key = read_key(key_setting, &keyfile)?;
    let provider = Arc::new(provider(cfg)?);
    let versions = versions(cfg.ssl_version);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|source| TlsError::Versions {
            version: gunicorn_core::config::SettingType::render(&cfg.ssl_version),
            source,
        })?;
    let builder = match client_verifier(cfg, &provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|source| match source {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                certfile: certfile.clone(),
                keyfile: keyfile.clone(),
            },
            source => TlsError::Certificate {
                certfile: certfile.clone(),
                keyfile: keyfile.clone(),
                source,
            },
        })?;
    // HTTP/1.x unless the worker class serves HTTP/2 (`Acceptor::offering_h2`). Both
    // versions are listed: a server that offers ALPN refuses a client whose list has none of
    // its protocols (RFC 7301 §3.2, rustls's no_application_protocol alert), and an HTTP/1.0
    // client (`curl --http1.0`) offers only "http/1.0", which gunicorn serves.
    config.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    Ok(Acceptor {
        config: Arc::new(config),
        suppress_ragged_eofs: cfg.suppress_ragged_eofs,
        handshake_timeout: (cfg.timeout > 0).then(|| Duration::from_secs(cfg.timeout)),
    })
}

fn read_file(setting: &'static str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_string(),
        source,
    })
}

fn read_certs(setting: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(setting, path)?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            setting,
            path: path.to_string(),
            reason: e.to_string(),
        })
}

fn read_key(setting: &'static str, path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(setting, path)?;
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, or a traditional key with `Proc-Type: 4,ENCRYPTED`.
    let text = String::from_utf8_lossy(&pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::EncryptedKey {
            setting,
            path: path.to_string(),
        });
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            setting,
            path: path.to_string(),
        },
        e => TlsError::Pem {
            setting,
            path: path.to_string(),
            reason: e.to_string(),
        },
    })
}

static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn versions(v: SslVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    match v {
        SslVersion::Tls => rustls::ALL_VERSIONS,
        SslVersion::Tls12 => TLS12_ONLY,
        SslVersion::Tls13 => TLS13_ONLY,
    }
}

/// `cert_reqs` 1 (optional) or 2 (required) with `ca_certs`; None when no certificate is asked.
fn client_verifier(
    cfg: &Config,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, TlsError> {
    let optional = match cfg.cert_reqs {
        CertReqs::None => return Ok(None),
        CertReqs::Optional => true,
        CertReqs::Required => false,
    };
    let Some(path) = &cfg.ca_certs else {
        return Err(TlsError::NeedsCaCerts(cfg.cert_reqs as u8));
    };
    let ca_error = |reason: String| TlsError::CaCerts {
        path: path.clone(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certs("ca_certs", path)? {
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ca_error(
            "no certificate in it (PEM CERTIFICATE blocks)".into(),
        ));
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder
        .build()
        .map(Some)
        .map_err(|e| ca_error(e.to_string()))
}

/// ring's provider with the suites `ciphers` allows. Like Python's `set_ciphers` (OpenSSL's
/// cipher list), naming only TLS 1.2 suites leaves the TLS 1.3 suites on.
fn provider(cfg: &Config) -> Result<CryptoProvider, TlsError> {
    // ring builds with gcc alone (aws-lc-rs, rustls's default, needs its C library built and
    // brings post-quantum key exchange; moving to it is a measured step of its own).
    #[allow(deprecated)]
    let mut provider = ring::default_provider();
    let Some(value) = cfg.ciphers.as_deref().filter(|v| !v.trim().is_empty()) else {
        return Ok(provider);
    };
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for name in value.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("DEFAULT") {
            chosen.extend(ring::ALL_CIPHER_SUITES.iter().copied());
            continue;
        }
        let suite = suite_named(name).ok_or_else(|| TlsError::UnknownCipher {
            value: value.to_string(),
            name: name.to_string(),
            known: known_ciphers(),
        })?;
        chosen.push(suite);
    }
    if !chosen
        .iter()
        .any(|s| s.version() == &rustls::version::TLS13)
    {
        chosen.extend(
            ring::ALL_CIPHER_SUITES
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
    }
    let mut seen = Vec::new();
    chosen.retain(|s| {
        let new = !seen.contains(&s.suite());
        seen.push(s.suite());
        new
    });
    let usable = versions(cfg.ssl_version);
    if !chosen.iter().any(|s| usable.contains(&s.version())) {
        return Err(TlsError::NoCipherLeft {
            value: value.to_string(),
            version: gunicorn_core::config::SettingType::render(&cfg.ssl_version),
        });
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

fn suite_named(name: &str) -> Option<SupportedCipherSuite> {
    let by_openssl = OPENSSL_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| *s);
    ring::ALL_CIPHER_SUITES.iter().copied().find(|s| {
        Some(s.suite()) == by_openssl
            || s.suite()
                .as_str()
                .is_some_and(|iana| iana.eq_ignore_ascii_case(name))
    })
}

fn known_ciphers() -> String {
    OPENSSL_NAMES
        .iter()
        .map(|(n, _)| *n)
        .chain(std::iter::once("DEFAULT"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::tests::{client_handshake, connect, Pki};

    /// The acceptor for `cfg` without the process-wide keep-the-last-good rule of [`load`]
    /// (tests run in parallel; only `rotation_keeps_the_last_good_certificate` uses `load`).
    pub(crate) fn acceptor(cfg: &Config) -> Acceptor {
        build(cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(cfg: &Config) -> String {
        match build(cfg) {
            Ok(_) => panic!("loaded: {cfg:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tls_is_on_when_certfile_or_keyfile_is_set() {
        let mut cfg = Config::default();
        assert!(!enabled(&cfg));
        assert!(load(&cfg).unwrap().is_none());
        cfg.keyfile = Some("k".into());
        assert!(enabled(&cfg));
        cfg.keyfile = None;
        cfg.certfile = Some("c".into());
        assert!(enabled(&cfg));
    }

    /// Each bad setting or file: the message names the setting and the file (or the value).
    #[test]
    fn load_errors_name_the_setting_and_the_file() {
        let pki = Pki::new("errors");
        pki.write("empty.pem", "");
        pki.write(
            "bad.key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        pki.write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        );
        pki.openssl(
            "pkey -in a.key -aes256 -passout pass:x -out pkcs8-encrypted.key",
            &[],
        );
        pki.openssl(
            "ec -in a.key -aes256 -passout pass:x -out ec-encrypted.key",
            &[],
        );
        pki.openssl(
            "genrsa -aes256 -passout pass:x -out rsa-encrypted.key 2048",
            &[],
        );
        pki.openssl(
            "genrsa -aes256 -traditional -passout pass:x -out rsa-trad-encrypted.key 2048",
            &[],
        );
        let (a_pem, a_key, b_key) = (pki.path("a.pem"), pki.path("a.key"), pki.path("b.key"));
        let missing = pki.path("missing.pem");
        let with = |f: &dyn Fn(&mut Config)| {
            let mut cfg = pki.config("a");
            f(&mut cfg);
            cfg
        };
        // (case, config, what the message must contain)
        let cases: Vec<(&str, Config, Vec<String>)> = vec![
            (
                "missing certfile",
                with(&|c| c.certfile = Some(missing.clone())),
                vec![format!("certfile {missing}: "), "No such file".into()],
            ),
            (
                "missing keyfile",
                with(&|c| c.keyfile = Some(missing.clone())),
                vec![format!("keyfile {missing}: "), "No such file".into()],
            ),
            (
                "keyfile without certfile",
                with(&|c| c.certfile = None),
                vec![format!("keyfile {a_key} is set without certfile")],
            ),
            (
                "certfile with no certificate (a key)",
                with(&|c| c.certfile = Some(a_key.clone())),
                vec![format!("certfile {a_key}: no certificate in it")],
            ),
            (
                "empty certfile",
                with(&|c| c.certfile = Some(pki.path("empty.pem"))),
                vec![format!(
                    "certfile {}: no certificate",
                    pki.path("empty.pem")
                )],
            ),
            (
                "certfile that is not PEM",
                with(&|c| c.certfile = Some(pki.path("garbage.pem"))),
                vec![format!("certfile {}: ", pki.path("garbage.pem"))],
            ),
            (
                "keyfile with no key (a certificate)",
                with(&|c| c.keyfile = Some(a_pem.clone())),
                vec![format!("keyfile {a_pem}: no private key in it")],
            ),
            (
                "certfile alone, no key in it",
                with(&|c| c.keyfile = None),
                vec![format!("certfile {a_pem}: no private key in it")],
            ),
            (
                "encrypted PKCS#8 key (openssl pkey -aes256)",
                with(&|c| c.keyfile = Some(pki.path("pkcs8-encrypted.key"))),
                vec![
                    format!("keyfile {}: ", pki.path("pkcs8-encrypted.key")),
                    "encrypted".into(),
                    "openssl pkey -in KEY -out PLAIN_KEY".into(),
                ],
            ),
            (
                "encrypted EC key (openssl ec -aes256)",
                with(&|c| c.keyfile = Some(pki.path("ec-encrypted.key"))),
                vec![
                    format!("keyfile {}: ", pki.path("ec-encrypted.key")),
                    "encrypted".into(),
                ],
            ),
            (
                "encrypted RSA key (openssl genrsa -aes256)",
                with(&|c| c.keyfile = Some(pki.path("rsa-encrypted.key"))),
                vec![
                    format!("keyfile {}: ", pki.path("rsa-encrypted.key")),
                    "encrypted".into(),
                ],
            ),
            (
                "encrypted traditional RSA key (Proc-Type: 4,ENCRYPTED)",
                with(&|c| c.keyfile = Some(pki.path("rsa-trad-encrypted.key"))),
                vec![
                    format!("keyfile {}: ", pki.path("rsa-trad-encrypted.key")),
                    "encrypted".into(),
                ],
            ),
            (
                "a key that does not parse",
                with(&|c| c.keyfile = Some(pki.path("bad.key"))),
                vec![
                    format!("keyfile {}: ", pki.path("bad.key")),
                    "private key".into(),
                ],
            ),
            (
                "key of another certificate",
                with(&|c| c.keyfile = Some(b_key.clone())),
                vec![format!("keyfile {b_key} does not match certfile {a_pem}")],
            ),
            (
                "cert_reqs 2 without ca_certs",
                with(&|c| c.cert_reqs = CertReqs::Required),
                vec!["cert_reqs 2 needs ca_certs".into()],
            ),
            (
                "cert_reqs 1 without ca_certs",
                with(&|c| c.cert_reqs = CertReqs::Optional),
                vec!["cert_reqs 1 needs ca_certs".into()],
            ),
            (
                "ca_certs with no certificate (a key)",
                with(&|c| {
                    c.cert_reqs = CertReqs::Required;
                    c.ca_certs = Some(a_key.clone());
                }),
                vec![format!("ca_certs {a_key}: no certificate in it")],
            ),
            (
                "missing ca_certs",
                with(&|c| {
                    c.cert_reqs = CertReqs::Optional;
                    c.ca_certs = Some(missing.clone());
                }),
                vec![format!("ca_certs {missing}: "), "No such file".into()],
            ),
            (
                "OpenSSL keyword HIGH",
                with(&|c| c.ciphers = Some("HIGH".into())),
                vec![
                    "ciphers \"HIGH\": \"HIGH\" is not a cipher suite of this server".into(),
                    "ECDHE-RSA-AES128-GCM-SHA256".into(),
                ],
            ),
            (
                "an exclusion among known names",
                with(&|c| c.ciphers = Some("ECDHE-RSA-AES128-GCM-SHA256:!aNULL".into())),
                vec!["\"!aNULL\" is not a cipher suite".into()],
            ),
            (
                "a suite rustls does not implement (CBC)",
                with(&|c| c.ciphers = Some("ECDHE-RSA-AES128-SHA".into())),
                vec!["\"ECDHE-RSA-AES128-SHA\" is not a cipher suite".into()],
            ),
            (
                "only TLS 1.3 suites with ssl_version TLSv1_2",
                with(&|c| {
                    c.ciphers = Some("TLS_AES_128_GCM_SHA256".into());
                    c.ssl_version = SslVersion::Tls12;
                }),
                vec![
                    "ciphers \"TLS_AES_128_GCM_SHA256\" leaves no cipher suite for ssl_version \
                     TLSv1_2"
                        .into(),
                ],
            ),
        ];
        for (case, cfg, wanted) in cases {
            let message = error(&cfg);
            for want in wanted {
                assert!(
                    message.contains(&want),
                    "{case}: {message:?} lacks {want:?}"
                );
            }
            assert!(!message.contains('\n'), "{case}: one line: {message:?}");
        }
    }

    fn suite_names(cfg: &Config) -> Vec<&'static str> {
        provider(cfg)
            .unwrap_or_else(|e| panic!("{e}"))
            .cipher_suites
            .iter()
            .map(|s| s.suite().as_str().unwrap())
            .collect()
    }

    const TLS13: [&str; 3] = [
        "TLS13_AES_256_GCM_SHA384",
        "TLS13_AES_128_GCM_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
    ];

    /// OpenSSL and IANA names (any case, `:`, `,` or space between), DEFAULT; naming only TLS
    /// 1.2 suites keeps the TLS 1.3 ones on, as OpenSSL's cipher list does.
    #[test]
    fn ciphers_by_openssl_and_iana_names() {
        let pki = Pki::new("ciphers");
        let cases: &[(&str, SslVersion, &[&str])] = &[
            (
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                SslVersion::Tls,
                &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                SslVersion::Tls,
                &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
            ),
            (
                "ecdhe-rsa-chacha20-poly1305:ECDHE-ECDSA-AES256-GCM-SHA384",
                SslVersion::Tls12,
                &[
                    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                ],
            ),
            (
                "ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384",
                SslVersion::Tls,
                &[
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                ],
            ),
            // TLS 1.3 names: OpenSSL's (= IANA's) and rustls's.
            (
                "TLS_CHACHA20_POLY1305_SHA256",
                SslVersion::Tls13,
                &["TLS13_CHACHA20_POLY1305_SHA256"],
            ),
            (
                "TLS13_AES_128_GCM_SHA256",
                SslVersion::Tls,
                &["TLS13_AES_128_GCM_SHA256"],
            ),
            // Only TLS 1.2 suites named with ssl_version TLSv1_3: the TLS 1.3 suites stay, as
            // in Python (`set_ciphers` does not touch TLS 1.3's list).
            (
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                SslVersion::Tls13,
                &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
            ),
        ];
        for (value, version, named) in cases {
            let mut cfg = pki.config("a");
            cfg.ciphers = Some(value.to_string());
            cfg.ssl_version = *version;
            let names = suite_names(&cfg);
            let mut wanted: Vec<&str> = named.to_vec();
            if !named.iter().any(|n| n.starts_with("TLS13_")) {
                wanted.extend(TLS13);
            }
            assert_eq!(names, wanted, "{value}");
            build(&cfg).unwrap_or_else(|e| panic!("{value}: {e}"));
        }
        // DEFAULT (alone, or with names: no duplicates) and no value: ring's suites.
        let all: Vec<&str> = ring::ALL_CIPHER_SUITES
            .iter()
            .map(|s| s.suite().as_str().unwrap())
            .collect();
        for value in [
            None,
            Some(""),
            Some("DEFAULT"),
            Some("default:TLS_AES_128_GCM_SHA256"),
        ] {
            let mut cfg = pki.config("a");
            cfg.ciphers = value.map(String::from);
            assert_eq!(suite_names(&cfg), all, "{value:?}");
        }
    }

    /// A rotated certificate that does not load keeps the one loaded before (logged once); a
    /// first load that fails is an error; a good file after a broken one is used again.
    #[test]
    fn rotation_keeps_the_last_good_certificate() {
        let pki = Pki::new("rotation");
        lock(&LAST_GOOD).clear();
        *lock(&LAST_FAILURE) = None;
        let cfg = pki.config("a");
        let served = |acceptor: &Acceptor| {
            let client = pki.client_config(None, rustls::DEFAULT_VERSIONS, None);
            let (mut server, thread) = connect(acceptor, client, client_handshake);
            server.handshake().unwrap();
            drop(server);
            thread.join().unwrap().unwrap()
        };

        let (a_pem, a_key) = (pki.read("a.pem"), pki.read("a.key"));

        // The first load of a broken file is an error (the server does not start).
        pki.write("a.pem", "not a certificate");
        assert!(matches!(load(&cfg), Err(TlsError::NoCertificate(_))));

        pki.write("a.pem", pki.read("b.pem"));
        pki.write("a.key", pki.read("b.key"));
        let first = load(&cfg).unwrap().unwrap();
        assert!(served(&first).contains("O=Server B"));

        // Broken files, twice: the acceptor loaded before, the error logged once.
        pki.write(
            "a.key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        for _ in 0..2 {
            let kept = load(&cfg).unwrap().unwrap();
            assert!(Arc::ptr_eq(&kept.config, &first.config));
            assert!(served(&kept).contains("O=Server B"));
            let logged = lock(&LAST_FAILURE).clone().unwrap();
            assert!(
                logged.contains(&format!("keyfile {}: ", pki.path("a.key"))),
                "{logged}"
            );
        }
        std::fs::remove_file(pki.path("a.pem")).unwrap();
        let kept = load(&cfg).unwrap().unwrap();
        assert!(Arc::ptr_eq(&kept.config, &first.config));
        assert!(lock(&LAST_FAILURE).clone().unwrap().starts_with("certfile"));

        // Good files again (certificate A): loaded, the failure forgotten.
        pki.write("a.pem", a_pem);
        pki.write("a.key", a_key);
        let second = load(&cfg).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&second.config, &first.config));
        assert!(lock(&LAST_FAILURE).is_none());
        assert!(served(&second).contains("O=Server A"));

        // A reload to TLS settings that do not load is an error (the arbiter then refuses the
        // reload and keeps the configuration in force), never the old acceptor under new
        // settings: cert_reqs 2 without (readable) ca_certs must not let clients in without
        // certificates.
        let mut stricter = cfg.clone();
        stricter.cert_reqs = CertReqs::Required;
        assert!(matches!(load(&stricter), Err(TlsError::NeedsCaCerts(2))));
        stricter.ca_certs = Some(pki.path("missing-ca.pem"));
        assert!(matches!(
            load(&stricter),
            Err(TlsError::Read {
                setting: "ca_certs",
                ..
            })
        ));
        // Workers built again with the settings in force keep their acceptor, even after
        // other settings loaded (a reload that another setting made the arbiter refuse).
        let other = load(&pki.config("b")).unwrap().unwrap();
        assert!(served(&other).contains("O=Server B"));
        pki.write("a.pem", "broken");
        let kept = load(&cfg).unwrap().unwrap();
        assert!(Arc::ptr_eq(&kept.config, &second.config));
        assert!(served(&kept).contains("O=Server A"));

        // TLS off is never an error, whatever was loaded before.
        assert!(load(&Config::default()).unwrap().is_none());
        lock(&LAST_GOOD).clear();
    }
}
