"""A Django JSON view: one URL, `JsonResponse`, Django's default middleware that needs no
database (security, common, clickjacking), DEBUG off, as a small production view runs."""
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    INSTALLED_APPS=[],
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def index(request):
    return JsonResponse({"message": "Hello, World!", "items": list(range(10))})


urlpatterns = [path("", index)]

app = get_wsgi_application()
