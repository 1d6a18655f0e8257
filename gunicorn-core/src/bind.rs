//! Bind addresses: parsing `--bind` values and creating the listening sockets, with gunicorn's
//! rules (`gunicorn/util.py` `parse_address`, `gunicorn/sock.py`).
//!
//! Accepted forms: `HOST`, `HOST:PORT`, `[IPv6]:PORT`, `tcp://HOST:PORT`, `unix:PATH`,
//! `unix://PATH`, `fd://N`. The default port is 8000 and an empty address means `0.0.0.0`.
//! Every listener is CLOEXEC and non-blocking; TCP listeners get SO_REUSEADDR and TCP_NODELAY,
//! and SO_REUSEPORT with `--reuse-port`. Binding is tried five times, one second apart, as
//! gunicorn does, before the master gives up with "Can't connect to ...".

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{
    self, setsockopt, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6,
    SockaddrLike, SockaddrStorage, UnixAddr,
};

use crate::config::Config;
use crate::listener::Listener;
use crate::{log_debug, log_error};

/// gunicorn's default port when an address has none.
pub const DEFAULT_PORT: u16 = 8000;

/// How many times binding is tried, and the pause between tries (gunicorn: 5 tries, 1 s).
const BIND_ATTEMPTS: u32 = 5;
const BIND_RETRY_DELAY: Duration = Duration::from_secs(1);

/// One parsed `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// A TCP address: an IP literal or a host name (lower-cased), and a port.
    Tcp {
        /// The host as given (without IPv6 brackets), lower-cased.
        host: String,
        /// The port.
        port: u16,
    },
    /// A unix socket path.
    Unix(PathBuf),
    /// An inherited, already listening socket.
    Fd(i32),
}

/// An address could not be parsed or bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The port is not a number (gunicorn: `'x' is not a valid port number.`).
    #[error("'{0}' is not a valid port number.")]
    Port(String),
    /// `fd://N` with N not a number.
    #[error("'{0}' is not a valid file descriptor.")]
    Fd(String),
    /// The host name did not resolve to an address.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Every attempt failed (`Can't connect to ('127.0.0.1', 8000)`).
    #[error("Can't connect to {addr}")]
    CantConnect {
        /// The address, rendered as gunicorn renders it.
        addr: String,
        /// The last error.
        #[source]
        source: io::Error,
    },
}

impl BindAddr {
    /// Parses one address exactly like gunicorn's `parse_address`.
    pub fn parse(netloc: &str) -> Result<BindAddr, BindError> {
        if let Some(rest) = netloc.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = netloc.strip_prefix("fd://") {
            return match parse_python_int(fd) {
                Some(n) if n >= 0 && n <= i64::from(i32::MAX) => Ok(BindAddr::Fd(n as i32)),
                _ => Err(BindError::Fd(fd.to_string())),
            };
        }
        let netloc = netloc.strip_prefix("tcp://").unwrap_or(netloc);
        let default_port = DEFAULT_PORT.to_string();
        let (host, port) = if netloc.contains('[') && netloc.contains(']') {
            // `[::1]:8000`: the host is between the brackets, the port after `]:`.
            let host = netloc.split(']').next().unwrap_or("");
            let host = host.get(1..).unwrap_or("");
            let port = netloc.split("]:").nth(1).unwrap_or(&default_port);
            (host, port)
        } else if netloc.contains(':') {
            let mut parts = netloc.split(':');
            let host = parts.next().unwrap_or("");
            let port = parts.next().unwrap_or(&default_port);
            (host, port)
        } else if netloc.is_empty() {
            ("0.0.0.0", default_port.as_str())
        } else {
            (netloc, default_port.as_str())
        };
        let port = parse_python_int(port)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| BindError::Port(port.to_string()))?;
        Ok(BindAddr::Tcp {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The address as gunicorn prints it in bind errors (`str()` of the Python address:
    /// `('127.0.0.1', 8000)`, a unix path, or the fd number).
    pub fn display(&self) -> String {
        match self {
            BindAddr::Tcp { host, port } => format!("('{host}', {port})"),
            BindAddr::Unix(p) => p.display().to_string(),
            BindAddr::Fd(n) => n.to_string(),
        }
    }

    /// Resolves a TCP address. IPv6 is used when the host is an IPv6 literal, as gunicorn's
    /// `is_ipv6`; a host name resolves to its first IPv4 address; an empty host is 0.0.0.0.
    pub fn socket_addr(&self) -> Result<Option<SocketAddr>, BindError> {
        let BindAddr::Tcp { host, port } = self else {
            return Ok(None);
        };
        if host.is_empty() {
            return Ok(Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                *port,
            )));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Some(SocketAddr::new(ip, *port)));
        }
        (host.as_str(), *port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.find(SocketAddr::is_ipv4))
            .map(Some)
            .ok_or_else(|| BindError::Resolve(host.clone()))
    }
}

/// Python's `int(s)`: surrounding whitespace, an optional sign, decimal digits with single
/// underscores between them.
fn parse_python_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// The socket options and permissions a bind uses, taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct BindOptions {
    /// The `listen()` backlog.
    pub backlog: u64,
    /// Set SO_REUSEPORT.
    pub reuse_port: bool,
    /// The umask unix sockets are created under.
    pub umask: Option<u32>,
    /// Owner given to unix socket files (the worker user and group).
    pub owner: Option<(u32, u32)>,
}

impl BindOptions {
    /// The options `cfg` asks for.
    pub fn from_config(cfg: &Config) -> BindOptions {
        BindOptions {
            backlog: cfg.backlog,
            reuse_port: cfg.reuse_port,
            umask: Some(cfg.umask.0),
            owner: crate::process::worker_ids(cfg).ok().flatten(),
        }
    }
}

/// Parses every `bind` value of `cfg`.
pub fn parse_all(cfg: &Config) -> Result<Vec<BindAddr>, BindError> {
    cfg.bind.iter().map(|b| BindAddr::parse(b)).collect()
}

/// Parses and binds every address of `cfg.bind`, retrying each like gunicorn (five tries one
/// second apart, logging "Connection in use: ..." and "Retrying in 1 second.").
pub fn bind_all(cfg: &Config) -> Result<Vec<Listener>, BindError> {
    let addrs = parse_all(cfg)?;
    bind_addresses(
        &addrs,
        &BindOptions::from_config(cfg),
        BIND_ATTEMPTS,
        BIND_RETRY_DELAY,
    )
}

/// Binds `addrs` with gunicorn's retries (five tries, one second apart).
pub fn bind_with_retries(
    addrs: &[BindAddr],
    opts: &BindOptions,
) -> Result<Vec<Listener>, BindError> {
    bind_addresses(addrs, opts, BIND_ATTEMPTS, BIND_RETRY_DELAY)
}

/// Binds `addrs` in order with `attempts` tries each, `delay` apart.
pub fn bind_addresses(
    addrs: &[BindAddr],
    opts: &BindOptions,
    attempts: u32,
    delay: Duration,
) -> Result<Vec<Listener>, BindError> {
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let mut last_err = None;
        for attempt in 0..attempts.max(1) {
            match bind_one(addr, opts) {
                Ok(l) => {
                    last_err = None;
                    out.push(l);
                    break;
                }
                Err(BindOneError::Fatal(e)) => return Err(e),
                Err(BindOneError::Io(e)) => {
                    match e.raw_os_error() {
                        Some(libc::EADDRINUSE) => {
                            log_error!("Connection in use: {}", addr.display())
                        }
                        Some(libc::EADDRNOTAVAIL) => {
                            log_error!("Invalid address: {}", addr.display());
                            log_error!("connection to {} failed: {}", addr.display(), e);
                        }
                        _ => {}
                    }
                    log_debug!("connection to {} failed: {}", addr.display(), e);
                    if attempt + 1 < attempts {
                        log_error!("Retrying in 1 second.");
                        std::thread::sleep(delay);
                    }
                    last_err = Some(e);
                }
            }
        }
        if let Some(source) = last_err {
            return Err(BindError::CantConnect {
                addr: addr.display(),
                source,
            });
        }
    }
    Ok(out)
}

enum BindOneError {
    /// Worth retrying (address in use, ...).
    Io(io::Error),
    /// Retrying cannot help (unresolvable host).
    Fatal(BindError),
}

impl From<io::Error> for BindOneError {
    fn from(e: io::Error) -> Self {
        BindOneError::Io(e)
    }
}

impl From<nix::Error> for BindOneError {
    fn from(e: nix::Error) -> Self {
        BindOneError::Io(e.into())
    }
}

fn backlog(n: u64) -> Backlog {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    Backlog::new(n).unwrap_or(Backlog::MAXCONN)
}

fn bind_one(addr: &BindAddr, opts: &BindOptions) -> Result<Listener, BindOneError> {
    match addr {
        BindAddr::Tcp { .. } => {
            let sa = addr
                .socket_addr()
                .map_err(BindOneError::Fatal)?
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            Ok(Listener::Tcp(bind_tcp(sa, opts)?))
        }
        BindAddr::Unix(path) => bind_unix(path, opts),
        BindAddr::Fd(fd) => Ok(listener_from_fd(*fd)?),
    }
}

fn bind_tcp(sa: SocketAddr, opts: &BindOptions) -> Result<TcpListener, BindOneError> {
    let family = match sa {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if opts.reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    // gunicorn sets TCP_NODELAY on the listener; accepted sockets inherit it on Linux.
    setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    match sa {
        SocketAddr::V4(a) => socket::bind(fd.as_raw_fd(), &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?,
    }
    socket::listen(&fd, backlog(opts.backlog))?;
    Ok(TcpListener::from(fd))
}

fn bind_unix(path: &Path, opts: &BindOptions) -> Result<Listener, BindOneError> {
    // gunicorn removes a stale socket file left by a previous run, and refuses to touch anything
    // else at that path.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        } else {
            return Err(BindOneError::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not a socket", path.display()),
            )));
        }
    }
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let ua = UnixAddr::new(path)?;
    // The socket file's mode comes from the umask (gunicorn binds under `umask`).
    let bound = match opts.umask {
        Some(mask) => {
            let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
            let r = socket::bind(fd.as_raw_fd(), &ua);
            nix::sys::stat::umask(old);
            r
        }
        None => socket::bind(fd.as_raw_fd(), &ua),
    };
    bound?;
    if let Some((uid, gid)) = opts.owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    socket::listen(&fd, backlog(opts.backlog))?;
    Ok(Listener::Unix {
        listener: UnixListener::from(fd),
        path: path.to_path_buf(),
    })
}

/// Takes over an inherited listening socket (`fd://N`, `GUNICORN_FD`, systemd's `LISTEN_FDS`):
/// the family comes from `getsockname`; it is made CLOEXEC and non-blocking.
pub fn listener_from_fd(fd: i32) -> io::Result<Listener> {
    let owned = crate::sys::claim_inherited_fd(fd)?;
    let st = nix::sys::stat::fstat(owned.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is not a socket"),
        ));
    }
    use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let flags = OFlag::from_bits_truncate(fcntl(&owned, FcntlArg::F_GETFL)?);
    fcntl(&owned, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let name: SockaddrStorage = socket::getsockname(owned.as_raw_fd())?;
    match name.family() {
        Some(AddressFamily::Inet) | Some(AddressFamily::Inet6) => {
            Ok(Listener::Tcp(TcpListener::from(owned)))
        }
        Some(AddressFamily::Unix) => {
            let path = name
                .as_unix_addr()
                .and_then(|u| u.path())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            Ok(Listener::Unix {
                listener: UnixListener::from(owned),
                path,
            })
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is not a TCP or unix socket"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> BindAddr {
        BindAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn addresses_parse_like_gunicorn() {
        let cases: Vec<(&str, Option<BindAddr>)> = vec![
            ("127.0.0.1", Some(tcp("127.0.0.1", 8000))),
            ("127.0.0.1:9000", Some(tcp("127.0.0.1", 9000))),
            ("localhost:80", Some(tcp("localhost", 80))),
            ("LocalHost", Some(tcp("localhost", 8000))),
            ("[::1]:8001", Some(tcp("::1", 8001))),
            ("[::1]", Some(tcp("::1", 8000))),
            ("[FE80::1]:5", Some(tcp("fe80::1", 5))),
            ("tcp://0.0.0.0:81", Some(tcp("0.0.0.0", 81))),
            ("", Some(tcp("0.0.0.0", 8000))),
            (":8080", Some(tcp("", 8080))),
            ("0.0.0.0:0", Some(tcp("0.0.0.0", 0))),
            (
                "unix:/tmp/g.sock",
                Some(BindAddr::Unix("/tmp/g.sock".into())),
            ),
            (
                "unix:///tmp/g.sock",
                Some(BindAddr::Unix("/tmp/g.sock".into())),
            ),
            ("unix:rel.sock", Some(BindAddr::Unix("rel.sock".into()))),
            ("fd://3", Some(BindAddr::Fd(3))),
            ("fd://x", None),
            ("fd://", None),
            ("host:", None),
            ("host:http", None),
            ("host:70000", None),
            ("host:-1", None),
            ("::1", None),
        ];
        for (text, want) in cases {
            assert_eq!(BindAddr::parse(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn errors_are_worded_like_gunicorn() {
        let cases: &[(&str, &str)] = &[
            ("host:http", "'http' is not a valid port number."),
            ("fd://abc", "'abc' is not a valid file descriptor."),
        ];
        for (text, want) in cases {
            assert_eq!(BindAddr::parse(text).unwrap_err().to_string(), *want);
        }
        assert_eq!(tcp("127.0.0.1", 8000).display(), "('127.0.0.1', 8000)");
    }

    #[test]
    fn socket_addrs_resolve() {
        let cases: &[(&str, &str)] = &[
            ("127.0.0.1:1", "127.0.0.1:1"),
            (":2", "0.0.0.0:2"),
            ("[::1]:3", "[::1]:3"),
            ("localhost:4", "127.0.0.1:4"),
        ];
        for (text, want) in cases {
            let got = BindAddr::parse(text)
                .unwrap()
                .socket_addr()
                .unwrap()
                .unwrap();
            assert_eq!(got.to_string(), *want, "{text}");
        }
    }

    fn opts() -> BindOptions {
        BindOptions {
            backlog: 16,
            reuse_port: false,
            umask: None,
            owner: None,
        }
    }

    #[test]
    fn tcp_listener_is_nonblocking_cloexec_and_reports_its_url() {
        let ls = bind_addresses(&[tcp("127.0.0.1", 0)], &opts(), 1, Duration::ZERO).unwrap();
        let fd = ls[0].as_fd();
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        let fdflags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        assert!(fdflags.contains(FdFlag::FD_CLOEXEC));
        assert!(flags.contains(OFlag::O_NONBLOCK));
        assert!(ls[0].url().starts_with("http://127.0.0.1:"));
    }

    #[test]
    fn ipv6_listeners_report_bracketed_urls() {
        // Skipped where the host has no IPv6 loopback.
        if std::net::TcpListener::bind("[::1]:0").is_err() {
            return;
        }
        let ls = bind_addresses(
            &[BindAddr::parse("[::1]:0").unwrap()],
            &opts(),
            1,
            Duration::ZERO,
        )
        .unwrap();
        assert!(ls[0].url().starts_with("http://[::1]:"), "{}", ls[0].url());
    }

    #[test]
    fn busy_port_fails_after_the_retries() {
        let first = bind_addresses(&[tcp("127.0.0.1", 0)], &opts(), 1, Duration::ZERO).unwrap();
        let port = match first[0].local_addr().unwrap() {
            crate::listener::LocalAddr::Tcp(a) => a.port(),
            _ => unreachable!(),
        };
        let err = bind_addresses(
            &[tcp("127.0.0.1", port)],
            &opts(),
            2,
            Duration::from_millis(1),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Can't connect to ('127.0.0.1', {port})")
        );
    }

    #[test]
    fn unix_sockets_replace_stale_sockets_and_refuse_other_files() {
        let dir = std::env::temp_dir().join(format!("gunicorn-bind-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.sock");
        let addr = BindAddr::Unix(path.clone());
        let first =
            bind_addresses(std::slice::from_ref(&addr), &opts(), 1, Duration::ZERO).unwrap();
        assert_eq!(first[0].url(), format!("unix:{}", path.display()));
        drop(first);
        // The socket file is left behind, as after a crash: it is replaced.
        let second = bind_addresses(std::slice::from_ref(&addr), &opts(), 1, Duration::ZERO);
        assert!(second.is_ok());
        drop(second);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "not a socket").unwrap();
        let third = bind_addresses(std::slice::from_ref(&addr), &opts(), 1, Duration::ZERO);
        assert!(third.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn inherited_fds_keep_their_family() {
        let ls = bind_addresses(&[tcp("127.0.0.1", 0)], &opts(), 1, Duration::ZERO).unwrap();
        let before = ls[0].local_addr().unwrap();
        let dup = nix::unistd::dup(ls[0].as_fd()).unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(dup);
        let back = listener_from_fd(raw).unwrap();
        assert_eq!(back.local_addr().unwrap(), before);
        assert!(listener_from_fd(987_654).is_err());
    }
}
