import asyncio

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request, name):
    """A sync view: Django runs it in a thread under ASGI."""
    return JsonResponse({
        "hello": name,
        "q": request.GET.get("q"),
        "script_name": request.META.get("SCRIPT_NAME"),
        "path": request.path,
    })


async def slow(request):
    """An async view awaiting on the loop."""
    await asyncio.sleep(0.05)
    return HttpResponse("async ok", content_type="text/plain")


@csrf_exempt
def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")
