//! Sending what the application returned (PEP 3333): a list or tuple, any iterable, or a
//! `wsgi.file_wrapper` with sendfile(2); the body never before `start_response`, and the
//! iterable's `close()` always called.

use std::io;

use gunicorn_core::{log_debug, log_error};
use pyo3::exceptions::{PyAssertionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::exchange::{Exchange, State};
use super::file_wrapper::FileWrapper;

/// Whether body bytes may be sent now: the client is still there and the app called
/// `start_response` (PEP 3333: no body before the status). Checked under the same lock as
/// the write that follows (one lock per chunk, not two).
fn sendable(st: &State) -> Result<(), SendError> {
    if st.write_failed {
        return Err(SendError::Client(io::ErrorKind::BrokenPipe.into()));
    }
    if st.response.is_none() {
        return Err(SendError::App(PyAssertionError::new_err(
            "Response headers not set!",
        )));
    }
    Ok(())
}

/// Why sending the response stopped.
pub(crate) enum SendError {
    /// The app (or its iterable) raised, or broke the WSGI rules.
    App(PyErr),
    /// The client is gone.
    Client(io::Error),
}

/// Sends the `n` items of a list or tuple, telling `send_chunk` which one is last so a
/// one-chunk response leaves in a single write with its head.
fn send_sequence<'py>(
    py: Python<'py>,
    n: usize,
    item: impl Fn(usize) -> PyResult<Bound<'py, PyAny>>,
    exchange: &Exchange,
) -> Result<(), SendError> {
    for i in 0..n {
        let chunk = item(i).map_err(SendError::App)?;
        send_chunk(py, &chunk, exchange, i + 1 == n)?;
    }
    if n == 0 {
        finish(py, exchange)?;
    }
    Ok(())
}

/// Sends what the app returned; a `wsgi.file_wrapper` over a real file with sendfile(2)
/// when `use_sendfile` (`--no-sendfile` turns it off).
pub(crate) fn send(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    exchange: &Exchange,
    use_sendfile: bool,
) -> Result<(), SendError> {
    if let Ok(wrapper) = iterable.cast::<FileWrapper>() {
        if use_sendfile && sendfile(py, wrapper.get(), exchange)? {
            return Ok(());
        }
    }
    // A list or tuple (the common case): the last chunk and the end of the body go out in
    // the same write as the head for one-chunk responses.
    if let Ok(list) = iterable.cast::<PyList>() {
        return send_sequence(py, list.len(), |i| list.get_item(i), exchange);
    }
    if let Ok(tuple) = iterable.cast::<PyTuple>() {
        return send_sequence(py, tuple.len(), |i| tuple.get_item(i), exchange);
    }
    for item in iterable.try_iter().map_err(SendError::App)? {
        let item = item.map_err(SendError::App)?;
        send_chunk(py, &item, exchange, false)?;
    }
    finish(py, exchange)
}

/// Sends one body chunk; `last` also ends the response.
fn send_chunk(
    py: Python<'_>,
    item: &Bound<'_, PyAny>,
    exchange: &Exchange,
    last: bool,
) -> Result<(), SendError> {
    let bytes = item.cast::<PyBytes>().map_err(|_| {
        SendError::App(PyTypeError::new_err(format!(
            "response body items must be bytes, not {}",
            item.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )))
    })?;
    let data = bytes.as_bytes();
    // Nothing to send: an empty chunk would end a chunked body early.
    if data.is_empty() && !last {
        return sendable(&exchange.lock());
    }
    exchange.blocking_io(py, || {
        let mut st = exchange.lock();
        sendable(&st)?;
        st.write_body(data, last).map_err(SendError::Client)
    })
}

/// Ends the response (head if not yet sent, chunked terminator).
fn finish(py: Python<'_>, exchange: &Exchange) -> Result<(), SendError> {
    exchange.blocking_io(py, || {
        let mut st = exchange.lock();
        sendable(&st)?;
        st.finish().map_err(SendError::Client)
    })
}

/// Sends a `wsgi.file_wrapper` with sendfile(2). False when the wrapped object has no
/// real file descriptor or the transport encrypts (the caller then iterates it).
fn sendfile(py: Python<'_>, wrapper: &FileWrapper, exchange: &Exchange) -> Result<bool, SendError> {
    if !exchange.lock().passthrough() {
        return Ok(false);
    }
    let file = wrapper.filelike.bind(py);
    let fd: i32 = match file
        .call_method0(pyo3::intern!(py, "fileno"))
        .and_then(|r| r.extract())
    {
        Ok(fd) if fd >= 0 => fd,
        _ => return Ok(false),
    };
    let os = py.import("os").map_err(SendError::App)?;
    let stat = os.call_method1("fstat", (fd,));
    let size: i64 = match stat.and_then(|s| s.getattr("st_size")?.extract()) {
        Ok(size) => size,
        Err(_) => return Ok(false),
    };
    // The position of the Python file object (tell() accounts for its read buffer).
    let offset: i64 = match file.call_method0(pyo3::intern!(py, "tell")) {
        Ok(pos) => pos.extract().map_err(SendError::App)?,
        Err(_) => os
            .call_method1("lseek", (fd, 0, 1))
            .and_then(|p| p.extract())
            .map_err(SendError::App)?,
    };
    let (count, no_body) = {
        let st = exchange.lock();
        let Some(resp) = st.response.as_ref() else {
            return Err(SendError::App(PyAssertionError::new_err(
                "Response headers not set!",
            )));
        };
        let available = (size - offset).max(0) as u64;
        let count = resp
            .remaining_length()
            .map_or(available, |n| n.min(available));
        let no_body = st.meta.is_head || matches!(resp.status, 100..=199 | 204 | 304);
        (count, no_body)
    };
    let count = if no_body { 0 } else { count };
    exchange
        .blocking_io(py, || exchange.lock().send_file(fd, offset, count))
        .map_err(SendError::Client)?;
    Ok(true)
}

/// Calls `iterable.close()` if it has one.
pub(crate) fn close_iterable(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    let close = pyo3::intern!(py, "close");
    // Lists and tuples (the common case) have no close().
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    if iterable.hasattr(close)? {
        iterable.call_method0(close)?;
    }
    Ok(())
}

/// gunicorn logs a vanished client at debug level only.
pub(crate) fn log_client_gone(e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionReset => log_debug!("Ignoring connection reset"),
        io::ErrorKind::NotConnected => log_debug!("Ignoring socket not connected"),
        io::ErrorKind::BrokenPipe => log_debug!("Ignoring EPIPE"),
        _ => log_error!("Socket error processing request: {e}"),
    }
}
