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
