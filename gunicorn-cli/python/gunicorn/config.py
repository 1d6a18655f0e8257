"""``gunicorn.config``: the settings an embedding program sets before ``run()``.

gunicorn's ``Config`` holds every setting as a ``Setting`` object in ``cfg.settings`` and is
changed with ``cfg.set(name, value)``; the Custom Application recipe relies on exactly that.
Here the table of settings comes from the server (``gunicorn._native.settings()``), so the names
are the server's own; values are checked by the server when it starts, with the same messages
as a config file's.
"""

import ast

from gunicorn import _native


class ConfigError(Exception):
    """gunicorn's exception for a bad configuration."""


class Setting:
    """One setting: its name, its value as set (or its default)."""

    def __init__(self, name, default_text=None, is_hook=False):
        self.name = name
        self.is_hook = is_hook
        self.value = None
        self._is_set = False
        self._default_text = default_text

    def set(self, value):
        self.value = value
        self._is_set = True

    def get(self):
        if self._is_set:
            return self.value
        return self.default

    @property
    def default(self):
        if self.is_hook or self._default_text is None:
            return None
        text = self._default_text
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return {"true": True, "false": False, "": None}.get(text, text)

    def __repr__(self):
        return "<Setting %s=%r>" % (self.name, self.get())


class Config:
    """The settings of one application, as gunicorn's ``Config``."""

    def __init__(self, usage=None, prog=None):
        self.usage = usage
        self.prog = prog
        self.settings = {}
        for name, default_text in _native.settings():
            self.settings[name] = Setting(name, default_text)
        for name in _native.hooks():
            self.settings[name] = Setting(name, is_hook=True)

    def set(self, name, value):
        if name not in self.settings:
            raise AttributeError("No configuration setting for: %s" % name)
        self.settings[name].set(value)

    def get(self, name):
        if name not in self.settings:
            raise AttributeError("No configuration setting for: %s" % name)
        return self.settings[name].get()

    def __getattr__(self, name):
        settings = self.__dict__.get("settings")
        if settings is None or name not in settings:
            raise AttributeError("No configuration setting for: %s" % name)
        return settings[name].get()

    def namespace(self):
        """The settings and hooks that were set, as the server reads a config file's names."""
        return {name: s.value for name, s in self.settings.items() if s._is_set}
