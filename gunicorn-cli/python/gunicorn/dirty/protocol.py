"""The messages between web workers, the dirty arbiter and the dirty workers.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON: one message, a dict
with a ``type``. Values are JSON's (``None``, bools, ints, floats, strings, lists, dicts with
string keys) plus ``bytes`` (sent as ``{"__bytes__": base64}``); tuples arrive as lists, as
with gunicorn's own encoding. This framing is ours: only this package's client talks to this
package's arbiter, so it need not match gunicorn's bytes on the wire.

Message types:

- ``request``: ``id``, ``app_path``, ``action``, ``args``, ``kwargs``
- ``response``: ``id``, ``result``
- ``error``: ``id``, ``error`` (``DirtyError.to_dict()``)
- ``chunk``: ``id``, ``data`` (one item of a streamed result); ``end``: ``id`` (the last)
- ``stash``: ``id``, ``op``, ``table``, ``key``, ``value``, ``pattern`` (answered by the arbiter)
- ``status``: ``id`` -> a ``response`` with gunicorn's ``show dirty`` dict (answered by the arbiter)
- ``manage``: ``id``, ``op`` (``add`` / ``remove``), ``count`` -> a ``response`` with gunicorn's
  ``dirty add`` / ``dirty remove`` result
"""

import base64
import json
import struct

from .errors import DirtyProtocolError

MSG_TYPE_REQUEST = "request"
MSG_TYPE_RESPONSE = "response"
MSG_TYPE_ERROR = "error"
MSG_TYPE_CHUNK = "chunk"
MSG_TYPE_END = "end"
MSG_TYPE_STASH = "stash"
MSG_TYPE_STATUS = "status"
MSG_TYPE_MANAGE = "manage"

# A frame larger than this is refused (a corrupt length must not make us allocate gigabytes).
MAX_MESSAGE_SIZE = 256 * 1024 * 1024

_HEADER = struct.Struct(">I")


def _default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError("%s is not serializable" % type(value).__name__)


def _hook(obj):
    if len(obj) == 1 and "__bytes__" in obj:
        return base64.b64decode(obj["__bytes__"])
    return obj


def encode(message):
    """One frame for ``message``; ``DirtyProtocolError`` when a value cannot be sent."""
    try:
        body = json.dumps(message, default=_default, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise DirtyProtocolError("Cannot encode message: %s" % e) from None
    if len(body) > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError("Message too large: %d bytes" % len(body))
    return _HEADER.pack(len(body)) + body


def decode(body):
    try:
        message = json.loads(body.decode("utf-8"), object_hook=_hook)
    except (UnicodeDecodeError, ValueError) as e:
        raise DirtyProtocolError("Cannot decode message: %s" % e, raw_data=body) from None
    if not isinstance(message, dict):
        raise DirtyProtocolError("Message is not a dict", raw_data=body)
    return message


def _length(header):
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError("Message too large: %d bytes" % size)
    return size


def _recv_exactly(sock, n):
    chunks = []
    while n:
        data = sock.recv(min(n, 1 << 20))
        if not data:
            raise ConnectionError("connection closed by the dirty arbiter")
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def write_message(sock, message):
    sock.sendall(encode(message))


def read_message(sock):
    size = _length(_recv_exactly(sock, _HEADER.size))
    return decode(_recv_exactly(sock, size))


async def write_message_async(writer, message):
    writer.write(encode(message))
    await writer.drain()


async def read_message_async(reader):
    """Raises ``asyncio.IncompleteReadError`` at a clean end of stream."""
    size = _length(await reader.readexactly(_HEADER.size))
    return decode(await reader.readexactly(size))


def make_request(request_id, app_path, action, args=(), kwargs=None):
    return {"type": MSG_TYPE_REQUEST, "id": request_id, "app_path": app_path,
            "action": action, "args": list(args), "kwargs": dict(kwargs or {})}


def make_response(request_id, result):
    return {"type": MSG_TYPE_RESPONSE, "id": request_id, "result": result}


def make_error_response(request_id, error):
    if not hasattr(error, "to_dict"):
        from .errors import DirtyError
        error = DirtyError(str(error))
    return {"type": MSG_TYPE_ERROR, "id": request_id, "error": error.to_dict()}


def make_chunk(request_id, data):
    return {"type": MSG_TYPE_CHUNK, "id": request_id, "data": data}


def make_end(request_id):
    return {"type": MSG_TYPE_END, "id": request_id}


class DirtyProtocol:
    """The same functions under gunicorn's class names, for code that used them."""

    MSG_TYPE_REQUEST = MSG_TYPE_REQUEST
    MSG_TYPE_RESPONSE = MSG_TYPE_RESPONSE
    MSG_TYPE_ERROR = MSG_TYPE_ERROR
    MSG_TYPE_CHUNK = MSG_TYPE_CHUNK
    MSG_TYPE_END = MSG_TYPE_END
    MSG_TYPE_STASH = MSG_TYPE_STASH
    MSG_TYPE_STATUS = MSG_TYPE_STATUS
    MSG_TYPE_MANAGE = MSG_TYPE_MANAGE
    write_message = staticmethod(write_message)
    read_message = staticmethod(read_message)
    write_message_async = staticmethod(write_message_async)
    read_message_async = staticmethod(read_message_async)
