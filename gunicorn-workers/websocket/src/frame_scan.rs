//! Finds where the peer's frames end, from their headers alone (RFC 6455 §5.2), so that the
//! frame codec is only ever given whole frames.
//!
//! Why: tungstenite reserves a frame's announced length as soon as it reads the header. With no
//! size limit a header announcing 2^62 bytes would abort the process, and with one every
//! connection could make us reserve the limit by sending 14 bytes. Holding an incomplete frame
//! here instead costs only the bytes that really arrived. The header checks that need no
//! payload are done here too, so a bad frame fails at once rather than after its payload:
//! the mask (§5.1), the length in the fewest bytes with the top bit clear (§5.2, as gunicorn 27
//! checks), a control frame over 125 bytes (§5.5), and the size limit (§7.4.1 1009).

use crate::close_code;
use crate::error::WsError;

/// The longest header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Where the scan is within the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the header: the bytes seen so far.
    Header { buf: [u8; MAX_HEADER], have: usize },
    /// Skipping the payload: bytes still to come.
    Payload { left: u64 },
}

#[derive(Debug)]
pub(crate) struct FrameScan {
    stage: Stage,
    /// The largest payload accepted; `None` for no limit.
    limit: Option<u64>,
}

/// What one call found in its input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// The input up to here completes whole frames (with what earlier calls held back).
    pub(crate) whole: usize,
    /// A header that fails the connection, found after `whole`.
    pub(crate) error: Option<WsError>,
}

impl FrameScan {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        FrameScan {
            stage: Stage::Header {
                buf: [0; MAX_HEADER],
                have: 0,
            },
            limit: limit.map(|l| l as u64),
        }
    }

    /// Walks `input`, which continues the bytes of earlier calls. After an error the scan is
    /// over: the connection fails.
    pub(crate) fn scan(&mut self, input: &[u8]) -> Scanned {
        let mut at = 0;
        let mut whole = 0;
        while at < input.len() {
            match &mut self.stage {
                Stage::Payload { left } => {
                    let room = input.len() - at;
                    let n = usize::try_from(*left).map_or(room, |l| l.min(room));
                    at += n;
                    *left -= n as u64;
                    if *left == 0 {
                        whole = at;
                        self.stage = empty_header();
                    }
                }
                Stage::Header { buf, have } => {
                    buf[*have] = input[at];
                    *have += 1;
                    at += 1;
                    match header(&buf[..*have], self.limit) {
                        Err(error) => {
                            return Scanned {
                                whole,
                                error: Some(error),
                            }
                        }
                        Ok(None) => {}
                        Ok(Some(0)) => {
                            whole = at;
                            self.stage = empty_header();
                        }
                        Ok(Some(len)) => self.stage = Stage::Payload { left: len },
                    }
                }
            }
        }
        Scanned { whole, error: None }
    }
}

fn empty_header() -> Stage {
    Stage::Header {
        buf: [0; MAX_HEADER],
        have: 0,
    }
}

/// The payload length once `head` is a whole header, `None` while it needs more bytes, or
/// the fault as soon as the bytes so far show one.
fn header(head: &[u8], limit: Option<u64>) -> Result<Option<u64>, WsError> {
    let [b0, b1, ..] = *head else {
        return Ok(None);
    };
    let control = b0 & 0x08 != 0;
    if b1 & 0x80 == 0 {
        return Err(protocol("frame from the client not masked (RFC 6455 §5.1)"));
    }
    let (len, ext) = match b1 & 0x7f {
        126 => {
            let Some(ext) = head.get(2..4) else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes([ext[0], ext[1]]));
            if len < 126 {
                return Err(protocol("length not in the fewest bytes (RFC 6455 §5.2)"));
            }
            (len, 2)
        }
        127 => {
            let Some(ext) = head.get(2..10) else {
                return Ok(None);
            };
            let mut bytes = [0; 8];
            bytes.copy_from_slice(ext);
            let len = u64::from_be_bytes(bytes);
            if len >> 63 != 0 {
                return Err(protocol("length with its top bit set (RFC 6455 §5.2)"));
            }
            if len <= 0xffff {
                return Err(protocol("length not in the fewest bytes (RFC 6455 §5.2)"));
            }
            (len, 8)
        }
        n => (u64::from(n), 0),
    };
    if control && len > 125 {
        return Err(protocol("control frame over 125 bytes (RFC 6455 §5.5)"));
    }
    if let Some(max) = limit {
        if len > max {
            return Err(WsError::MessageTooBig {
                size: usize::try_from(len).unwrap_or(usize::MAX),
                max: max as usize,
            });
        }
    }
    // The 4-byte masking key ends the header.
    if head.len() < 2 + ext + 4 {
        return Ok(None);
    }
    Ok(Some(len))
}

fn protocol(detail: &str) -> WsError {
    WsError::Protocol {
        code: close_code::PROTOCOL_ERROR,
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, len_bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![first];
        v.extend_from_slice(len_bytes);
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    /// Scans `input` in pieces of `piece` bytes; returns every frame end (as offsets into the
    /// whole input) and the error, if any.
    fn ends(limit: Option<usize>, input: &[u8], piece: usize) -> (Vec<usize>, Option<u16>) {
        let mut scan = FrameScan::new(limit);
        let mut ends = Vec::new();
        for (i, chunk) in input.chunks(piece).enumerate() {
            let got = scan.scan(chunk);
            if got.whole > 0 {
                ends.push(i * piece + got.whole);
            }
            if let Some(e) = got.error {
                return (ends, e.close_code());
            }
        }
        (ends, None)
    }

    #[test]
    fn frame_ends_and_header_faults() {
        let text5 = [masked(0x81, &[0x85]), b"hello".to_vec()].concat();
        let empty = masked(0x89, &[0x80]);
        let len200 = [masked(0x82, &[0xfe, 0x00, 200]), vec![0; 200]].concat();
        let len70k = [
            masked(0x82, &[0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70]),
            vec![0; 70_000],
        ]
        .concat();
        type Case<'a> = (&'a str, Option<usize>, Vec<u8>, Vec<usize>, Option<u16>);
        let cases: Vec<Case<'_>> = vec![
            ("one frame", None, text5.clone(), vec![11], None),
            (
                "empty payload ends with the header",
                None,
                empty.clone(),
                vec![6],
                None,
            ),
            (
                "three frames",
                None,
                [text5.clone(), empty.clone(), text5.clone()].concat(),
                vec![11, 17, 28],
                None,
            ),
            ("16-bit length", None, len200.clone(), vec![208], None),
            ("64-bit length", None, len70k.clone(), vec![70_014], None),
            (
                "incomplete payload",
                None,
                text5[..10].to_vec(),
                vec![],
                None,
            ),
            (
                "incomplete header",
                None,
                len70k[..9].to_vec(),
                vec![],
                None,
            ),
            (
                "unmasked, found at its second byte",
                None,
                [text5.clone(), vec![0x81, 0x05]].concat(),
                vec![11],
                Some(1002),
            ),
            (
                "126 for a length under 126",
                None,
                masked(0x82, &[0xfe, 0x00, 125]),
                vec![],
                Some(1002),
            ),
            (
                "127 for a length under 65536",
                None,
                masked(0x82, &[0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
                vec![],
                Some(1002),
            ),
            (
                "top bit of the 64-bit length",
                None,
                masked(0x82, &[0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]),
                vec![],
                Some(1002),
            ),
            (
                "ping of 126 bytes",
                None,
                masked(0x89, &[0xfe, 0x00, 126]),
                vec![],
                Some(1002),
            ),
            (
                "over the limit from the header",
                Some(10),
                masked(0x82, &[0x8b]),
                vec![],
                Some(1009),
            ),
            (
                "at the limit",
                Some(10),
                [masked(0x82, &[0x8a]), vec![0; 10]].concat(),
                vec![16],
                None,
            ),
            (
                "no limit: 2^62 bytes announced is only waited for",
                None,
                masked(0x82, &[0xff, 0x40, 0, 0, 0, 0, 0, 0, 0]),
                vec![],
                None,
            ),
        ];
        for (name, limit, input, want_ends, want_err) in cases {
            for piece in [usize::MAX, 1, 5] {
                let piece = piece.min(input.len().max(1));
                let (got_ends, got_err) = ends(limit, &input, piece);
                // Piecewise, each piece reports the last frame end it holds.
                let mut expected: Vec<usize> = Vec::new();
                for &e in &want_ends {
                    match expected.last_mut() {
                        Some(last) if (*last - 1) / piece == (e - 1) / piece => *last = e,
                        _ => expected.push(e),
                    }
                }
                assert_eq!(got_ends, expected, "{name} (pieces of {piece})");
                assert_eq!(got_err, want_err, "{name} (pieces of {piece})");
            }
        }
    }
}
