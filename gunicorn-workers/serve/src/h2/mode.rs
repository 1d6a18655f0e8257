//! Whether and how a worker serves HTTP/2, from `http_protocols`, `http2_cleartext`, TLS and
//! `--protocol`, as gunicorn 27 decides it.

use gunicorn_core::config::{H2Cleartext, Protocol};
use gunicorn_core::Config;

/// How a worker serves HTTP/2, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Mode {
    /// HTTP/1 only.
    Off,
    /// By ALPN over TLS.
    Alpn,
    /// Cleartext (h2c) from trusted peers (`--forwarded-allow-ips`).
    Cleartext {
        /// Connections opening with the preface are HTTP/2.
        prior_knowledge: bool,
        /// Requests with `Upgrade: h2c` switch to HTTP/2.
        upgrade: bool,
    },
}

impl H2Mode {
    /// HTTP/2 by ALPN with TLS (where `http2_cleartext` is ignored, as gunicorn 27 ignores it),
    /// else h2c as `http2_cleartext` says. gunicorn 27 offers HTTP/2 only to HTTP peers: behind
    /// `--protocol uwsgi` the proxy speaks uWSGI packets.
    pub fn from_config(cfg: &Config) -> H2Mode {
        if !cfg.http_protocols.h2() || cfg.protocol != Protocol::Http {
            return H2Mode::Off;
        }
        if crate::tls::enabled(cfg) {
            return H2Mode::Alpn;
        }
        match cfg.http2_cleartext {
            H2Cleartext::Off => H2Mode::Off,
            mode => H2Mode::Cleartext {
                prior_knowledge: mode.prior_knowledge(),
                upgrade: mode.upgrade(),
            },
        }
    }

    /// A trusted plain connection's first bytes are looked at for the preface.
    pub fn prior_knowledge(self) -> bool {
        matches!(
            self,
            H2Mode::Cleartext {
                prior_knowledge: true,
                ..
            }
        )
    }

    /// gunicorn 27: with `prior-knowledge` alone a trusted peer must speak HTTP/2 (anything
    /// else gets 400); with `both` an HTTP/1 request is how an upgrade begins.
    pub fn preface_required(self) -> bool {
        self == H2Mode::Cleartext {
            prior_knowledge: true,
            upgrade: false,
        }
    }

    /// Requests with `Upgrade: h2c` from trusted peers switch to HTTP/2.
    pub fn upgrade(self) -> bool {
        matches!(self, H2Mode::Cleartext { upgrade: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_the_settings() {
        use gunicorn_core::config::{HttpProtocol, HttpProtocols};
        let off = H2Mode::Off;
        let pk = H2Mode::Cleartext {
            prior_knowledge: true,
            upgrade: false,
        };
        let up = H2Mode::Cleartext {
            prior_knowledge: false,
            upgrade: true,
        };
        let both = H2Mode::Cleartext {
            prior_knowledge: true,
            upgrade: true,
        };
        let h1 = HttpProtocols(vec![HttpProtocol::H1]);
        let h2 = HttpProtocols(vec![HttpProtocol::H2, HttpProtocol::H1]);
        // (protocols, cleartext, uwsgi, certfile) -> mode
        let cases = [
            (&h1, H2Cleartext::Off, false, false, off),
            (&h1, H2Cleartext::Both, false, false, off),
            (&h2, H2Cleartext::Off, false, false, off),
            (&h2, H2Cleartext::PriorKnowledge, false, false, pk),
            (&h2, H2Cleartext::Upgrade, false, false, up),
            (&h2, H2Cleartext::Both, false, false, both),
            (&h2, H2Cleartext::Both, true, false, off),
            (&h2, H2Cleartext::Both, false, true, H2Mode::Alpn),
            (&h2, H2Cleartext::Off, false, true, H2Mode::Alpn),
            (&h1, H2Cleartext::Off, false, true, off),
        ];
        for (protocols, cleartext, uwsgi, tls, want) in cases {
            let mut cfg = Config {
                http_protocols: protocols.clone(),
                http2_cleartext: cleartext,
                ..Config::default()
            };
            if uwsgi {
                cfg.protocol = Protocol::Uwsgi;
            }
            if tls {
                cfg.certfile = Some("c.pem".into());
            }
            let got = H2Mode::from_config(&cfg);
            assert_eq!(got, want, "{:?} {cleartext:?} {uwsgi} {tls}", protocols.0);
        }
        assert!(pk.prior_knowledge() && pk.preface_required() && !pk.upgrade());
        assert!(both.prior_knowledge() && !both.preface_required() && both.upgrade());
        assert!(!up.prior_knowledge() && !up.preface_required() && up.upgrade());
        assert!(!off.prior_knowledge() && !off.upgrade() && !H2Mode::Alpn.upgrade());
    }
}
