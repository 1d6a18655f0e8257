//! An awaitable that is already complete: what `receive()` and `send()` return when they need
//! not wait (the common case: the body is at hand, the transport accepts the bytes). Awaiting
//! it finishes at once with its value, without an asyncio Future, a callback or a trip through
//! the event loop. When they must wait, they return an asyncio Future instead.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

#[pyclass(module = "gunicorn_asgi", name = "Ready", frozen, freelist = 64)]
pub struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    /// Awaiting it gives `None` (`send()`).
    pub fn none() -> Ready {
        Ready { value: None }
    }

    /// Awaiting it gives `value` (`receive()`).
    pub fn with(value: Py<PyAny>) -> Ready {
        Ready { value: Some(value) }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The first step ends the await: `StopIteration(value)` carries the result (PEP 380).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match &self.value {
            None => Ok(None),
            Some(v) => Err(PyStopIteration::new_err((v.clone_ref(py),))),
        }
    }

    /// `coroutine.send(None)` as a generator-based awaiter may call it.
    fn send(&self, py: Python<'_>, _value: Py<PyAny>) -> PyResult<Option<Py<PyAny>>> {
        self.__next__(py)
    }

    /// An exception thrown into the await (a task cancelled at this point) is raised back.
    #[pyo3(signature = (exc, _value=None, _tb=None))]
    fn throw(
        &self,
        exc: Bound<'_, PyAny>,
        _value: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if exc.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            return Err(PyErr::from_value(exc));
        }
        Err(PyErr::from_value(exc.call0()?))
    }

    fn close(&self) {}
}
