//! The environ dict of a request (PEP 3333): the constant keys made once per worker, the CGI
//! variables written straight from the parsed request (gunicorn-http's `for_each_environ`, or
//! an [`Environ`] already built when the access log needs one), and this request's
//! `wsgi.input`, `wsgi.early_hints` and `gunicorn.socket`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;

use gunicorn_http::{
    for_each_environ, CgiKey, ConnInfo, EnvKey, Environ, HttpConfig, HttpError, Local, ProxyInfo,
    Request, SERVER_SOFTWARE,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::errors::Errors;
use super::exchange::Exchange;
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::start_response::EarlyHints;

/// Python-side keys are cached as interned strings; this bounds the cache against clients
/// sending many distinct header names.
const MAX_CACHED_KEYS: usize = 512;

/// The cache of `HTTP_*` keys of uncommon header names. Keyed with FNV-1a rather than the
/// default SipHash (which showed as ~2 % of a hello-world worker): the keys are short, and a
/// client crafting colliding header names can at worst make lookups scan the at most
/// [`MAX_CACHED_KEYS`] entries.
type KeyCache = HashMap<String, Py<PyString>, BuildHasherDefault<Fnv1a>>;

/// The 64-bit FNV-1a hash.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The CGI keys that every request's environ has (for a TCP peer; a unix socket's peer has no
/// `REMOTE_PORT`). The template holds them with `None`, each request writes over them, and a
/// key a request did not write is removed (see [`EnvironTemplate::new`]).
const ALWAYS: [CgiKey; 11] = [
    CgiKey::RequestMethod,
    CgiKey::RawUri,
    CgiKey::QueryString,
    CgiKey::ServerProtocol,
    CgiKey::UrlScheme,
    CgiKey::RemoteAddr,
    CgiKey::RemotePort,
    CgiKey::ServerName,
    CgiKey::ServerPort,
    CgiKey::ScriptName,
    CgiKey::PathInfo,
];

// `cgi_dict` records the fixed keys written as bits of a u64.
const _: () = assert!(CgiKey::ALL.len() <= 64);

/// What every environ of a worker starts from, and the caches that make filling one cheap.
pub(crate) struct EnvironTemplate {
    /// The constant part of every environ; copied per request.
    base: Py<PyDict>,
    /// Every fixed key ([`CgiKey`]) as an interned string, by [`CgiKey::index`]: found with
    /// no hashing or locking (looking them up in `keys` was 4 % of a hello-world worker).
    known_keys: Vec<Py<PyString>>,
    /// The `HTTP_*` keys of uncommon header names.
    keys: Mutex<KeyCache>,
    socket_class: Py<PyAny>,
    key_input: Py<PyString>,
    key_hints: Py<PyString>,
    key_socket: Py<PyString>,
}

/// Where a request's CGI variables come from.
pub(crate) enum CgiSource<'a> {
    /// Built already (the access log reads them after the request).
    Built(&'a Environ),
    /// Written straight from the parsed request into the dict, with no owned strings.
    Parsed {
        proxy: Option<&'a ProxyInfo>,
        http: &'a HttpConfig,
    },
}

impl EnvironTemplate {
    /// The constant keys: `wsgi.version`, `wsgi.errors`, `wsgi.multithread`...
    pub(crate) fn new(py: Python<'_>, multithread: bool, multiprocess: bool) -> PyResult<Self> {
        let base = PyDict::new(py);
        base.set_item("wsgi.version", (1, 0))?;
        base.set_item("wsgi.errors", Bound::new(py, Errors)?)?;
        base.set_item("wsgi.multithread", multithread)?;
        base.set_item("wsgi.multiprocess", multiprocess)?;
        base.set_item("wsgi.run_once", false)?;
        base.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        base.set_item("wsgi.input_terminated", true)?;
        base.set_item("SERVER_SOFTWARE", SERVER_SOFTWARE)?;
        let known_keys: Vec<Py<PyString>> = CgiKey::ALL
            .iter()
            .map(|k| PyString::intern(py, k.as_str()).unbind())
            .collect();
        let key_input = PyString::intern(py, "wsgi.input");
        let key_hints = PyString::intern(py, "wsgi.early_hints");
        let key_socket = PyString::intern(py, "gunicorn.socket");
        // The keys every request sets, with None for now. A copy of a dict keeps its table's
        // size, so with them the copy has room for the request's own keys: a dict grown from
        // the 8 constant keys was resized twice per request (2 % of a hello-world worker,
        // `build_indices_unicode` and the old table's free).
        for k in ALWAYS {
            base.set_item(known_keys[k.index()].bind(py), py.None())?;
        }
        for k in [&key_input, &key_hints, &key_socket] {
            base.set_item(k, py.None())?;
        }
        Ok(EnvironTemplate {
            base: base.unbind(),
            known_keys,
            keys: Mutex::new(KeyCache::default()),
            socket_class: py.import("socket")?.getattr("socket")?.unbind(),
            key_input: key_input.unbind(),
            key_hints: key_hints.unbind(),
            key_socket: key_socket.unbind(),
        })
    }

    /// A copy of the constant keys with the CGI variables of `req` written into it (the key
    /// cache is locked at most once per request, not once per key). Err(HttpError) before
    /// anything was sent when the request cannot have an environ (a path outside
    /// `SCRIPT_NAME`; only for [`CgiSource::Parsed`], a built [`Environ`] got past that
    /// already).
    pub(crate) fn cgi_dict<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
        conn: &ConnInfo,
        source: CgiSource<'_>,
    ) -> Result<PyResult<Bound<'py, PyDict>>, HttpError> {
        let env = match self.base.bind(py).copy() {
            Ok(env) => env,
            Err(e) => return Ok(Err(e)),
        };
        let mut failed = None;
        // The fixed keys written, by `CgiKey::index` (fewer than 64 of them).
        let mut written: u64 = 0;
        {
            // Locked at the first uncommon header name, if any (most requests have none).
            let mut keys = None;
            let mut put = |k: EnvKey<'_>, v: &str| {
                if failed.is_some() {
                    return;
                }
                let key = match k {
                    // The template holds it already, with the same value.
                    EnvKey::Static(CgiKey::ServerSoftware) => return,
                    EnvKey::Static(k) => {
                        written |= 1 << k.index();
                        self.known_keys[k.index()].bind(py).clone()
                    }
                    EnvKey::Header(name) => {
                        let keys = keys.get_or_insert_with(|| {
                            self.keys.lock().unwrap_or_else(|e| e.into_inner())
                        });
                        cached_key(keys, py, name)
                    }
                };
                if let Err(e) = env.set_item(key, PyString::new(py, v)) {
                    failed = Some(e);
                }
            };
            match source {
                CgiSource::Built(vars) => {
                    for (k, v) in &vars.vars {
                        match ALWAYS.iter().find(|a| a.as_str() == k) {
                            Some(a) => put(EnvKey::Static(*a), v),
                            None => put(EnvKey::Header(k), v),
                        }
                    }
                }
                CgiSource::Parsed { proxy, http } => for_each_environ(req, conn, proxy, http, put)?,
            }
        }
        if failed.is_none() {
            // A template key this request has not (REMOTE_PORT of a unix peer) goes away.
            for k in ALWAYS {
                if written & (1 << k.index()) == 0 {
                    if let Err(e) = env.del_item(self.known_keys[k.index()].bind(py)) {
                        failed = Some(e);
                    }
                }
            }
        }
        Ok(match failed {
            Some(e) => Err(e),
            None => Ok(env),
        })
    }

    /// Writes this request's `wsgi.input`, `wsgi.early_hints` and `gunicorn.socket` into `env`
    /// (over the template's `None`); returns the socket when the bridge made it (and must close
    /// it).
    pub(crate) fn add_request_objects<'py>(
        &self,
        py: Python<'py>,
        env: &Bound<'py, PyDict>,
        exchange: &Exchange,
        conn: &ConnInfo,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let input = Input {
            exchange: exchange.clone(),
        };
        env.set_item(self.key_input.bind(py), Bound::new(py, input)?)?;
        let hints = EarlyHints {
            exchange: exchange.clone(),
        };
        env.set_item(self.key_hints.bind(py), Bound::new(py, hints)?)?;
        let own = exchange
            .lock()
            .client_socket
            .as_ref()
            .map(|s| s.clone_ref(py));
        if let Some(own) = own {
            // The connection's own socket (`Exchange::set_client_socket`): in the environ, but
            // not the bridge's to close.
            env.set_item(self.key_socket.bind(py), own)?;
            return Ok(None);
        }
        let sock = self.client_socket(py, exchange, conn);
        match &sock {
            Some(sock) => env.set_item(self.key_socket.bind(py), sock)?,
            // No socket could be made: no key (not the template's None).
            None => env.del_item(self.key_socket.bind(py))?,
        }
        Ok(sock)
    }

    /// `gunicorn.socket`: a `socket.socket` on a CLOEXEC duplicate of the client fd (closing
    /// it does not close the connection).
    fn client_socket<'py>(
        &self,
        py: Python<'py>,
        exchange: &Exchange,
        conn: &ConnInfo,
    ) -> Option<Bound<'py, PyAny>> {
        let fd = {
            let mut st = exchange.lock();
            st.transport().ok()?.as_fd().try_clone_to_owned().ok()?
        };
        self.socket_on(py, fd, &conn.local)
    }

    /// A `socket.socket` for a whole connection, made once and given to each of its requests
    /// with [`Exchange::set_client_socket`] (gunicorn's gthread passes the connection's socket
    /// object): it wraps a CLOEXEC duplicate of `fd`, so the app closing it does not close the
    /// connection. The worker must close it when the connection ends: a duplicate left open
    /// keeps the connection from being closed.
    pub(crate) fn connection_socket(
        &self,
        py: Python<'_>,
        fd: BorrowedFd<'_>,
        local: &Local,
    ) -> Option<Py<PyAny>> {
        let fd = fd.try_clone_to_owned().ok()?;
        self.socket_on(py, fd, local).map(Bound::unbind)
    }

    fn socket_on<'py>(
        &self,
        py: Python<'py>,
        fd: OwnedFd,
        local: &Local,
    ) -> Option<Bound<'py, PyAny>> {
        let family = match local {
            Local::Tcp(a) if a.is_ipv4() => libc::AF_INET,
            Local::Tcp(_) => libc::AF_INET6,
            Local::Unix(_) => libc::AF_UNIX,
        };
        let sock = self
            .socket_class
            .bind(py)
            .call1((family, libc::SOCK_STREAM, 0, fd.as_raw_fd()))
            .ok()?;
        // The Python socket object owns the duplicate now.
        let _ = fd.into_raw_fd();
        Some(sock)
    }
}

/// `k` as an interned Python string from the bridge's cache (added while the cache is small).
fn cached_key<'py>(keys: &mut KeyCache, py: Python<'py>, k: &str) -> Bound<'py, PyString> {
    if let Some(s) = keys.get(k) {
        return s.bind(py).clone();
    }
    let s = PyString::intern(py, k);
    if keys.len() < MAX_CACHED_KEYS {
        keys.insert(k.to_owned(), s.clone().unbind());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (64-bit FNV-1a).
        let cases: &[(&[u8], u64)] = &[
            (b"", 0xcbf2_9ce4_8422_2325),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ];
        for (input, want) in cases {
            let mut h = Fnv1a::default();
            h.write(input);
            assert_eq!(h.finish(), *want, "{input:?}");
        }
    }
}
