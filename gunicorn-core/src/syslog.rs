//! `--log-syslog`: error (and access) lines also sent to syslog, as gunicorn's
//! `SysLogHandler` setup in `glogging.py` does.
//!
//! Each record is one message `<PRI>gunicorn.<prefix>.<error|access>: [pid] message` followed
//! by a NUL byte (Python's `SysLogHandler.append_nul`), where PRI is `facility * 8 + severity`
//! (RFC 3164 §4.1.1). The prefix is `syslog_prefix`, else the process name with `:` turned into
//! `.`. Addresses: `udp://HOST:PORT`, `tcp://HOST:PORT` (default port 514) and
//! `unix://PATH[#dgram|#stream]` (without a suffix a datagram socket is tried first, then a
//! stream socket, as Python does). Sending never blocks a request for long: UDP and unix
//! datagram sockets are non-blocking, and a failed send is dropped.

use std::io::{self, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::Mutex;

use crate::log_record::Level;
use crate::{datagram, Config};

/// Why syslog could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// `syslog_addr` has none of the known schemes.
    #[error("invalid syslog address: {0}")]
    Address(String),
    /// The port is not a number.
    #[error("{0:?} is not a valid port number.")]
    Port(String),
    /// `syslog_facility` is not a facility name.
    #[error("unknown facility name: {0}")]
    Facility(String),
    /// The socket cannot be created or connected.
    #[error("cannot connect to syslog at {addr}: {source}")]
    Connect {
        /// The address as configured.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// A parsed `syslog_addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddr {
    /// `udp://HOST:PORT`.
    Udp(String, u16),
    /// `tcp://HOST:PORT`.
    Tcp(String, u16),
    /// `unix://PATH`, with the socket type if given (`#dgram` / `#stream`).
    Unix(String, Option<UnixKind>),
}

/// The socket type of a unix syslog address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixKind {
    /// `#dgram`.
    Datagram,
    /// `#stream`.
    Stream,
}

/// Which logger a line comes from (the last part of the ident).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `gunicorn.<prefix>.error`.
    Error,
    /// `gunicorn.<prefix>.access`.
    Access,
}

/// Parses `syslog_addr` as gunicorn's `parse_syslog_address`.
pub fn parse_addr(addr: &str) -> Result<SyslogAddr, SyslogError> {
    if let Some(rest) = addr.strip_prefix("unix://") {
        let (path, kind) = match rest.split_once('#') {
            Some((path, "dgram")) => (path, Some(UnixKind::Datagram)),
            Some((path, "stream")) => (path, Some(UnixKind::Stream)),
            Some((path, _)) => (path, None),
            None => (rest, None),
        };
        return Ok(SyslogAddr::Unix(path.to_string(), kind));
    }
    let (tcp, rest) = if let Some(rest) = addr.strip_prefix("udp://") {
        (false, rest)
    } else if let Some(rest) = addr.strip_prefix("tcp://") {
        (true, rest)
    } else {
        return Err(SyslogError::Address(addr.to_string()));
    };
    let (host, port_part) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| SyslogError::Address(addr.to_string()))?;
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        }
    };
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host.to_lowercase()
    };
    let port = match port_part {
        None => 514,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| SyslogError::Port(p.to_string()))?
        }
        Some(p) => return Err(SyslogError::Port(p.to_string())),
    };
    Ok(if tcp {
        SyslogAddr::Tcp(host, port)
    } else {
        SyslogAddr::Udp(host, port)
    })
}

/// The facility code of a name (Python's `SysLogHandler.facility_names`).
pub fn facility(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// The syslog severity of a level (Python's `SysLogHandler.priority_map`).
fn severity(level: Level) -> u8 {
    match level {
        Level::Debug => 7,
        Level::Info => 6,
        Level::Warning => 4,
        Level::Error => 3,
        Level::Critical => 2,
    }
}

/// Builds one message, NUL included.
pub fn format_message(facility: u8, level: Level, ident: &str, pid: u32, message: &str) -> Vec<u8> {
    let pri = u32::from(facility) * 8 + u32::from(severity(level));
    let mut out = format!("<{pri}>{ident}: [{pid}] {message}").into_bytes();
    out.push(0);
    out
}

enum Socket {
    Udp(UdpSocket),
    Tcp(TcpStream),
    UnixDatagram(UnixDatagram),
    UnixStream(UnixStream),
}

struct Syslog {
    socket: Socket,
    facility: u8,
    error_ident: String,
    access_ident: Option<String>,
}

static SYSLOG: Mutex<Option<Syslog>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<Syslog>> {
    SYSLOG.lock().unwrap_or_else(|e| e.into_inner())
}

fn connect(addr: &SyslogAddr) -> io::Result<Socket> {
    Ok(match addr {
        SyslogAddr::Udp(host, port) => Socket::Udp(datagram::udp(host, *port)?),
        SyslogAddr::Tcp(host, port) => {
            let sock = TcpStream::connect((host.as_str(), *port))?;
            sock.set_nodelay(true)?;
            Socket::Tcp(sock)
        }
        SyslogAddr::Unix(path, Some(UnixKind::Datagram)) => {
            Socket::UnixDatagram(datagram::unix(path)?)
        }
        SyslogAddr::Unix(path, Some(UnixKind::Stream)) => {
            Socket::UnixStream(UnixStream::connect(path)?)
        }
        SyslogAddr::Unix(path, None) => {
            match connect(&SyslogAddr::Unix(path.clone(), Some(UnixKind::Datagram))) {
                Ok(s) => s,
                Err(_) => connect(&SyslogAddr::Unix(path.clone(), Some(UnixKind::Stream)))?,
            }
        }
    })
}

/// The ident prefix: `syslog_prefix`, else the process name (`proc_name`, else the app module)
/// with `:` replaced by `.`.
pub fn prefix(cfg: &Config) -> String {
    match &cfg.syslog_prefix {
        Some(p) => p.clone(),
        None => cfg
            .proc_name
            .clone()
            .or_else(|| cfg.wsgi_app.clone())
            .unwrap_or_else(|| "gunicorn".into())
            .replace(':', "."),
    }
}

/// Connects to syslog when `--log-syslog` is on; turns it off otherwise.
pub fn init(cfg: &Config) -> Result<(), SyslogError> {
    if !cfg.syslog {
        *lock() = None;
        return Ok(());
    }
    let facility = facility(&cfg.syslog_facility)
        .ok_or_else(|| SyslogError::Facility(cfg.syslog_facility.clone()))?;
    let addr = parse_addr(&cfg.syslog_addr)?;
    let socket = connect(&addr).map_err(|source| SyslogError::Connect {
        addr: cfg.syslog_addr.clone(),
        source,
    })?;
    let prefix = prefix(cfg);
    *lock() = Some(Syslog {
        socket,
        facility,
        error_ident: format!("gunicorn.{prefix}.error"),
        access_ident: (!cfg.disable_redirect_access_to_syslog)
            .then(|| format!("gunicorn.{prefix}.access")),
    });
    Ok(())
}

/// Whether access lines go to syslog.
pub fn takes_access() -> bool {
    lock().as_ref().is_some_and(|s| s.access_ident.is_some())
}

/// Sends one record; a no-op when syslog is off (or, for access lines, when
/// `--disable-redirect-access-to-syslog` is set). Send errors are dropped.
pub fn send(stream: Stream, level: Level, message: &str) {
    let mut guard = lock();
    let Some(s) = guard.as_mut() else {
        return;
    };
    let ident = match stream {
        Stream::Error => &s.error_ident,
        Stream::Access => match &s.access_ident {
            Some(ident) => ident,
            None => return,
        },
    };
    let msg = format_message(s.facility, level, ident, std::process::id(), message);
    let _ = match &mut s.socket {
        Socket::Udp(sock) => sock.send(&msg).map(drop),
        Socket::UnixDatagram(sock) => sock.send(&msg).map(drop),
        Socket::Tcp(sock) => sock.write_all(&msg),
        Socket::UnixStream(sock) => sock.write_all(&msg),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_gunicorn() {
        let cases: &[(&str, Option<SyslogAddr>)] = &[
            (
                "udp://localhost:514",
                Some(SyslogAddr::Udp("localhost".into(), 514)),
            ),
            (
                "udp://127.0.0.1:5140",
                Some(SyslogAddr::Udp("127.0.0.1".into(), 5140)),
            ),
            ("udp://Host", Some(SyslogAddr::Udp("host".into(), 514))),
            ("udp://", Some(SyslogAddr::Udp("localhost".into(), 514))),
            ("tcp://[::1]:601", Some(SyslogAddr::Tcp("::1".into(), 601))),
            ("tcp://h:601", Some(SyslogAddr::Tcp("h".into(), 601))),
            (
                "unix:///dev/log",
                Some(SyslogAddr::Unix("/dev/log".into(), None)),
            ),
            (
                "unix:///dev/log#dgram",
                Some(SyslogAddr::Unix(
                    "/dev/log".into(),
                    Some(UnixKind::Datagram),
                )),
            ),
            (
                "unix:///dev/log#stream",
                Some(SyslogAddr::Unix("/dev/log".into(), Some(UnixKind::Stream))),
            ),
            ("udp://h:x", None),
            ("http://h:1", None),
            ("localhost:514", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_addr(text).ok(), *want, "{text}");
        }
    }

    #[test]
    fn messages_have_priority_ident_pid_and_nul() {
        let cases: &[(u8, Level, &str)] = &[
            (1, Level::Info, "<14>gunicorn.app.error: [7] hello\0"),
            (1, Level::Error, "<11>gunicorn.app.error: [7] hello\0"),
            (16, Level::Critical, "<130>gunicorn.app.error: [7] hello\0"),
            (3, Level::Warning, "<28>gunicorn.app.error: [7] hello\0"),
            (0, Level::Debug, "<7>gunicorn.app.error: [7] hello\0"),
        ];
        for (fac, level, want) in cases {
            let got = format_message(*fac, *level, "gunicorn.app.error", 7, "hello");
            assert_eq!(String::from_utf8(got).unwrap(), *want);
        }
    }

    #[test]
    fn facilities() {
        let cases: &[(&str, Option<u8>)] = &[
            ("user", Some(1)),
            ("LOCAL7", Some(23)),
            ("security", Some(4)),
            ("authpriv", Some(10)),
            ("nope", None),
        ];
        for (name, want) in cases {
            assert_eq!(facility(name), *want, "{name}");
        }
    }

    #[test]
    fn prefix_defaults_to_the_process_name() {
        let mut cfg = Config {
            wsgi_app: Some("myapp:app".into()),
            ..Config::default()
        };
        assert_eq!(prefix(&cfg), "myapp.app");
        cfg.proc_name = Some("web:1".into());
        assert_eq!(prefix(&cfg), "web.1");
        cfg.syslog_prefix = Some("custom".into());
        assert_eq!(prefix(&cfg), "custom");
    }
}
