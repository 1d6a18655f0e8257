//! The connected, non-blocking datagram sockets that StatsD ([`crate::statsd`]) and syslog
//! ([`crate::syslog`]) send on: created in the master, inherited by the workers, and never
//! able to hold up a request (a full buffer or an absent listener loses the message).

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;

/// A UDP socket connected to the first address `host:port` resolves to, bound to the wildcard
/// address of that family.
pub(crate) fn udp(host: &str, port: u16) -> io::Result<UdpSocket> {
    let target = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(target)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// An unbound unix datagram socket connected to `path`.
pub(crate) fn unix(path: &str) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}
