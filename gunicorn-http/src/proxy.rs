//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by load balancers in front of
//! the server. Looked for only at the start of a connection (gunicorn: request #1 only).

use crate::config::ProxyMode;
use crate::conn::Peer;
use crate::error::HttpError;
use crate::AllowList;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\x00\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line the spec allows, CRLF included (haproxy proxy-protocol.txt §2.1).
const V1_MAX_LINE: usize = 107;

/// What a PROXY header told us about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    /// `TCP4`, `TCP6`, `LOCAL` (v2 health checks) or `UNSPEC` (v2 with no address).
    pub protocol: &'static str,
    /// The original client (source) address; `None` for LOCAL/UNSPEC.
    pub client: Option<SocketAddr>,
    /// The address the client connected to on the proxy (destination); `None` for LOCAL/UNSPEC.
    pub proxy: Option<SocketAddr>,
}

/// The outcome of looking at the first bytes of a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProxyStep {
    /// Too few bytes to decide or to finish the header.
    NeedMore,
    /// No PROXY header: the bytes are a normal request (a header is optional, gunicorn).
    Absent,
    /// A header was parsed; it used `usize` bytes.
    Parsed(ProxyInfo, usize),
}

/// Looks for a PROXY header at the start of `buf` under `mode`.
pub(crate) fn detect(
    buf: &[u8],
    mode: ProxyMode,
    peer: &Peer,
    allow: &AllowList,
) -> Result<ProxyStep, HttpError> {
    let v1 = mode.accepts_v1() && prefix_matches(buf, V1_PREFIX);
    let v2 = mode.accepts_v2() && prefix_matches(buf, V2_SIGNATURE);
    if !v1 && !v2 {
        return Ok(ProxyStep::Absent);
    }
    let full = if v1 {
        V1_PREFIX.len()
    } else {
        V2_SIGNATURE.len()
    };
    if buf.len() < full {
        return Ok(ProxyStep::NeedMore);
    }
    // gunicorn checks the peer before reading the header itself.
    if !allow.allows(peer) {
        let host = match peer {
            Peer::Tcp(a) => a.ip().to_string(),
            Peer::Unix => String::new(),
        };
        return Err(HttpError::ForbiddenProxyRequest(host));
    }
    if v1 {
        parse_v1(buf)
    } else {
        parse_v2(buf)
    }
}

/// True when `buf` is a (possibly partial) prefix of `sig` or starts with all of it.
fn prefix_matches(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

/// `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n`: exactly six single-space fields.
fn parse_v1(buf: &[u8]) -> Result<ProxyStep, HttpError> {
    let Some(end) = crate::syntax::find_crlf(buf, 0) else {
        if buf.len() >= V1_MAX_LINE {
            return Err(HttpError::InvalidProxyLine(crate::syntax::latin1_string(
                &buf[..V1_MAX_LINE],
            )));
        }
        return Ok(ProxyStep::NeedMore);
    };
    let line = &buf[..end];
    let text = crate::syntax::latin1_string(line);
    let bad = || HttpError::InvalidProxyLine(text.clone());
    if end + 2 > V1_MAX_LINE || !line.is_ascii() {
        return Err(bad());
    }
    let parts: Vec<&str> = text.split(' ').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let (src, dst): (IpAddr, IpAddr) = match parts[1] {
        "TCP4" => (
            IpAddr::V4(parts[2].parse::<Ipv4Addr>().map_err(|_| bad())?),
            IpAddr::V4(parts[3].parse::<Ipv4Addr>().map_err(|_| bad())?),
        ),
        "TCP6" => (
            IpAddr::V6(parts[2].parse::<Ipv6Addr>().map_err(|_| bad())?),
            IpAddr::V6(parts[3].parse::<Ipv6Addr>().map_err(|_| bad())?),
        ),
        // UNKNOWN is refused like gunicorn does.
        _ => return Err(bad()),
    };
    let sport = parse_port(parts[4]).ok_or_else(bad)?;
    let dport = parse_port(parts[5]).ok_or_else(bad)?;
    let info = ProxyInfo {
        protocol: if src.is_ipv4() { "TCP4" } else { "TCP6" },
        client: Some(SocketAddr::new(src, sport)),
        proxy: Some(SocketAddr::new(dst, dport)),
    };
    Ok(ProxyStep::Parsed(info, end + 2))
}

/// Decimal 0..=65535, digits only (no sign, no spaces).
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The binary header: signature, ver/cmd, family/transport, 16-bit length, addresses, TLVs.
fn parse_v2(buf: &[u8]) -> Result<ProxyStep, HttpError> {
    if buf.len() < 16 {
        return Ok(ProxyStep::NeedMore);
    }
    let bad = |why: &str| HttpError::InvalidProxyHeader(why.to_string());
    let ver_cmd = buf[12];
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Err(bad("unsupported version"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(bad("unsupported command")),
    };
    let family = fam >> 4;
    let transport = fam & 0x0f;
    if family > 3 {
        return Err(bad("unsupported address family"));
    }
    if buf.len() < 16 + len {
        return Ok(ProxyStep::NeedMore);
    }
    let body = &buf[16..16 + len];
    let used = 16 + len;
    if local {
        // LOCAL: the proxy talks for itself (health checks); no address to use.
        return Ok(ProxyStep::Parsed(
            ProxyInfo {
                protocol: "LOCAL",
                client: None,
                proxy: None,
            },
            used,
        ));
    }
    if family == 0 {
        return Ok(ProxyStep::Parsed(
            ProxyInfo {
                protocol: "UNSPEC",
                client: None,
                proxy: None,
            },
            used,
        ));
    }
    if transport != 1 {
        return Err(bad("only STREAM transport is supported"));
    }
    let info = match family {
        1 => {
            if body.len() < 12 {
                return Err(bad("short INET address block"));
            }
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            let sport = u16::from_be_bytes([body[8], body[9]]);
            let dport = u16::from_be_bytes([body[10], body[11]]);
            ProxyInfo {
                protocol: "TCP4",
                client: Some(SocketAddr::new(IpAddr::V4(src), sport)),
                proxy: Some(SocketAddr::new(IpAddr::V4(dst), dport)),
            }
        }
        2 => {
            if body.len() < 36 {
                return Err(bad("short INET6 address block"));
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&body[0..16]);
            d.copy_from_slice(&body[16..32]);
            let sport = u16::from_be_bytes([body[32], body[33]]);
            let dport = u16::from_be_bytes([body[34], body[35]]);
            ProxyInfo {
                protocol: "TCP6",
                client: Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(s)), sport)),
                proxy: Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(d)), dport)),
            }
        }
        _ => return Err(bad("UNIX addresses are not supported")),
    };
    // TLVs after the address block are skipped.
    Ok(ProxyStep::Parsed(info, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(buf: &[u8], mode: ProxyMode) -> Result<ProxyStep, HttpError> {
        detect(buf, mode, &Peer::Unix, &AllowList::default())
    }

    fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(ver_cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn v1_table() {
        let ok: &[(&[u8], &str, &str, &str)] = &[
            (
                b"PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\nGET",
                "TCP4",
                "192.168.0.1:56324",
                "10.0.0.1:443",
            ),
            (
                b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n",
                "TCP6",
                "[2001:db8::1]:1",
                "[::1]:65535",
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n",
                "TCP4",
                "1.2.3.4:0",
                "5.6.7.8:0",
            ),
        ];
        for (buf, proto, c, p) in ok {
            match run(buf, ProxyMode::Auto).unwrap() {
                ProxyStep::Parsed(info, n) => {
                    assert_eq!(info.protocol, *proto);
                    assert_eq!(info.client.unwrap().to_string(), *c);
                    assert_eq!(info.proxy.unwrap().to_string(), *p);
                    assert_eq!(&buf[n - 2..n], b"\r\n");
                }
                other => panic!("{other:?}"),
            }
        }
        let bad: &[&[u8]] = &[
            b"PROXY UNKNOWN\r\n",
            b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        ];
        for buf in bad {
            assert!(
                matches!(run(buf, ProxyMode::V1), Err(HttpError::InvalidProxyLine(_))),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(
            run(&long, ProxyMode::V1),
            Err(HttpError::InvalidProxyLine(_))
        ));
    }

    #[test]
    fn detection_by_mode() {
        let line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
        let bin = v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
        assert!(matches!(
            run(line, ProxyMode::V1),
            Ok(ProxyStep::Parsed(..))
        ));
        assert_eq!(run(line, ProxyMode::V2), Ok(ProxyStep::Absent));
        assert_eq!(run(line, ProxyMode::Off), Ok(ProxyStep::Absent));
        assert!(matches!(
            run(&bin, ProxyMode::V2),
            Ok(ProxyStep::Parsed(..))
        ));
        assert_eq!(run(&bin, ProxyMode::V1), Ok(ProxyStep::Absent));
        assert_eq!(
            run(b"GET / HTTP/1.1\r\n", ProxyMode::Auto),
            Ok(ProxyStep::Absent)
        );
        assert_eq!(run(b"PRO", ProxyMode::Auto), Ok(ProxyStep::NeedMore));
        assert_eq!(run(b"\r\n\r\n", ProxyMode::Auto), Ok(ProxyStep::NeedMore));
        assert_eq!(run(&bin[..20], ProxyMode::Auto), Ok(ProxyStep::NeedMore));
        let peer = Peer::Tcp("10.1.1.1:5".parse().unwrap());
        let allow = AllowList::parse(&["127.0.0.1".into()]).unwrap();
        assert!(matches!(
            detect(line, ProxyMode::Auto, &peer, &allow),
            Err(HttpError::ForbiddenProxyRequest(_))
        ));
        // No header from an untrusted peer is fine.
        assert_eq!(
            detect(b"GET / HTTP/1.1\r\n", ProxyMode::Auto, &peer, &allow),
            Ok(ProxyStep::Absent)
        );
    }

    #[test]
    fn v2_table() {
        let mut v6 = vec![0u8; 36];
        v6[15] = 1;
        v6[31] = 2;
        v6[33] = 80;
        v6[35] = 81;
        let cases: Vec<(Vec<u8>, Result<(&str, Option<&str>), ()>)> = vec![
            (
                v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 1, 187]),
                Ok(("TCP4", Some("1.2.3.4:80"))),
            ),
            (
                v2(
                    0x21,
                    0x11,
                    &[1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 1, 187, 0xEE, 0, 1, 9],
                ),
                Ok(("TCP4", Some("1.2.3.4:80"))),
            ),
            (v2(0x21, 0x21, &v6), Ok(("TCP6", Some("[::1]:80")))),
            (v2(0x20, 0x00, &[]), Ok(("LOCAL", None))),
            (v2(0x20, 0x11, &[1; 12]), Ok(("LOCAL", None))),
            (v2(0x21, 0x00, &[]), Ok(("UNSPEC", None))),
            (v2(0x11, 0x11, &[1; 12]), Err(())),
            (v2(0x31, 0x11, &[1; 12]), Err(())),
            (v2(0x01, 0x11, &[1; 12]), Err(())),
            (v2(0x21, 0x11, &[]), Err(())),
            (v2(0x22, 0x11, &[1; 12]), Err(())),
            (v2(0x21, 0x12, &[1; 12]), Err(())),
            (v2(0x21, 0x11, &[1; 11]), Err(())),
            (v2(0x21, 0x21, &[1; 35]), Err(())),
            (v2(0x21, 0x31, &[1; 216]), Err(())),
            (v2(0x21, 0x41, &[1; 12]), Err(())),
        ];
        for (buf, want) in cases {
            let got = run(&buf, ProxyMode::V2);
            match (got, want) {
                (Ok(ProxyStep::Parsed(info, n)), Ok((proto, client))) => {
                    assert_eq!(n, buf.len());
                    assert_eq!(info.protocol, proto);
                    assert_eq!(info.client.map(|c| c.to_string()).as_deref(), client);
                }
                // Bad input from the peer: 400 and close (gunicorn 27 answers 500 here only
                // because its handle_error does not list the exception).
                (Err(e @ HttpError::InvalidProxyHeader(_)), Err(())) => {
                    assert_eq!((e.status(), e.reason()), (400, "Bad Request"), "{buf:?}");
                    assert!(e.sends_response());
                }
                (got, want) => panic!("{buf:?}: {got:?} vs {want:?}"),
            }
        }
    }
}
