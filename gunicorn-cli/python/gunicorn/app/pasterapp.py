"""PasteDeploy support (gunicorn's ``gunicorn.app.pasterapp``).

``gunicorn --paste development.ini`` loads the application with ``paste.deploy.loadapp`` in the
server itself. This module is the other direction: the ``paste.server_runner`` entry point
``main`` of the ``gunicorn-rs`` distribution, so that an ini file's server section::

    [server:main]
    use = egg:gunicorn-rs#main
    host = 127.0.0.1
    port = 6543
    workers = 4

runs this server from ``pserve`` or Zope's ``runwsgi`` (gunicorn's own ini files say
``egg:gunicorn#main``; only the distribution name changes).
"""

import configparser
import importlib
import os
import runpy

from gunicorn.app.base import BaseApplication


def has_logging_config(config_file):
    parser = configparser.ConfigParser()
    parser.read([config_file])
    return parser.has_section("loggers")


def serve(app, global_conf, **local_conf):
    """A paste.server_runner: serve ``app`` with the settings of the server section.

    ``host`` and ``port`` make ``bind``; ``config`` names a gunicorn config file (else
    ``./gunicorn.conf.py`` is read when present); every other key is a gunicorn setting
    (``workers``, ``worker_class``, ``timeout``...). The ini's ``[loggers]`` configure logging.
    """
    config_file = global_conf["__file__"]
    gunicorn_config_file = local_conf.pop("config", None)
    host = local_conf.pop("host", "")
    port = local_conf.pop("port", "")
    if host and port:
        local_conf["bind"] = "%s:%s" % (host, port)
    elif host:
        local_conf["bind"] = host.split(",")

    class PasterServerApplication(BaseApplication):
        # gunicorn's order: the ini's logging, then the gunicorn config file, then the server
        # section's keys, which win. pserve's own command line is not the server's to parse.
        def load_config(self):
            self.cfg.set("proc_name", config_file)
            if has_logging_config(config_file):
                self.cfg.set("logconfig", config_file)
            path = gunicorn_config_file or default_config_file()
            if path:
                load_config_file(self.cfg, path)
            for key, value in local_conf.items():
                if value is not None:
                    self.cfg.set(key.lower(), value)

        def load(self):
            return app

    PasterServerApplication().run()


def default_config_file():
    """``./gunicorn.conf.py`` when it exists (gunicorn's ``get_default_config_file``)."""
    path = os.path.join(os.getcwd(), "gunicorn.conf.py")
    return path if os.path.exists(path) else None


def load_config_file(cfg, spec):
    """Runs a gunicorn config file (``PATH``, ``file:PATH`` or ``python:MODULE``, as ``-c``
    takes it) and sets on ``cfg`` each of its names that is a setting or a server hook, as
    gunicorn's ``load_config_from_file`` does."""
    if spec.startswith("python:"):
        namespace = vars(importlib.import_module(spec[len("python:"):]))
    else:
        path = spec[len("file:"):] if spec.startswith("file:") else spec
        if not os.path.exists(path):
            raise RuntimeError("%r doesn't exist" % path)
        namespace = runpy.run_path(path, run_name="__config__")
    for key, value in namespace.items():
        if key in cfg.settings and value is not None:
            cfg.set(key, value)
