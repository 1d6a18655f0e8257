"""gunicorn's Custom Application API.

The recipe from gunicorn's documentation works unchanged::

    class StandaloneApplication(gunicorn.app.base.BaseApplication):
        def __init__(self, app, options=None):
            self.options = options or {}
            self.application = app
            super().__init__()

        def load_config(self):
            for key, value in self.options.items():
                if key in self.cfg.settings and value is not None:
                    self.cfg.set(key.lower(), value)

        def load(self):
            return self.application

    StandaloneApplication(app, {"bind": "127.0.0.1:8080", "workers": 4}).run()

``run()`` starts this server's arbiter with the settings (and server hooks) set on ``self.cfg``;
each worker gets its application from ``self.wsgi()``, which calls ``load()`` once per process
(in the master with ``preload_app``), as in gunicorn. ``run()`` does not return: the process
exits with the server's status, as gunicorn's ``Arbiter.run()`` does.
"""

import sys

from gunicorn import _native
from gunicorn.config import Config


class BaseApplication:
    """An application with its own configuration: subclasses write ``load_config()`` and
    ``load()``."""

    def __init__(self, usage=None, prog=None):
        self.usage = usage
        self.cfg = None
        self.callable = None
        self.prog = prog
        self.logger = None
        self.do_load_config()

    def do_load_config(self):
        """Loads the default configuration, then the subclass's."""
        try:
            self.load_default_config()
            self.load_config()
        except Exception as e:  # gunicorn: print the error and exit 1
            print("\nError: %s" % str(e), file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)

    def load_default_config(self):
        self.cfg = Config(self.usage, prog=self.prog)

    def init(self, parser, opts, args):
        raise NotImplementedError

    def load(self):
        raise NotImplementedError

    def load_config(self):
        """Sets ``self.cfg``; subclasses override it."""
        raise NotImplementedError

    def reload(self):
        self.do_load_config()

    def wsgi(self):
        if self.callable is None:
            self.callable = self.load()
        return self.callable

    def run(self):
        sys.exit(_native.run_application(self.cfg.namespace(), self.wsgi))


class Application(BaseApplication):
    """An application that also reads gunicorn's command line, ``$GUNICORN_CMD_ARGS`` and config
    file. The settings returned by ``init(parser, opts, args)`` (called with ``None, None`` and
    the command line's words) and set on ``self.cfg`` rank below those sources, as in gunicorn."""

    def load_config(self):
        extra = self.init(None, None, sys.argv[1:])
        if extra:
            for key, value in extra.items():
                self.cfg.set(key.lower(), value)

    def init(self, parser, opts, args):
        return None

    def run(self):
        status = _native.run_application(self.cfg.namespace(), self.wsgi, sys.argv[1:])
        sys.exit(status)
