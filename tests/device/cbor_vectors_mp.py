"""MicroPython: run the shared CBOR vectors (tests/vectors/cbor.json) through lasp_edge.cbor.

    micropython -X heapsize=64K tests/device/cbor_vectors_mp.py [repo root] [bundle dir]
        [--parts]

The repo root defaults to $LASP_EDGE_ROOT, then ".". With a bundle dir (lasp_edge compiled to
.mpy by mpy-cross) the codec comes from there instead of <root>/sdk. Prints
"cbor vectors: N passed, M failed" and exits 1 on any failure. tests/test_cbor.py checks the
same file on CPython, so a pass here means both platforms write and accept the same bytes.
``--parts`` prints an empty part list: the script runs whole (see tests/device/mp_harness.py).

The codec is imported as a top-level module from the lasp_edge directory (cbor.py imports
nothing from its package at import time), so the package __init__ is loaded only with
``lasp_edge.cbor_rare``, which cbor imports on first use (the float vectors and non-ASCII
text need it). From .mpy this passes with a 64K heap; from source, compiling cbor.py alone
peaks at about 62K on the 64-bit unix port, so give it 128K or more.
"""

import gc
import json
import os
import struct
import sys
from binascii import hexlify, unhexlify

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
if "--parts" in sys.argv:
    print("parts:")
    sys.exit(0)
ROOT = ARGS[0] if ARGS else (os.getenv("LASP_EDGE_ROOT") or ".")
BASE = ARGS[1] if len(ARGS) > 1 else ROOT + "/sdk"
sys.path.insert(0, BASE)  # for lasp_edge.cbor_rare, imported by cbor on first use
sys.path.insert(0, BASE + "/lasp_edge")

import cbor  # noqa: E402

print("lasp_edge from", cbor.__file__)
gc.collect()


def from_json(v):
    """Undo the JSON wrappers described in the vector file's "comment"."""
    t = type(v)
    if t is list:
        return [from_json(x) for x in v]
    if t is not dict:
        return v
    if "$bytes" in v:
        return unhexlify(v["$bytes"])
    if "$tuple" in v:
        return tuple(from_json(x) for x in v["$tuple"])
    if "$map" in v:
        d = {}
        for kv in v["$map"]:
            d[from_json(kv[0])] = from_json(kv[1])
        return d
    f = v["$float"]
    if f == "nan":
        return float("nan")
    if f == "inf":
        return float("inf")
    if f == "-inf":
        return -float("inf")
    if f == "-0.0":
        return -0.0
    return struct.unpack(">d", unhexlify(f[2:]))[0]


def same(a, b):
    """Equal with exact types (1 is not 1.0 or True, a list is not a tuple), -0.0 is not 0.0
    and NaN equals NaN."""
    if type(a) is not type(b):
        return False
    t = type(a)
    if t is float:
        if a != a:
            return b != b
        return struct.pack(">d", a) == struct.pack(">d", b)
    if t is list or t is tuple:
        if len(a) != len(b):
            return False
        for i in range(len(a)):
            if not same(a[i], b[i]):
                return False
        return True
    if t is dict:
        if len(a) != len(b):
            return False
        for ka in a:
            if ka not in b:
                return False
            found = False
            for kb in b:
                if same(ka, kb):
                    found = True
                    break
            if not found or not same(a[ka], b[ka]):
                return False
        return True
    return a == b


passed = 0
failed = 0


def fail(kind, vec, msg):
    global failed
    failed += 1
    print("FAIL", kind, vec.get("hex", ""), vec.get("why", ""), msg)


def check_encode(vec):
    # Frees what it no longer needs as it goes: the 256-entry map vector is about the most a
    # 64K heap holds twice (as JSON and as the value) next to the codec and this script.
    value = from_json(vec.pop("value"))
    expect = from_json(vec.pop("decodes_to")) if "decodes_to" in vec else value
    data = unhexlify(vec["hex"])
    gc.collect()
    got = cbor.dumps(value)
    if got != data:
        return fail("encode", vec, "dumps gave " + cbor2hex(got))
    got = None
    pieces = []  # cbor.dump, the streaming encoder, in tiny pieces: the same bytes
    cbor.dump(value, lambda piece: pieces.append(bytes(piece)), 3)
    if b"".join(pieces) != data:
        return fail("encode", vec, "dump gave " + cbor2hex(b"".join(pieces)))
    pieces = value = None
    gc.collect()
    back = cbor.loads(data)
    if not same(back, expect):
        return fail("encode", vec, "loads gave " + repr(back))
    return True


def check_decode(vec):
    back = cbor.loads(unhexlify(vec["hex"]))
    if not same(back, from_json(vec["value"])):
        return fail("decode", vec, "loads gave " + repr(back))
    return True


def check_invalid(vec):
    try:
        back = cbor.loads(unhexlify(vec["hex"]))
    except cbor.CBORDecodeError:
        return True
    return fail("invalid", vec, "accepted as " + repr(back))


def check_encode_invalid(vec):
    try:
        data = cbor.dumps(from_json(vec["value"]))
    except cbor.CBOREncodeError:
        return True
    return fail("encode_invalid", vec, "encoded as " + cbor2hex(data))


def cbor2hex(b):
    return hexlify(b).decode()


CHECKS = {
    "encode": check_encode,
    "decode": check_decode,
    "invalid": check_invalid,
    "encode_invalid": check_encode_invalid,
}


def main():
    # The vector file keeps one vector per line (tests/test_cbor.py enforces that layout), so
    # it is read a line at a time: only one vector is ever in memory, never the whole JSON.
    global passed
    kind = None
    version = None
    seen = {}
    with open(ROOT + "/tests/vectors/cbor.json") as f:
        for line in f:
            line = line.strip().rstrip(",")
            if line.startswith('"version"'):
                version = json.loads(line.split(":", 1)[1])
            elif line.startswith('"') and line.endswith("["):
                kind = line.split('"')[1]
                if kind not in CHECKS:
                    print("cbor vectors: unknown section", kind)
                    sys.exit(1)
                seen[kind] = 0
            elif line.startswith("{") and kind is not None:
                vec = json.loads(line)
                line = None
                gc.collect()
                try:
                    ok = CHECKS[kind](vec)
                except Exception as e:  # an unexpected exception type is a failure too
                    ok = fail(kind, vec, "raised " + type(e).__name__ + ": " + str(e))
                if ok:
                    passed += 1
                seen[kind] += 1
                vec = None
                gc.collect()
    if version != 1:
        print("cbor vectors: unknown version", version)
        sys.exit(1)
    for kind in CHECKS:
        if not seen.get(kind):
            fail(kind, {}, "no vectors found")
    print("cbor vectors: %d passed, %d failed" % (passed, failed))
    if failed or not passed:
        sys.exit(1)


main()
