//! gunicorn-python: embedded CPython for the workers.
