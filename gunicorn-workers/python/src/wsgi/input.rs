//! `wsgi.input`: the request body as a file-like object (PEP 3333 "Input and Error Streams").
//!
//! Bytes come from the connection through the sans-IO body decoder, with the GIL released
//! around every socket read. Reads never go past the body (Content-Length or the chunked
//! terminator), and EOF is always signalled (`wsgi.input_terminated`).

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::exchange::{BodyError, Exchange};

/// The request body stream (`environ["wsgi.input"]`).
#[pyclass(module = "gunicorn.http.body", name = "Body", frozen)]
pub struct Input {
    pub(crate) exchange: Exchange,
}

fn to_py_err(e: BodyError) -> PyErr {
    match e {
        BodyError::Http(e) => PyOSError::new_err(e.to_string()),
        BodyError::Io(e) => PyErr::from(e),
        BodyError::Closed => PyValueError::new_err("I/O operation on a finished request body"),
    }
}

/// `read()` fills a bytes object directly (`Input::read_into_bytes`) for Content-Length
/// bodies in this range: below it the usual path is as cheap; above it the announced length
/// is not trusted with an allocation before the bytes arrive.
const DIRECT_MIN: u64 = 64 * 1024;
const DIRECT_MAX: u64 = 4 * 1024 * 1024;

/// A size argument: None or negative means "everything".
fn limit(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

impl Input {
    /// Makes at least `want` bytes available (or the whole rest of the body), reading from the
    /// socket without the GIL only when the buffer is short.
    fn fill(&self, py: Python<'_>, want: usize) -> PyResult<()> {
        {
            let st = self.exchange.lock();
            if st.available().len() >= want || st.body_done() {
                return Ok(());
            }
        }
        let ex = &self.exchange;
        ex.blocking_io(py, || {
            let mut st = ex.lock();
            st.compact_body();
            st.fill(want)
        })
        .map_err(to_py_err)
    }

    /// Takes up to `n` available bytes as a Python bytes object.
    fn take<'py>(&self, py: Python<'py>, n: usize) -> Bound<'py, PyBytes> {
        let mut st = self.exchange.lock();
        let n = n.min(st.available().len());
        let b = PyBytes::new(py, &st.available()[..n]);
        st.consume(n);
        b
    }

    /// One line, at most `max` bytes (None = unbounded).
    fn line<'py>(&self, py: Python<'py>, max: Option<usize>) -> PyResult<Bound<'py, PyBytes>> {
        let mut want = 1;
        loop {
            self.fill(py, want)?;
            let st = self.exchange.lock();
            let avail = st.available();
            let cap = max.map_or(avail.len(), |m| m.min(avail.len()));
            if let Some(i) = avail[..cap].iter().position(|&b| b == b'\n') {
                drop(st);
                return Ok(self.take(py, i + 1));
            }
            if max.is_some_and(|m| avail.len() >= m) || st.body_done() {
                drop(st);
                return Ok(self.take(py, cap));
            }
            want = avail.len() + 1;
        }
    }

    /// Everything left in the body.
    fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let left = self.exchange.lock().length_left();
        if let Some(n) = left.filter(|n| (DIRECT_MIN..=DIRECT_MAX).contains(n)) {
            return self.read_into_bytes(py, n as usize);
        }
        self.read_pieces(py)
    }
}

impl Input {
    /// `read()` of a Content-Length body of `n` more bytes: decodes from the socket straight
    /// into one Python bytes object of that size, a read buffer at a time, instead of growing
    /// a Rust buffer to the whole body and copying it (half the memory of a large upload, one
    /// copy less). The object is ours alone until returned, so it is filled without the GIL.
    /// A client that sends less than it announced gets what came (as gunicorn returns it).
    fn read_into_bytes<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let ex = &self.exchange;
        let mut got = 0;
        let bytes = PyBytes::new_with(py, n, |buf| {
            ex.blocking_io(py, || {
                let mut st = ex.lock();
                while got < buf.len() {
                    st.fill(1)?;
                    let avail = st.available();
                    if avail.is_empty() {
                        break;
                    }
                    let k = avail.len().min(buf.len() - got);
                    buf[got..got + k].copy_from_slice(&avail[..k]);
                    st.consume(k);
                    got += k;
                }
                Ok(())
            })
            .map_err(to_py_err)
        })?;
        if got < n {
            return Ok(PyBytes::new(py, &bytes.as_bytes()[..got]));
        }
        Ok(bytes)
    }
}

impl Input {
    /// `read()` of a body of unknown size (chunked, or a Content-Length outside the direct
    /// range): the decoded body is collected one read buffer at a time, each buffer moved out
    /// of the exchange rather than appended to one growing buffer (no reallocation copies,
    /// no doubled capacity), then copied once into a bytes object of the exact size. Both
    /// the socket reads and that copy run without the GIL.
    fn read_pieces<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let ex = &self.exchange;
        let pieces = ex
            .blocking_io(py, || {
                let mut pieces: Vec<Vec<u8>> = Vec::new();
                let mut st = ex.lock();
                loop {
                    let piece = st.take_available();
                    if !piece.is_empty() {
                        pieces.push(piece);
                    }
                    if st.body_done() {
                        return Ok(pieces);
                    }
                    st.fill(1)?;
                }
            })
            .map_err(to_py_err)?;
        match pieces.as_slice() {
            [] => return Ok(PyBytes::new(py, b"")),
            [one] => return Ok(PyBytes::new(py, one)),
            _ => {}
        }
        let total = pieces.iter().map(Vec::len).sum();
        PyBytes::new_with(py, total, |buf| {
            ex.blocking_io(py, || {
                let mut at = 0;
                for piece in &pieces {
                    buf[at..at + piece.len()].copy_from_slice(piece);
                    at += piece.len();
                }
            });
            Ok(())
        })
    }
}

#[pymethods]
impl Input {
    /// `read(size=-1)`: `size` bytes, fewer only at the end of the body.
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        match limit(size) {
            None => self.read_all(py),
            Some(n) => {
                self.fill(py, n)?;
                Ok(self.take(py, n))
            }
        }
    }

    /// `readline(size=-1)`: up to and including the next `\n`, at most `size` bytes.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        match limit(size) {
            Some(0) => Ok(PyBytes::new(py, b"")),
            max => self.line(py, max),
        }
    }

    /// `readlines(hint=-1)`: lines until at least `hint` bytes were read (all with no hint).
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = limit(hint).filter(|&h| h > 0);
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.line(py, None)?;
            let n = line.as_bytes().len();
            if n == 0 {
                break;
            }
            total += n;
            lines.push(line);
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.line(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}
