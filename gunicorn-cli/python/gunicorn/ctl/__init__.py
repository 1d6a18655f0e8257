"""The control interface (gunicorn 25.1+): the server's control socket and ``gunicornc``.

The client is the server's own (Rust, in ``gunicorn._native``); ``gunicorn.ctl.cli.main`` is
the ``gunicornc`` console script.
"""
