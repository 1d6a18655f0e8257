//! `start_response`, the `write()` callable it returns, and `wsgi.early_hints`
//! (PEP 3333 "The start_response() Callable", gunicorn's `wsgi.Response`).

use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use gunicorn_http::AppHead;

use super::exchange::Exchange;

/// `environ`'s `start_response(status, headers, exc_info=None)`.
#[pyclass(module = "gunicorn.http.wsgi", name = "StartResponse", frozen)]
pub struct StartResponse {
    pub(crate) exchange: Exchange,
}

/// The `write(data)` callable returned by `start_response`.
#[pyclass(module = "gunicorn.http.wsgi", name = "Write", frozen)]
pub struct WriteCallable {
    exchange: Exchange,
}

/// `environ["wsgi.early_hints"](headers)`: a 103 response before the final one.
#[pyclass(module = "gunicorn.http.wsgi", name = "EarlyHints", frozen)]
pub struct EarlyHints {
    pub(crate) exchange: Exchange,
}

/// The text of a Python `str`, borrowed (TypeError for anything else).
fn str_ref<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    match obj.cast::<PyString>() {
        Ok(s) => s.to_str(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{} is not a string",
            obj.repr()?
        ))),
    }
}

/// Calls `f(name, value)` for each pair of a header list. Like gunicorn (`for name, value in
/// headers`) any two-item sequence is a pair; tuples, the PEP 3333 form, take the fast path.
fn for_each_pair(headers: &Bound<'_, PyAny>, mut f: impl FnMut(&str, &str)) -> PyResult<()> {
    // A list or tuple (exactly: a subclass may iterate otherwise) is read by index, without
    // an iterator object.
    if let Ok(list) = headers.cast_exact::<PyList>() {
        for item in list.iter() {
            pair(&item, &mut f)?;
        }
        return Ok(());
    }
    if let Ok(tuple) = headers.cast_exact::<PyTuple>() {
        for item in tuple.iter() {
            pair(&item, &mut f)?;
        }
        return Ok(());
    }
    for item in headers.try_iter()? {
        pair(&item?, &mut f)?;
    }
    Ok(())
}

/// Calls `f(name, value)` for one item of a header list.
fn pair(item: &Bound<'_, PyAny>, f: &mut impl FnMut(&str, &str)) -> PyResult<()> {
    let not_a_pair = || {
        PyTypeError::new_err(format!(
            "header must be a (name, value) tuple, not {}",
            item.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    let (name, value) = match item.cast::<PyTuple>() {
        Ok(t) if t.len() == 2 => (t.get_item(0)?, t.get_item(1)?),
        Ok(_) => return Err(not_a_pair()),
        Err(_) if !item.is_instance_of::<PyString>() && item.len().ok() == Some(2) => {
            (item.get_item(0)?, item.get_item(1)?)
        }
        Err(_) => return Err(not_a_pair()),
    };
    f(str_ref(&name)?, str_ref(&value)?);
    Ok(())
}

/// A header list as owned `(name, value)` pairs.
fn header_list(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(headers.len().unwrap_or(4));
    for_each_pair(headers, |n, v| out.push((n.to_owned(), v.to_owned())))?;
    Ok(out)
}

/// The status and headers of `start_response` as one validated [`AppHead`], copied straight
/// from the Python strings into one buffer. A Python type error is raised where it is met; a
/// bad status or header (ValueError) only once every pair was seen to be two strings, so the
/// app gets the same error as when the whole list was converted before being validated.
/// The head is written into `buffer` (an earlier response's, its allocation reused).
fn app_head(
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    buffer: String,
) -> PyResult<AppHead> {
    let status = str_ref(status)?;
    // Room for the status line and a usual field per header ("Content-Type: text/html; ...").
    let guess = status.len() + 48 * headers.len().unwrap_or(4);
    let mut head = AppHead::reusing(status, buffer, guess);
    for_each_pair(headers, |name, value| {
        if let Ok(h) = &mut head {
            if let Err(e) = h.push(name, value) {
                head = Err(e);
            }
        }
    })?;
    head.map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<WriteCallable> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        let buffer = {
            let mut st = self.exchange.lock();
            match exc_info {
                // PEP 3333: with exc_info after the head went out, re-raise the app's error.
                Some(info) if st.reply.started() => {
                    drop(st);
                    let value = info.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
                // With exc_info before that, the new status and headers replace the old ones.
                Some(_) => {}
                None if st.response.is_some() => {
                    return Err(PyAssertionError::new_err("Response headers already set!"));
                }
                None => {}
            }
            std::mem::take(&mut st.spare_head)
        };
        let head = app_head(status, headers, buffer)?;
        self.exchange.lock().set_response(head);
        let _ = py;
        Ok(WriteCallable {
            exchange: self.exchange.clone(),
        })
    }
}

#[pymethods]
impl WriteCallable {
    /// Sends `data` at once (the head first), without the GIL.
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        if self.exchange.lock().response.is_none() {
            return Err(PyAssertionError::new_err("Response headers not set!"));
        }
        let data = bytes.as_bytes();
        let ex = &self.exchange;
        ex.blocking_io(py, || ex.lock().write_body(data, false))?;
        Ok(())
    }
}

#[pymethods]
impl EarlyHints {
    /// Writes `HTTP/1.1 103 Early Hints` with `headers`; a no-op for HTTP/1.0, for uWSGI, or
    /// once the response has started.
    fn __call__(&self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let headers = header_list(headers)?;
        let (version, started, protocol) = {
            let st = self.exchange.lock();
            (st.meta.version, st.reply.started(), st.meta.protocol)
        };
        // uWSGI (docs/uwsgi.md): nginx takes a 1xx from a uwsgi upstream for the final
        // response and passes the real head on as body; gunicorn 27 sends them all the same.
        if started || protocol == gunicorn_http::Protocol::Uwsgi {
            return Ok(());
        }
        let bytes = gunicorn_http::early_hints(version, &headers)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if let Some(bytes) = bytes {
            let ex = &self.exchange;
            ex.blocking_io(py, || ex.lock().write_raw(&bytes))?;
        }
        Ok(())
    }
}
