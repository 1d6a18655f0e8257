# Serves the `gunicorn.dirty` modules built into the server (see dirty.rs), and a minimal
# `gunicorn` package when none is installed (the Rust binary), so that apps can
# `from gunicorn.dirty import get_dirty_client` whichever way the server was installed.
# Executed by dirty.rs as the module "_gunicorn_dirty_importer"; `install(sources, version)`.

import importlib.abc
import importlib.machinery
import importlib.util
import sys


class _BuiltinDirty(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, sources, version):
        self.sources = dict(sources)
        self.version = version

    def _is_package(self, name):
        return name == "gunicorn" or (name + ".__init__") in self.sources

    def _source(self, name):
        if name == "gunicorn":
            return ("__version__ = %r\n"
                    "version_info = tuple(int(p) for p in __version__.split('.')[:3])\n"
                    "SERVER = 'gunicorn'\n"
                    "SERVER_SOFTWARE = 'gunicorn/%%s' %% __version__\n" % self.version)
        if self._is_package(name):
            return self.sources[name + ".__init__"]
        return self.sources[name]

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "gunicorn":
            # An installed gunicorn package (ours, from pip) is the real one.
            if importlib.machinery.PathFinder.find_spec("gunicorn") is not None:
                return None
        elif fullname not in self.sources and (fullname + ".__init__") not in self.sources:
            return None
        return importlib.util.spec_from_loader(
            fullname, self, origin="<gunicorn-rs built-in %s>" % fullname,
            is_package=self._is_package(fullname))

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__spec__.name
        code = compile(self._source(name), module.__spec__.origin, "exec")
        exec(code, module.__dict__)


def install(sources, version):
    if any(isinstance(f, _BuiltinDirty) or type(f).__name__ == "_BuiltinDirty"
           for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _BuiltinDirty(sources, version))
