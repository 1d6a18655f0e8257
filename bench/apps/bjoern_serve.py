"""Runs an app module under bjoern: python bjoern_serve.py MODULE:VAR PORT (one process)."""
import importlib
import sys

import bjoern

module, var = sys.argv[1].split(":")
app = getattr(importlib.import_module(module), var)
bjoern.run(app, "127.0.0.1", int(sys.argv[2]))
