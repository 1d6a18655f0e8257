"""The TLS view of a request as JSON: wsgi.url_scheme, HTTPS and the SSL_* keys (absent ones
left out), and the request body's length and SHA-256 (for large uploads over TLS)."""
import hashlib
import json

KEYS = (
    "wsgi.url_scheme",
    "HTTPS",
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
    "SSL_CLIENT_S_DN",
    "SSL_CLIENT_I_DN",
)


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    data = {key: environ[key] for key in KEYS if key in environ}
    data["body_length"] = len(body)
    data["body_sha256"] = hashlib.sha256(body).hexdigest()
    out = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
