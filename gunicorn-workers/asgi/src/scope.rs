//! The ASGI connection scope of one parsed request (ASGI 3.0, HTTP and WebSocket spec 2.4):
//! built from the same [`Request`] the WSGI workers turn into an environ, so both see the
//! request through one parser and one set of rules.

use gunicorn_http::{latin1, percent_decode, ConnInfo, Local, Peer, ProxyInfo, Request};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// What the scope needs besides the request: settings and per-worker objects.
pub struct ScopeParts<'a, 'py> {
    /// `--root-path`.
    pub root_path: &'a str,
    /// The lifespan state dict; each request gets a shallow copy (ASGI lifespan spec).
    pub state: Option<&'a Bound<'py, PyDict>>,
}

/// Which scope to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeType {
    Http,
    WebSocket,
}

/// The scope dict for `req` on the connection `conn` (PROXY addresses from `proxy` win over
/// the socket's peer, as in the WSGI environ).
pub fn build<'py>(
    py: Python<'py>,
    kind: ScopeType,
    req: &Request,
    conn: &ConnInfo,
    proxy: Option<&ProxyInfo>,
    parts: &ScopeParts<'_, 'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let scope = PyDict::new(py);
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
    asgi.set_item(intern!(py, "spec_version"), intern!(py, "2.4"))?;
    let (type_name, scheme) = match kind {
        ScopeType::Http => (intern!(py, "http"), req.scheme),
        ScopeType::WebSocket => (
            intern!(py, "websocket"),
            if req.scheme == "https" { "wss" } else { "ws" },
        ),
    };
    scope.set_item(intern!(py, "type"), type_name)?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    scope.set_item(intern!(py, "http_version"), http_version(py, req.version))?;
    if kind == ScopeType::Http {
        scope.set_item(intern!(py, "method"), method(py, &req.method))?;
    }
    scope.set_item(intern!(py, "scheme"), scheme)?;
    scope.set_item(intern!(py, "path"), decoded_path(&req.path))?;
    scope.set_item(
        intern!(py, "raw_path"),
        PyBytes::new(py, req.path.as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, &latin1(&req.query)),
    )?;
    scope.set_item(intern!(py, "root_path"), parts.root_path)?;
    scope.set_item(intern!(py, "headers"), headers(py, req)?)?;
    scope.set_item(intern!(py, "client"), client(py, conn, proxy)?)?;
    scope.set_item(intern!(py, "server"), server(py, &conn.local)?)?;
    if let Some(state) = parts.state {
        scope.set_item(intern!(py, "state"), state.copy()?)?;
    }
    if kind == ScopeType::WebSocket {
        scope.set_item(intern!(py, "subprotocols"), subprotocols(py, req)?)?;
    } else {
        // The extensions this server implements: HTTP trailers (`trailers: True` in
        // http.response.start, then http.response.trailers) and path send.
        let extensions = PyDict::new(py);
        extensions.set_item(intern!(py, "http.response.trailers"), PyDict::new(py))?;
        extensions.set_item(intern!(py, "http.response.pathsend"), PyDict::new(py))?;
        scope.set_item(intern!(py, "extensions"), extensions)?;
    }
    Ok(scope)
}

/// `"1.1"` / `"1.0"`.
fn http_version(py: Python<'_>, version: (u8, u8)) -> Bound<'_, pyo3::types::PyString> {
    match version {
        (1, 1) => intern!(py, "1.1").clone(),
        (1, 0) => intern!(py, "1.0").clone(),
        (2, _) => intern!(py, "2").clone(),
        (major, minor) => pyo3::types::PyString::new(py, &format!("{major}.{minor}")),
    }
}

/// Common methods as interned strings (one object for every request), others as given.
fn method<'py>(py: Python<'py>, m: &str) -> Bound<'py, pyo3::types::PyString> {
    match m {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        "PUT" => intern!(py, "PUT").clone(),
        "DELETE" => intern!(py, "DELETE").clone(),
        other => pyo3::types::PyString::new(py, other),
    }
}

/// `path`: the raw path percent-decoded, then read as UTF-8 (ASGI: "percent-decoded, UTF-8
/// string"); bytes that are not UTF-8 become U+FFFD rather than failing the request.
pub fn decoded_path(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_string();
    }
    String::from_utf8_lossy(&percent_decode(&latin1(raw))).into_owned()
}

/// `headers`: `[name, value]` pairs of bytes, names lower-cased, in arrival order (ASGI).
fn headers<'py>(py: Python<'py>, req: &Request) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in req.headers.iter() {
        let name = PyBytes::new_with(py, name.len(), |buf| {
            for (dst, src) in buf.iter_mut().zip(name.bytes()) {
                *dst = src.to_ascii_lowercase();
            }
            Ok(())
        })?;
        let value = PyBytes::new(py, &latin1(value));
        list.append(PyTuple::new(py, [name.into_any(), value.into_any()])?)?;
    }
    Ok(list)
}

/// `client`: the PROXY header's source when the connection had one, else the socket's peer;
/// None for a unix-socket peer.
fn client<'py>(
    py: Python<'py>,
    conn: &ConnInfo,
    proxy: Option<&ProxyInfo>,
) -> PyResult<Bound<'py, PyAny>> {
    let addr = match (proxy.and_then(|p| p.client), &conn.peer) {
        (Some(a), _) => Some(a),
        (None, Peer::Tcp(a)) => Some(*a),
        (None, Peer::Unix) => None,
    };
    match addr {
        Some(a) => Ok((a.ip().to_string(), a.port()).into_pyobject(py)?.into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// `server`: the listener's address, or `[path, None]` for a unix socket (ASGI).
fn server<'py>(py: Python<'py>, local: &Local) -> PyResult<Bound<'py, PyAny>> {
    match local {
        Local::Tcp(a) => Ok((a.ip().to_string(), a.port()).into_pyobject(py)?.into_any()),
        Local::Unix(path) => Ok((path.as_str(), py.None()).into_pyobject(py)?.into_any()),
    }
}

/// `subprotocols` of a WebSocket scope: `Sec-WebSocket-Protocol`'s comma list, in order.
fn subprotocols<'py>(py: Python<'py>, req: &Request) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in req.headers.iter() {
        if name == "SEC-WEBSOCKET-PROTOCOL" {
            for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                list.append(p)?;
            }
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded_as_utf8() {
        let cases = [
            ("/", "/"),
            ("/a%20b", "/a b"),
            ("/caf%C3%A9", "/café"),
            ("/%E2%82%AC/x", "/€/x"),
            // Not an escape: kept as it is.
            ("/100%", "/100%"),
            ("/%zz", "/%zz"),
            ("/%4", "/%4"),
            // Not UTF-8 once decoded: replaced, never an error.
            ("/%FF", "/\u{FFFD}"),
            ("/a%2Fb", "/a/b"),
        ];
        for (raw, want) in cases {
            assert_eq!(decoded_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn latin1_values_become_their_bytes() {
        assert_eq!(latin1("abc"), b"abc");
        assert_eq!(latin1("caf\u{e9}"), b"caf\xe9");
    }
}
