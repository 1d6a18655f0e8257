#!/bin/sh
# Seeds fuzz/corpus/<target>/ from tests/requests (the .http files decoded to raw bytes, each
# prefixed with a settings byte of 0). Needs python3. Run from the repository root.
set -eu
for target in head_parser environ_builder chunked_decoder; do
    mkdir -p "fuzz/corpus/$target"
done
python3 - <<'PY'
import glob, os, re
def unescape(t):
    t = t.replace("\r", "").replace("\n", "")
    out, i = bytearray(), 0
    while i < len(t):
        c = t[i]
        if c != "\\":
            out += c.encode("latin-1"); i += 1; continue
        e = t[i + 1]; i += 2
        if e in "rnt0\\":
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}[e]
        elif e == "x":
            out.append(int(t[i:i + 2], 16)); i += 2
        elif e == "*":
            m = re.match(r"(\d+)\((.)\)", t[i:]); out += m.group(2).encode() * int(m.group(1)); i += m.end()
    return bytes(out)
for path in glob.glob("tests/requests/*/*.http"):
    data = b"\0" + unescape(open(path, encoding="latin-1").read())
    name = os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path)[:-5]
    for target in ("head_parser", "environ_builder"):
        open(f"fuzz/corpus/{target}/{name}", "wb").write(data)
    body = data.split(b"\r\n\r\n", 1)
    if len(body) == 2 and body[1]:
        open(f"fuzz/corpus/chunked_decoder/{name}", "wb").write(b"\0" + body[1])
PY
# h2_server: a few well-formed HTTP/2 exchanges after the preface (GET, POST with a body, a
# reset stream, CONTINUATION, PING and WINDOW_UPDATE), so mutations start from real frames.
mkdir -p fuzz/corpus/h2_server
python3 - <<'PY'
def frame(kind, flags, stream, payload):
    n = len(payload)
    return bytes([n >> 16 & 255, n >> 8 & 255, n & 255, kind, flags]) + stream.to_bytes(4, "big") + payload
def lit(s):
    return bytes([len(s)]) + s
get = bytes([0x82, 0x86, 0x04]) + lit(b"/a?b=1") + bytes([0x01]) + lit(b"h2.example")
post = bytes([0x83, 0x86, 0x04]) + lit(b"/up") + bytes([0x01]) + lit(b"x") + bytes([0x0f, 0x0d]) + lit(b"5")
settings = frame(4, 0, 0, b"")
seeds = {
    "get": settings + frame(1, 5, 1, get),
    "post": settings + frame(1, 4, 3, post) + frame(0, 1, 3, b"hello"),
    "reset": settings + frame(1, 5, 1, get) + frame(1, 5, 3, get) + frame(3, 0, 3, (8).to_bytes(4, "big")),
    "continuation": settings + frame(1, 1, 1, get[:4]) + frame(9, 4, 1, get[4:]),
    "ping": settings + frame(6, 0, 0, b"12345678") + frame(8, 0, 0, (1000).to_bytes(4, "big")),
}
for name, data in seeds.items():
    open(f"fuzz/corpus/h2_server/seed_{name}", "wb").write(data)
PY
