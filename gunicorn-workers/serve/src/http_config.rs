//! The HTTP settings a worker applies (`gunicorn_http::HttpConfig`), from gunicorn's settings.
//! Built once per worker class in the master (a bad value fails before any fork) and once per
//! worker, after `raw_env` was applied so that `SCRIPT_NAME` from `-e` counts.

use gunicorn_core::config::{Protocol as CoreProtocol, ProxyProtocol};
use gunicorn_core::Config;
use gunicorn_http::{
    AllowList, AllowListError, HeaderMapPolicy, HttpConfig, Limits, Protocol, ProxyMode,
};

/// A setting that the HTTP layer cannot use. Each message names the setting and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpConfigError {
    /// `--header-map` is not one of `drop`, `refuse`, `dangerous`.
    #[error("Invalid header_map: {0:?}")]
    HeaderMap(String),
    /// An item of an address list (`forwarded_allow_ips`, `proxy_allow_ips`,
    /// `uwsgi_allow_ips`) is not `*`, an IP address or a network.
    #[error("invalid value for {setting}: {reason}")]
    AllowList {
        /// The setting's name.
        setting: &'static str,
        /// Which item.
        #[source]
        reason: AllowListError,
    },
}

/// The worker's HTTP settings from `cfg`; `SCRIPT_NAME` comes from the process environment.
pub fn http_config(cfg: &Config) -> Result<HttpConfig, HttpConfigError> {
    let upper = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|h| h.trim().to_ascii_uppercase())
            .filter(|h| !h.is_empty())
            .collect()
    };
    let allow = |setting: &'static str, items: &[String]| {
        AllowList::parse(items).map_err(|reason| HttpConfigError::AllowList { setting, reason })
    };
    Ok(HttpConfig {
        limits: Limits::from_settings(
            cfg.limit_request_line,
            cfg.limit_request_fields,
            cfg.limit_request_field_size,
        ),
        permit_unconventional_http_method: cfg.permit_unconventional_http_method,
        permit_unconventional_http_version: cfg.permit_unconventional_http_version,
        casefold_http_method: cfg.casefold_http_method,
        permit_obsolete_folding: cfg.permit_obsolete_folding,
        strip_header_spaces: cfg.strip_header_spaces,
        header_map: HeaderMapPolicy::parse(&cfg.header_map)
            .ok_or_else(|| HttpConfigError::HeaderMap(cfg.header_map.clone()))?,
        forwarder_headers: upper(&cfg.forwarder_headers.0),
        forwarded_allow_ips: allow("forwarded_allow_ips", &cfg.forwarded_allow_ips.0)?,
        secure_scheme_headers: cfg
            .secure_scheme_headers
            .0
            .iter()
            .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.clone()))
            .collect(),
        proxy_protocol: match cfg.proxy_protocol {
            ProxyProtocol::Off => ProxyMode::Off,
            ProxyProtocol::V1 => ProxyMode::V1,
            ProxyProtocol::V2 => ProxyMode::V2,
            ProxyProtocol::Auto => ProxyMode::Auto,
        },
        proxy_allow_ips: allow("proxy_allow_ips", &cfg.proxy_allow_ips.0)?,
        protocol: match cfg.protocol {
            CoreProtocol::Http => Protocol::Http,
            CoreProtocol::Uwsgi => Protocol::Uwsgi,
        },
        uwsgi_allow_ips: allow("uwsgi_allow_ips", &cfg.uwsgi_allow_ips.0)?,
        // gunicorn's `is_ssl`: `wsgi.url_scheme` is https on every listener once TLS is on.
        is_ssl: crate::tls::enabled(cfg),
        script_name: std::env::var("SCRIPT_NAME").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_the_http_layer() {
        let mut cfg = Config::default();
        cfg.set("limit_request_line", gunicorn_core::Value::Int(100))
            .unwrap();
        cfg.set("header_map", gunicorn_core::Value::Str("refuse".into()))
            .unwrap();
        cfg.set(
            "forwarder_headers",
            gunicorn_core::Value::Str(" x-forwarded-for ,".into()),
        )
        .unwrap();
        let http = http_config(&cfg).unwrap();
        assert_eq!(http.limits.request_line, 100);
        assert_eq!(http.header_map, HeaderMapPolicy::Refuse);
        assert_eq!(http.forwarder_headers, vec!["X-FORWARDED-FOR".to_string()]);
        assert_eq!(http.proxy_protocol, ProxyMode::Off);
        assert_eq!(http.protocol, Protocol::Http);
        cfg.set("protocol", gunicorn_core::Value::Str("uwsgi".into()))
            .unwrap();
        cfg.set(
            "uwsgi_allow_ips",
            gunicorn_core::Value::Str("10.0.0.0/8, 192.0.2.7".into()),
        )
        .unwrap();
        let http = http_config(&cfg).unwrap();
        assert_eq!(http.protocol, Protocol::Uwsgi);
        assert!(http.uwsgi_allow_ips.allows_ip("10.9.8.7".parse().unwrap()));
        assert!(http.uwsgi_allow_ips.allows_ip("192.0.2.7".parse().unwrap()));
        assert!(!http.uwsgi_allow_ips.allows_ip("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_their_setting() {
        let mut cfg = Config::default();
        cfg.forwarded_allow_ips.0 = vec!["not-an-ip".into()];
        let err = http_config(&cfg).unwrap_err();
        assert!(
            matches!(
                &err,
                HttpConfigError::AllowList {
                    setting: "forwarded_allow_ips",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("not-an-ip"), "{err}");
        let mut cfg = Config::default();
        cfg.uwsgi_allow_ips.0 = vec!["127.0.0.1".into(), "nginx".into()];
        let err = http_config(&cfg).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for uwsgi_allow_ips: invalid IP address or network: \"nginx\""
        );
    }
}
