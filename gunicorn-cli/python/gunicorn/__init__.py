"""gunicorn, with its server written in Rust (the distribution ``gunicorn-rs``).

This import package keeps what gunicorn users write in Python working: ``python -m gunicorn``,
``gunicorn.__version__`` / ``version_info`` / ``SERVER``, the Custom Application API
(``gunicorn.app.base.BaseApplication``) and the PasteDeploy server runner
(``gunicorn.app.pasterapp``) and the logger class that ``--logger-class`` subclasses
(``gunicorn.glogging.Logger``). The server itself (arbiter, HTTP, workers) is the extension
module ``gunicorn._native``. Parts of gunicorn's Python package that do not exist here (its
worker classes, ``gunicorn.util``...) fail to import with an ImportError that says so;
docs/python-api.md lists what exists.
"""

import importlib.abc
import sys

from gunicorn._native import __version__

version_info = tuple(int(part) for part in __version__.split(".")[:3])
SERVER = "gunicorn"
SERVER_SOFTWARE = "%s/%s" % (SERVER, __version__)

__all__ = ["SERVER", "SERVER_SOFTWARE", "__version__", "version_info"]


class _NotProvided(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: a ``gunicorn.*`` module that no other finder found is a part
    of gunicorn's Python package that this server does not provide. Say so, instead of a bare
    ``No module named``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("gunicorn."):
            raise ModuleNotFoundError(
                "%s is not provided by gunicorn-rs (gunicorn's server written in Rust): "
                "its worker classes and internals are Rust code; see "
                "docs/python-api.md for the Python API that exists" % fullname,
                name=fullname,
            )
        return None


if not any(isinstance(f, _NotProvided) for f in sys.meta_path):
    sys.meta_path.append(_NotProvided())
