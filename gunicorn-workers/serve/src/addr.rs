//! Addresses as core's listeners report them, in the HTTP layer's terms (`REMOTE_ADDR`,
//! `SERVER_NAME`/`SERVER_PORT` of the environ): one conversion for every worker class.

use std::os::fd::RawFd;

use gunicorn_core::{LocalAddr, PeerAddr};
use gunicorn_http::{ConnInfo, Local, Peer};
use nix::sys::socket::{getpeername, SockaddrStorage};

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

/// The peer of a connected socket that an event loop owns (the greenlet hub's, asyncio's), as
/// the environ reports it: unix-domain peers, a socket whose peer is already gone, and a
/// descriptor that is no socket at all have no address.
pub fn peer_of_socket(fd: RawFd) -> Peer {
    let Ok(addr) = getpeername::<SockaddrStorage>(fd) else {
        return Peer::Unix;
    };
    if let Some(v4) = addr.as_sockaddr_in() {
        return Peer::Tcp(std::net::SocketAddr::V4((*v4).into()));
    }
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Peer::Tcp(std::net::SocketAddr::V6((*v6).into()));
    }
    Peer::Unix
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn peers_as_the_environ_reports_them() {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let v4_client = TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let (v4_server, _) = v4.accept().unwrap();
        let v6 = TcpListener::bind("[::1]:0").ok();
        let v6_pair = v6.as_ref().map(|l| {
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            (c, s)
        });
        let (unix_a, _unix_b) = UnixStream::pair().unwrap();
        let mut cases: Vec<(i32, Peer)> = vec![
            (
                v4_server.as_raw_fd(),
                Peer::Tcp(v4_client.local_addr().unwrap()),
            ),
            (unix_a.as_raw_fd(), Peer::Unix),
            // Not a socket at all: reported as a unix peer (no address), never a panic.
            (-1, Peer::Unix),
        ];
        if let Some((c, s)) = &v6_pair {
            cases.push((s.as_raw_fd(), Peer::Tcp(c.local_addr().unwrap())));
        }
        for (fd, want) in cases {
            let got = peer_of_socket(fd);
            let same = match (&got, &want) {
                (Peer::Tcp(a), Peer::Tcp(b)) => a == b,
                (Peer::Unix, Peer::Unix) => true,
                _ => false,
            };
            assert!(same, "fd {fd}: {got:?} != {want:?}");
        }
    }

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
