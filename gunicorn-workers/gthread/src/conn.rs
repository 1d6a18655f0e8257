//! The gthread worker's connection policy, sans-IO: the deadlines a connection waiting in the
//! poller gets (TLS handshakes included), and the keep-alive decision after a response. (Reading the head itself is
//! gunicorn-serve's `head::HeadReader`.) No sockets here, so all of it is unit-tested.

use std::time::{Duration, Instant};

/// What a connection waiting in the poller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A new connection, before its first byte (on a TLS port: before the first byte of the
    /// ClientHello, and again once the handshake is done, before the first request's byte).
    FirstRequest,
    /// A TLS handshake that has received bytes and is not done: bounded like a partial head,
    /// so a client that stalls mid-handshake is closed after `--timeout`.
    Handshake,
    /// Between requests on a keep-alive connection, before the next request's first byte.
    Idle,
    /// Part of a request head has arrived.
    PartialHead,
    /// Lingering close: our side is shut, discarding what the client still sends.
    Closing,
}

/// The deadlines of waiting connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `--keep-alive`: how long a connection may sit idle between requests.
    pub keepalive: Duration,
    /// How long a request head may take from its first byte (`--timeout`; None = unbounded).
    /// A slow client (slowloris) costs a connection slot, never a thread, and is closed then.
    pub head: Option<Duration>,
}

/// gunicorn's gthread gives a new connection 5 s to send its first bytes in a pool thread,
/// then parks it until the keep-alive deadline; we wait the same total in the poller.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(5);
// gunicorn's `close_graceful` and gthread drain bounds, shared by every worker class.
pub use gunicorn_serve::linger::{DRAIN_LIMIT, DRAIN_TIME, LINGER_LIMIT, LINGER_TIME};

impl Timeouts {
    pub fn deadline(&self, wait: Wait, now: Instant) -> Option<Instant> {
        match wait {
            Wait::FirstRequest => Some(now + FIRST_REQUEST_GRACE + self.keepalive),
            Wait::Idle => Some(now + self.keepalive),
            Wait::PartialHead | Wait::Handshake => self.head.map(|d| now + d),
            Wait::Closing => Some(now + LINGER_TIME),
        }
    }
}

/// What decides whether a response may keep its connection open, fixed before the app runs
/// (the `Connection` header of the response depends on it).
#[derive(Debug, Clone, Copy)]
pub struct KeepAliveInputs {
    /// The worker is not stopping (TERM, max_requests).
    pub alive: bool,
    /// `--keep-alive` is not 0.
    pub keepalive_enabled: bool,
    /// This request reaches `max_requests`.
    pub last_request: bool,
    /// Connections open and not in a pool thread (gunicorn's `len(keepalived)`).
    pub parked: usize,
    /// `--worker-connections`.
    pub worker_connections: usize,
    /// `--threads`.
    pub threads: usize,
}

/// gunicorn's gthread `force_close` rule: close after this response when the worker is
/// stopping, keep-alive is off, this is the last request before a restart, or parked
/// keep-alive connections already fill `worker_connections - threads` slots (so idle
/// connections never lock new clients out).
pub fn must_close(i: KeepAliveInputs) -> bool {
    !i.alive
        || !i.keepalive_enabled
        || i.last_request
        || i.parked >= i.worker_connections.saturating_sub(i.threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_per_wait() {
        let now = Instant::now();
        let t = Timeouts {
            keepalive: Duration::from_secs(2),
            head: Some(Duration::from_secs(30)),
        };
        let cases = [
            (Wait::FirstRequest, Some(7)),
            (Wait::Idle, Some(2)),
            (Wait::PartialHead, Some(30)),
            (Wait::Handshake, Some(30)),
            (Wait::Closing, Some(2)),
        ];
        for (wait, secs) in cases {
            assert_eq!(
                t.deadline(wait, now),
                secs.map(|s| now + Duration::from_secs(s)),
                "{wait:?}"
            );
        }
        let unbounded = Timeouts { head: None, ..t };
        assert_eq!(unbounded.deadline(Wait::PartialHead, now), None);
        assert_eq!(unbounded.deadline(Wait::Handshake, now), None);
    }

    #[test]
    fn keep_alive_rules() {
        let base = KeepAliveInputs {
            alive: true,
            keepalive_enabled: true,
            last_request: false,
            parked: 10,
            worker_connections: 1000,
            threads: 4,
        };
        let cases = [
            (base, false),
            (
                KeepAliveInputs {
                    alive: false,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    keepalive_enabled: false,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    last_request: true,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    parked: 995,
                    ..base
                },
                false,
            ),
            (
                KeepAliveInputs {
                    parked: 996,
                    ..base
                },
                true,
            ),
            (
                KeepAliveInputs {
                    worker_connections: 2,
                    threads: 4,
                    parked: 0,
                    ..base
                },
                true,
            ),
        ];
        for (inputs, want) in cases {
            assert_eq!(must_close(inputs), want, "{inputs:?}");
        }
    }
}
