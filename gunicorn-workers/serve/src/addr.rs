//! Addresses as core's listeners report them, in the HTTP layer's terms (`REMOTE_ADDR`,
//! `SERVER_NAME`/`SERVER_PORT` of the environ): one conversion for every worker class.

use gunicorn_core::{LocalAddr, PeerAddr};
use gunicorn_http::{ConnInfo, Local, Peer};

/// The client's address.
pub fn peer(addr: PeerAddr) -> Peer {
    match addr {
        PeerAddr::Tcp(a) => Peer::Tcp(a),
        // gunicorn reports REMOTE_ADDR = '' for a unix-socket peer.
        PeerAddr::Unix => Peer::Unix,
    }
}

/// The listener's own address.
pub fn local(addr: LocalAddr) -> Local {
    match addr {
        LocalAddr::Tcp(a) => Local::Tcp(a),
        LocalAddr::Unix(p) => Local::Unix(p.to_string_lossy().into_owned()),
    }
}

/// What the parser and the environ know of a connection.
pub fn conn_info(client: PeerAddr, listener: Local) -> ConnInfo {
    ConnInfo {
        peer: peer(client),
        local: listener,
        tls: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_convert() {
        let a: std::net::SocketAddr = "127.0.0.1:8000".parse().unwrap();
        assert_eq!(peer(PeerAddr::Tcp(a)), Peer::Tcp(a));
        assert_eq!(peer(PeerAddr::Unix), Peer::Unix);
        assert_eq!(local(LocalAddr::Tcp(a)), Local::Tcp(a));
        assert_eq!(
            local(LocalAddr::Unix("/run/app.sock".into())),
            Local::Unix("/run/app.sock".into())
        );
        let info = conn_info(PeerAddr::Unix, Local::Tcp(a));
        assert_eq!((info.peer, info.local), (Peer::Unix, Local::Tcp(a)));
    }
}
