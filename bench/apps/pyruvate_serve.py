"""Runs an app module under pyruvate: python pyruvate_serve.py MODULE:VAR PORT [THREADS]
(one process; pyruvate's worker threads run the app, 4 by default as our gthread runs)."""
import importlib
import sys

import pyruvate

module, var = sys.argv[1].split(":")
app = getattr(importlib.import_module(module), var)
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
pyruvate.serve(app, f"127.0.0.1:{sys.argv[2]}", threads)
