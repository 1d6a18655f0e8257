//! The TLS acceptor of the TLS fuzz targets: the throwaway certificate in fuzz/tls/, loaded
//! once per process.

use std::sync::OnceLock;

use gunicorn_core::Config;
use gunicorn_serve::tls::Acceptor;

pub fn acceptor() -> &'static Acceptor {
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
