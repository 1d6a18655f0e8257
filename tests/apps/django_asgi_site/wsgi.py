"""WSGI entry point, as `django-admin startproject` writes it (the same views under -k sync)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_asgi_site.settings")

application = get_wsgi_application()
