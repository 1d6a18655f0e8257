//! The answer to a request that failed before the application ran (a malformed head or body,
//! a limit exceeded): gunicorn's error page and its log line, the same for every worker class.

use gunicorn_core::{log_debug, log_warning};
use gunicorn_http::{error_page, ConnInfo, HttpError, Peer};

use crate::linger;
use crate::transport::Transport;

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

/// Answers a failed request on a blocking transport (sync, echo): the page of
/// [`request_error`], if any, then a graceful close.
pub fn answer(io: &mut dyn Transport, conn: &ConnInfo, err: &HttpError) {
    if let Some(page) = request_error(conn, err) {
        if io.write_all(&page).is_err() {
            return;
        }
    }
    linger::close_graceful(io);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gunicorn_http::Local;

    #[test]
    fn answering_writes_the_page_and_ends_the_output() {
        use std::io::Read;
        let conn = ConnInfo {
            peer: Peer::Unix,
            local: Local::Unix("/run/x.sock".into()),
            tls: None,
        };
        let cases: &[(HttpError, &str)] = &[
            (
                HttpError::InvalidHeader("x".into()),
                "HTTP/1.1 400 Bad Request\r\n",
            ),
            (HttpError::NoMoreData, ""),
        ];
        for (err, want) in cases {
            let (mut ours, mut client) = std::os::unix::net::UnixStream::pair().unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            answer(&mut ours, &conn, err);
            let mut got = String::new();
            client.read_to_string(&mut got).unwrap();
            assert!(
                got.starts_with(want) && (got.is_empty() == want.is_empty()),
                "{got}"
            );
        }
    }

    #[test]
    fn pages_and_peers() {
        let a: std::net::SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let tcp = ConnInfo {
            peer: Peer::Tcp(a),
            local: Local::Tcp(a),
            tls: None,
        };
        let unix = ConnInfo {
            peer: Peer::Unix,
            local: Local::Unix("/run/x.sock".into()),
            tls: None,
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
