//! The answer to a request that failed before the application ran (a malformed head or body,
//! a limit exceeded): gunicorn's error page and its log line, the same for every worker class.

use gunicorn_core::{log_debug, log_warning};
use gunicorn_http::{error_page, ConnInfo, HttpError, Peer};

/// The client's IP as gunicorn's log lines show it (empty for a unix-socket peer).
pub fn peer_ip(conn: &ConnInfo) -> String {
    match &conn.peer {
        Peer::Tcp(a) => a.ip().to_string(),
        Peer::Unix => String::new(),
    }
}

/// Logs gunicorn's `Invalid request from ip=...: ...` warning (a premature end of input only at
/// debug, as gunicorn ignores it) and returns the error page to write, or None when the peer
/// gets no response (it closed mid-request).
pub fn request_error(conn: &ConnInfo, err: &HttpError) -> Option<Vec<u8>> {
    if matches!(err, HttpError::NoMoreData) {
        log_debug!(
            "Ignoring premature end of request from ip={}",
            peer_ip(conn)
        );
    } else {
        log_warning!("Invalid request from ip={}: {}", peer_ip(conn), err);
    }
    err.sends_response()
        .then(|| error_page(err.status(), err.reason(), &err.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gunicorn_http::Local;

    #[test]
    fn pages_and_peers() {
        let a: std::net::SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let tcp = ConnInfo {
            peer: Peer::Tcp(a),
            local: Local::Tcp(a),
        };
        let unix = ConnInfo {
            peer: Peer::Unix,
            local: Local::Unix("/run/x.sock".into()),
        };
        assert_eq!(peer_ip(&tcp), "10.1.2.3");
        assert_eq!(peer_ip(&unix), "");
        assert_eq!(request_error(&tcp, &HttpError::NoMoreData), None);
        let page = request_error(&tcp, &HttpError::InvalidHeader("x".into())).unwrap();
        assert!(
            page.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
            "{page:?}"
        );
    }
}
