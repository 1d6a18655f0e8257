//! The fixed names of the WSGI environ's CGI keys (PEP 3333, reference §6) and of the `HTTP_*`
//! keys of common request headers, as an enum: a worker turning them into its language's
//! strings makes each once and finds it by [`CgiKey::index`], with no hashing per request.

macro_rules! cgi_keys {
    ($($variant:ident => $name:literal,)*) => {
        /// A fixed environ key (see the module's doc).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CgiKey {
            $($variant,)*
        }

        impl CgiKey {
            /// Every key, in declaration order: `ALL[k.index()] == k`.
            pub const ALL: &'static [CgiKey] = &[$(CgiKey::$variant,)*];

            /// The key as it appears in the environ.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(CgiKey::$variant => $name,)*
                }
            }
        }
    };
}

cgi_keys! {
    ServerSoftware => "SERVER_SOFTWARE",
    RequestMethod => "REQUEST_METHOD",
    RawUri => "RAW_URI",
    QueryString => "QUERY_STRING",
    ServerProtocol => "SERVER_PROTOCOL",
    UrlScheme => "wsgi.url_scheme",
    ContentType => "CONTENT_TYPE",
    ContentLength => "CONTENT_LENGTH",
    RemoteAddr => "REMOTE_ADDR",
    RemotePort => "REMOTE_PORT",
    ProxyProtocol => "PROXY_PROTOCOL",
    ProxyAddr => "PROXY_ADDR",
    ProxyPort => "PROXY_PORT",
    ServerName => "SERVER_NAME",
    ServerPort => "SERVER_PORT",
    ScriptName => "SCRIPT_NAME",
    PathInfo => "PATH_INFO",
    Https => "HTTPS",
    SslProtocol => "SSL_PROTOCOL",
    SslCipher => "SSL_CIPHER",
    SslClientVerify => "SSL_CLIENT_VERIFY",
    SslClientCert => "SSL_CLIENT_CERT",
    SslClientSDn => "SSL_CLIENT_S_DN",
    SslClientIDn => "SSL_CLIENT_I_DN",
    HttpHost => "HTTP_HOST",
    HttpUserAgent => "HTTP_USER_AGENT",
    HttpAccept => "HTTP_ACCEPT",
    HttpAcceptLanguage => "HTTP_ACCEPT_LANGUAGE",
    HttpAcceptEncoding => "HTTP_ACCEPT_ENCODING",
    HttpConnection => "HTTP_CONNECTION",
    HttpCookie => "HTTP_COOKIE",
    HttpReferer => "HTTP_REFERER",
    HttpOrigin => "HTTP_ORIGIN",
    HttpAuthorization => "HTTP_AUTHORIZATION",
    HttpCacheControl => "HTTP_CACHE_CONTROL",
    HttpPragma => "HTTP_PRAGMA",
    HttpDnt => "HTTP_DNT",
    HttpTe => "HTTP_TE",
    HttpPriority => "HTTP_PRIORITY",
    HttpUpgradeInsecureRequests => "HTTP_UPGRADE_INSECURE_REQUESTS",
    HttpSecFetchDest => "HTTP_SEC_FETCH_DEST",
    HttpSecFetchMode => "HTTP_SEC_FETCH_MODE",
    HttpSecFetchSite => "HTTP_SEC_FETCH_SITE",
    HttpSecFetchUser => "HTTP_SEC_FETCH_USER",
    HttpSecChUa => "HTTP_SEC_CH_UA",
    HttpSecChUaMobile => "HTTP_SEC_CH_UA_MOBILE",
    HttpSecChUaPlatform => "HTTP_SEC_CH_UA_PLATFORM",
    HttpIfNoneMatch => "HTTP_IF_NONE_MATCH",
    HttpIfModifiedSince => "HTTP_IF_MODIFIED_SINCE",
    HttpXForwardedFor => "HTTP_X_FORWARDED_FOR",
    HttpXForwardedProto => "HTTP_X_FORWARDED_PROTO",
    HttpXForwardedHost => "HTTP_X_FORWARDED_HOST",
    HttpXRealIp => "HTTP_X_REAL_IP",
    HttpXRequestId => "HTTP_X_REQUEST_ID",
    HttpExpect => "HTTP_EXPECT",
    HttpTransferEncoding => "HTTP_TRANSFER_ENCODING",
}

impl CgiKey {
    /// The key's position in [`CgiKey::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The `HTTP_*` key of a common header, by its UPPER-CASE name (no allocation); None for
    /// other names, whose key the caller builds.
    pub fn of_header(upper_name: &str) -> Option<CgiKey> {
        use CgiKey::*;
        Some(match upper_name {
            "HOST" => HttpHost,
            "USER-AGENT" => HttpUserAgent,
            "ACCEPT" => HttpAccept,
            "ACCEPT-LANGUAGE" => HttpAcceptLanguage,
            "ACCEPT-ENCODING" => HttpAcceptEncoding,
            "CONNECTION" => HttpConnection,
            "COOKIE" => HttpCookie,
            "REFERER" => HttpReferer,
            "ORIGIN" => HttpOrigin,
            "AUTHORIZATION" => HttpAuthorization,
            "CACHE-CONTROL" => HttpCacheControl,
            "PRAGMA" => HttpPragma,
            "DNT" => HttpDnt,
            "TE" => HttpTe,
            "PRIORITY" => HttpPriority,
            "UPGRADE-INSECURE-REQUESTS" => HttpUpgradeInsecureRequests,
            "SEC-FETCH-DEST" => HttpSecFetchDest,
            "SEC-FETCH-MODE" => HttpSecFetchMode,
            "SEC-FETCH-SITE" => HttpSecFetchSite,
            "SEC-FETCH-USER" => HttpSecFetchUser,
            "SEC-CH-UA" => HttpSecChUa,
            "SEC-CH-UA-MOBILE" => HttpSecChUaMobile,
            "SEC-CH-UA-PLATFORM" => HttpSecChUaPlatform,
            "IF-NONE-MATCH" => HttpIfNoneMatch,
            "IF-MODIFIED-SINCE" => HttpIfModifiedSince,
            "X-FORWARDED-FOR" => HttpXForwardedFor,
            "X-FORWARDED-PROTO" => HttpXForwardedProto,
            "X-FORWARDED-HOST" => HttpXForwardedHost,
            "X-REAL-IP" => HttpXRealIp,
            "X-REQUEST-ID" => HttpXRequestId,
            "EXPECT" => HttpExpect,
            "TRANSFER-ENCODING" => HttpTransferEncoding,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_indexed_by_index_and_names_are_unique() {
        for (i, k) in CgiKey::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k:?}");
        }
        let mut names: Vec<&str> = CgiKey::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CgiKey::ALL.len());
    }

    #[test]
    fn header_keys_are_http_plus_the_name_with_underscores() {
        let cases = [
            ("HOST", Some("HTTP_HOST")),
            ("USER-AGENT", Some("HTTP_USER_AGENT")),
            (
                "UPGRADE-INSECURE-REQUESTS",
                Some("HTTP_UPGRADE_INSECURE_REQUESTS"),
            ),
            ("X-FORWARDED-FOR", Some("HTTP_X_FORWARDED_FOR")),
            ("TRANSFER-ENCODING", Some("HTTP_TRANSFER_ENCODING")),
            ("X-CUSTOM", None),
            ("host", None),
            ("CONTENT-TYPE", None),
        ];
        for (name, want) in cases {
            assert_eq!(CgiKey::of_header(name).map(CgiKey::as_str), want, "{name}");
        }
        // Every HTTP_ key is reachable from its header name.
        for k in CgiKey::ALL {
            if let Some(rest) = k.as_str().strip_prefix("HTTP_") {
                let name = rest.replace('_', "-");
                assert_eq!(CgiKey::of_header(&name), Some(*k), "{name}");
            }
        }
    }
}
