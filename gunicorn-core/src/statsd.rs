//! StatsD metrics (`--statsd-host`), as gunicorn's `instrument/statsd.py`.
//!
//! Wire format: `<prefix><name>:<value>|<type>` with `g` (gauge), `c|@1.0` (counter with its
//! sampling rate), `ms` (timer), `h` (histogram); `|#<tags>` is appended when `--dogstatsd-tags` is set. One
//! datagram per metric on a connected, non-blocking UDP (or unix datagram) socket created in
//! the master and inherited by the workers: fire and forget, a full buffer or an absent
//! listener drops the metric instead of delaying a request.

use std::fmt::Display;
use std::io;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::{datagram, Config};

/// Why StatsD could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StatsdError {
    /// `statsd_host` is neither `HOST[:PORT]` nor `unix://PATH`.
    #[error("invalid statsd address {0:?}: must be one of ('host:port', 'unix://PATH')")]
    Address(String),
    /// The socket cannot be created or connected.
    #[error("cannot create the statsd socket for {addr}: {source}")]
    Socket {
        /// The address as configured.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// A parsed `statsd_host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsdAddr {
    /// `HOST:PORT` (port 8125 when omitted).
    Udp(String, u16),
    /// `unix://PATH` or `unix:PATH`.
    Unix(String),
}

/// Parses `statsd_host` (gunicorn's `validate_statsd_address`).
pub fn parse_addr(text: &str) -> Result<StatsdAddr, StatsdError> {
    let bad = || StatsdError::Address(text.to_string());
    if let Some(path) = text
        .strip_prefix("unix://")
        .or_else(|| text.strip_prefix("unix:"))
    {
        if path.is_empty() {
            return Err(bad());
        }
        // gunicorn keeps `unix:8125` meaning the host "unix" on port 8125 (a compatibility rule
        // of its validator).
        if path.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with("unix://") {
            return Ok(StatsdAddr::Udp(
                "unix".into(),
                path.parse().map_err(|_| bad())?,
            ));
        }
        return Ok(StatsdAddr::Unix(path.to_string()));
    }
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None => 8125,
        Some(p) => p.parse().map_err(|_| bad())?,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Ok(StatsdAddr::Udp(host.to_string(), port))
}

/// `statsd_prefix` with the trailing `.` gunicorn adds (none when empty).
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('.');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}.")
    }
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

struct Client {
    socket: Socket,
    prefix: String,
    tags: String,
}

static CLIENT: RwLock<Option<Client>> = RwLock::new(None);

/// `CLIENT` is set: read by [`enabled`] for every request without taking the lock (an atomic
/// read-modify-write each way, measurable on a hello-world worker).
static ENABLED: AtomicBool = AtomicBool::new(false);

fn connect(addr: &StatsdAddr) -> io::Result<Socket> {
    Ok(match addr {
        StatsdAddr::Udp(host, port) => Socket::Udp(datagram::udp(host, *port)?),
        StatsdAddr::Unix(path) => Socket::Unix(datagram::unix(path)?),
    })
}

/// Creates the socket when `--statsd-host` is set; turns metrics off otherwise. Only a
/// malformed address is an error.
pub fn init(cfg: &Config) -> Result<Metrics, StatsdError> {
    let mut metrics = Metrics::Off;
    let client = match &cfg.statsd_host {
        None => None,
        Some(host) => {
            let addr = parse_addr(host)?;
            match connect(&addr) {
                Ok(socket) => Some(Client {
                    socket,
                    prefix: normalize_prefix(&cfg.statsd_prefix),
                    tags: cfg.dogstatsd_tags.clone(),
                }),
                // gunicorn starts without metrics when the socket cannot be set up (a statsd
                // agent's unix socket that does not exist yet, an unresolvable host); we say so.
                Err(source) => {
                    metrics = Metrics::Disabled(StatsdError::Socket {
                        addr: host.clone(),
                        source,
                    });
                    None
                }
            }
        }
    };
    if client.is_some() {
        metrics = Metrics::Sending;
    }
    let mut guard = CLIENT.write().unwrap_or_else(|e| e.into_inner());
    ENABLED.store(client.is_some(), Ordering::Relaxed);
    *guard = client;
    Ok(metrics)
}

/// What [`init`] set up.
#[derive(Debug)]
pub enum Metrics {
    /// No `statsd_host`.
    Off,
    /// Metrics go to the agent.
    Sending,
    /// The socket could not be set up: gunicorn starts without metrics, and the caller says
    /// so in the error log. (This module does not log itself: the error log sends metrics
    /// through it.)
    Disabled(StatsdError),
}

/// Whether metrics are being sent.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// One metric line (without tags' absence: `tags` empty adds nothing).
pub fn format_metric(prefix: &str, name: &str, value: &str, kind: &str, tags: &str) -> String {
    if tags.is_empty() {
        format!("{prefix}{name}:{value}|{kind}")
    } else {
        format!("{prefix}{name}:{value}|{kind}|#{tags}")
    }
}

fn send(name: &str, value: &dyn Display, kind: &str) {
    let guard = CLIENT.read().unwrap_or_else(|e| e.into_inner());
    let Some(c) = guard.as_ref() else {
        return;
    };
    let line = format_metric(&c.prefix, name, &value.to_string(), kind, &c.tags);
    // Fire and forget: a refused or full socket loses the metric, never the request.
    let _ = match &c.socket {
        Socket::Udp(s) => s.send(line.as_bytes()),
        Socket::Unix(s) => s.send(line.as_bytes()),
    };
}

/// A gauge (`|g`).
pub fn gauge(name: &str, value: impl Display) {
    send(name, &value, "g");
}

/// A histogram (`|h`), e.g. the arbiter's `gunicorn.backlog`.
pub fn histogram(name: &str, value: impl Display) {
    send(name, &value, "h");
}

/// A counter with sampling rate 1.0 (`|c|@1.0`).
pub fn increment(name: &str, value: i64) {
    send(name, &value, "c|@1.0");
}

/// A timer in milliseconds (`|ms`), rendered like Python's `float` repr (`5.0`, `12.345`).
pub fn timing_ms(name: &str, ms: f64) {
    send(name, &PyFloat(ms), "ms");
}

/// The metrics of one access: duration, request count, count per status.
pub fn access(status: u16, duration: Duration) {
    if !enabled() {
        return;
    }
    let ms = duration.as_secs() as f64 * 1000.0 + f64::from(duration.subsec_micros()) / 1000.0;
    timing_ms("gunicorn.request.duration", ms);
    increment("gunicorn.requests", 1);
    increment(&format!("gunicorn.request.status.{status}"), 1);
}

/// Displays an f64 as Python's `str(float)` does for ordinary values: always with a fraction.
pub struct PyFloat(pub f64);

impl Display for PyFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() && self.0.fract() == 0.0 && self.0.abs() < 1e16 {
            write!(f, "{:.1}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let cases: &[(&str, Option<StatsdAddr>)] = &[
            (
                "localhost:8125",
                Some(StatsdAddr::Udp("localhost".into(), 8125)),
            ),
            ("10.0.0.1", Some(StatsdAddr::Udp("10.0.0.1".into(), 8125))),
            ("h:9125", Some(StatsdAddr::Udp("h".into(), 9125))),
            ("[::1]:9125", Some(StatsdAddr::Udp("::1".into(), 9125))),
            ("[::1]", Some(StatsdAddr::Udp("::1".into(), 8125))),
            (
                "unix:///run/statsd.sock",
                Some(StatsdAddr::Unix("/run/statsd.sock".into())),
            ),
            ("unix:/tmp/s", Some(StatsdAddr::Unix("/tmp/s".into()))),
            ("unix:8125", Some(StatsdAddr::Udp("unix".into(), 8125))),
            ("h:notaport", None),
            ("unix://", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_addr(text).ok(), *want, "{text}");
        }
    }

    #[test]
    fn prefixes() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("app", "app."),
            ("app.", "app."),
            ("a.b..", "a.b."),
        ];
        for (given, want) in cases {
            assert_eq!(normalize_prefix(given), *want);
        }
    }

    #[test]
    fn lines() {
        let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
            (
                "",
                "gunicorn.requests",
                "1",
                "c|@1.0",
                "",
                "gunicorn.requests:1|c|@1.0",
            ),
            (
                "app.",
                "gunicorn.workers",
                "3",
                "g",
                "",
                "app.gunicorn.workers:3|g",
            ),
            (
                "",
                "gunicorn.request.duration",
                "5.0",
                "ms",
                "env:prod,team:web",
                "gunicorn.request.duration:5.0|ms|#env:prod,team:web",
            ),
        ];
        for (prefix, name, value, kind, tags, want) in cases {
            assert_eq!(format_metric(prefix, name, value, kind, tags), *want);
        }
    }

    #[test]
    fn floats_render_like_python() {
        let cases: &[(f64, &str)] = &[
            (5.0, "5.0"),
            (12.345, "12.345"),
            (0.0, "0.0"),
            (1500.25, "1500.25"),
        ];
        for (v, want) in cases {
            assert_eq!(PyFloat(*v).to_string(), *want);
        }
    }
}
