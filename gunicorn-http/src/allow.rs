//! Allow lists for `--forwarded-allow-ips` and `--proxy-allow-from`: IPs, CIDR networks, `*`.

use crate::conn::Peer;
use std::net::IpAddr;

/// One parsed entry: a network (`addr/prefix`; a bare IP is a full-length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// A parsed allow list. Unix-socket peers are always allowed (gunicorn trusts them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    any: bool,
    nets: Vec<Net>,
}

/// An item of an allow list that is neither `*`, an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP address or network: {0:?}")]
pub struct AllowListError(pub String);

impl AllowList {
    /// Parses each item as `*`, an IP address or a CIDR network (`10.0.0.0/8`, `fd00::/8`).
    /// Empty items are skipped; anything else is an error naming the item.
    pub fn parse(items: &[String]) -> Result<AllowList, AllowListError> {
        let mut list = AllowList::default();
        for raw in items {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            if item == "*" {
                list.any = true;
                continue;
            }
            list.nets
                .push(parse_net(item).ok_or_else(|| AllowListError(item.to_string()))?);
        }
        Ok(list)
    }

    /// A list that allows every peer (`*`).
    pub fn any() -> AllowList {
        AllowList {
            any: true,
            nets: Vec::new(),
        }
    }

    /// True for `*`, for Unix peers, and for a TCP peer inside one of the networks. An
    /// IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, dual-stack listeners) is matched as IPv4.
    pub fn allows(&self, peer: &Peer) -> bool {
        match peer {
            Peer::Unix => true,
            Peer::Tcp(addr) => self.allows_ip(addr.ip()),
        }
    }

    /// The IP form of [`AllowList::allows`].
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let ip = canonical(ip);
        self.nets.iter().any(|n| contains(n, ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn parse_net(item: &str) -> Option<Net> {
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok()?
        }
        Some(_) => return None,
    };
    if prefix > max {
        return None;
    }
    Some(Net {
        addr: canonical(addr),
        prefix,
    })
}

fn contains(net: &Net, ip: IpAddr) -> bool {
    match (net.addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if net.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(net.prefix))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if net.prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(net.prefix))
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> AllowList {
        AllowList::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn tcp(ip: &str) -> Peer {
        Peer::Tcp(std::net::SocketAddr::new(ip.parse().unwrap(), 1234))
    }

    #[test]
    fn allow_table() {
        // (list, peer ip, allowed)
        let cases: &[(&[&str], &str, bool)] = &[
            (&["127.0.0.1", "::1"], "127.0.0.1", true),
            (&["127.0.0.1", "::1"], "::1", true),
            (&["127.0.0.1", "::1"], "127.0.0.2", false),
            (&["127.0.0.1"], "::ffff:127.0.0.1", true),
            (&["10.0.0.0/8"], "10.255.1.2", true),
            (&["10.0.0.0/8"], "11.0.0.1", false),
            (&["0.0.0.0/0"], "8.8.8.8", true),
            (&["0.0.0.0/0"], "2001:db8::1", false),
            (&["fd00::/8"], "fd12::1", true),
            (&["fd00::/8"], "fe80::1", false),
            (&["192.168.1.0/24"], "192.168.1.255", true),
            (&["192.168.1.0/24"], "192.168.2.0", false),
            (&["*"], "203.0.113.9", true),
            (&[], "127.0.0.1", false),
            (&["", " 127.0.0.1 "], "127.0.0.1", true),
        ];
        for (items, ip, want) in cases {
            assert_eq!(list(items).allows(&tcp(ip)), *want, "{items:?} {ip}");
        }
        assert!(list(&[]).allows(&Peer::Unix));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/x",
            "1.2.3",
            "01.2.3.4",
        ] {
            assert!(AllowList::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
