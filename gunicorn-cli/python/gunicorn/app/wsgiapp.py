"""The ``gunicorn`` command (gunicorn's ``gunicorn.app.wsgiapp``).

``run()`` is the console script: it hands the command line to the server and exits with its
status. The master is this Python process, so the server runs the interpreter, ``sys.prefix``
and site-packages of the environment the package is installed in.
"""

import sys

from gunicorn import _native
from gunicorn.app.base import Application


class WSGIApplication(Application):
    """The application named on the command line (APP_MODULE, ``wsgi_app`` or ``--paste``);
    the server loads it itself."""

    def run(self):
        sys.exit(_native.run(sys.argv[1:]))


def run(prog=None):
    """``gunicorn [OPTIONS] [APP_MODULE]``."""
    sys.exit(_native.run(sys.argv[1:]))


if __name__ == "__main__":
    run()
