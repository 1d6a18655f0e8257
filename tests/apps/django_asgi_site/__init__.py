"""A small Django project served through its asgi.py (the asgi worker's framework tests)."""
