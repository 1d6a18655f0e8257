//! The HTTP/2 client connection preface (RFC 9113 §3.4), by which a client with prior
//! knowledge starts cleartext HTTP/2 (h2c).

/// The 24 octets every HTTP/2 connection opens with.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say about the preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// The whole preface is there.
    Complete,
    /// What came so far is a beginning of the preface: wait for more.
    Partial,
    /// Not HTTP/2 with prior knowledge.
    Absent,
}

/// Looks for the preface at the start of `buf`.
pub fn detect(buf: &[u8]) -> Preface {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Preface::Absent
    } else if n == PREFACE.len() {
        Preface::Complete
    } else {
        Preface::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_preface() {
        let cases: &[(&[u8], Preface)] = &[
            (b"", Preface::Partial),
            (b"PRI * HTTP/2", Preface::Partial),
            (PREFACE, Preface::Complete),
            (
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04",
                Preface::Complete,
            ),
            (b"GET / HTTP/1.1\r\n", Preface::Absent),
            (b"PRI * HTTP/1.1\r\n", Preface::Absent),
            (b"P", Preface::Partial),
        ];
        for (buf, want) in cases {
            assert_eq!(detect(buf), *want, "{:?}", String::from_utf8_lossy(buf));
        }
    }
}
