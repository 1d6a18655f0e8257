//! The lifecycle of one WebSocket connection (RFC 6455 §7: the closing handshake).

/// Where a [`Session`](crate::Session) is in its life.
///
/// ```text
/// Open --close()--> Closing --peer's close frame--> Closed
/// Open --peer's close frame (our reply queued)--> Closed
/// Open | Closing --protocol error (our close frame queued)--> Closed
/// ```
///
/// In `Closed` the caller writes what [`take_output`](crate::Session::take_output) still holds,
/// then closes the TCP connection (RFC 6455 §7.1.1: the server closes the TCP connection first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Messages flow both ways.
    Open,
    /// We sent our close frame and wait for the peer's. Nothing more may be sent; data messages
    /// the peer sent before it saw our close are dropped (the app has said it is done).
    Closing,
    /// The closing handshake is over (or the connection failed): write the pending output,
    /// then close the TCP connection. Later input is ignored.
    Closed,
}
