"""``gunicornc``: the control socket client (gunicorn's ``gunicorn.ctl.cli``).

``main()`` hands the command line to the client built into the server's extension module and
returns its exit status.
"""

import sys

from gunicorn import _native


def main():
    """``gunicornc [-s SOCKET] [-c COMMAND] [-j] [-v]``."""
    return _native.ctl(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
