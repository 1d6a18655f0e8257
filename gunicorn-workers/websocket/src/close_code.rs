//! Close status codes (RFC 6455 §7.4.1) and which of them an endpoint may send.

/// 1000: normal closure.
pub const NORMAL: u16 = 1000;
/// 1002: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1005: "no status code was actually present" (reported, never sent).
pub const NO_STATUS: u16 = 1005;
/// 1007: data inconsistent with the message type (text that is not UTF-8).
pub const INVALID_DATA: u16 = 1007;
/// 1009: a message too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011: the server met an unexpected condition (what gunicorn sends when the app fails).
pub const INTERNAL_ERROR: u16 = 1011;

/// RFC 6455 §7.4: may an endpoint put this code in a close frame? 1000-1003 and 1007-1014 are
/// defined for use (1004 is reserved; 1005, 1006 and 1015 "MUST NOT be set as a status code in a
/// Close control frame"), 3000-4999 belong to libraries and applications, the rest is invalid.
/// The same rule gunicorn 27 applies to the codes it receives.
pub fn may_send(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes_follow_rfc6455_7_4() {
        let cases: &[(u16, bool)] = &[
            (0, false),
            (999, false),
            (1000, true),
            (1001, true),
            (1003, true),
            (1004, false),
            (1005, false),
            (1006, false),
            (1007, true),
            (1011, true),
            (1014, true),
            (1015, false),
            (1016, false),
            (2999, false),
            (3000, true),
            (4999, true),
            (5000, false),
            (u16::MAX, false),
        ];
        for &(code, want) in cases {
            assert_eq!(may_send(code), want, "code {code}");
        }
    }
}
