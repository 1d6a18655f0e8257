//! gunicorn-http: sans-IO HTTP/1.1 for a WSGI server. Never touches a socket, never Python.
#![deny(unsafe_code)]
