"""Replay the shared CRDT vectors (tests/vectors/crdt.json), on CPython and MicroPython.

A vector is data: explicit mutator calls, and the value and wire bytes they must produce.
``replay`` computes those afresh; ``check_vector`` compares them with what the vector
records. The generator (tests/vectors/make_crdt_vectors.py), the CPython test
(tests/test_crdt_vectors.py, through ``crdt_laws.check_vector``) and the device script
(tests/device/crdt_vectors_mp.py) all run this one module.

It is separate from ``crdt_ops`` (random histories) and ``crdt_laws`` (the lattice laws)
so that a device process replaying vectors loads only this code and the one CRDT type it
checks: on a 64 KB heap every module counts.

This module is portable: no typing, dataclasses or f-strings, and no reliance on dict order.
"""

from lasp_edge import cbor, wire
from lasp_edge.crdts.registry import type_for


def _canon(x):
    b = cbor.dumps(x)
    return (len(b), b)


def plain(v):
    """``value()`` output as JSON data, the same on every platform.

    Sets become ``{"$set": [...]}`` and maps ``{"$map": [[k, v], ...]}``, both in canonical
    CBOR order of their elements; tuples become lists; bytes ``{"$bytes": hex}``. Floats
    stay floats (vectors use only exactly representable ones).
    """
    t = type(v)
    if t is set:
        return {"$set": [plain(e) for e in sorted(v, key=_canon)]}
    if t is dict:
        return {"$map": [[plain(k), plain(v[k])] for k in sorted(v, key=_canon)]}
    if t is list or t is tuple:
        return [plain(e) for e in v]
    if t is bytes:
        return {"$bytes": v.hex()}
    return v


def unplain(x):
    """Inverse of ``plain`` for op arguments: lists become tuples (hashable elements)."""
    t = type(x)
    if t is list:
        return tuple(unplain(e) for e in x)
    if t is dict:
        if "$bytes" in x:
            return bytes.fromhex(x["$bytes"])
        if "$list" in x:
            return [unplain(e) for e in x["$list"]]
        raise ValueError("unknown JSON wrapper: %r" % (x,))
    return x


def apply_call(state, call):
    """Run one explicit call ``[method, arg, ...]`` (JSON data) on ``state``; return delta."""
    args = [unplain(a) for a in call[1:]]
    return getattr(state, call[0])(*args)


def replay(vec):
    """Run one vector's calls; return what the vector records, computed afresh.

    Returns a dict with ``deltas`` (hex per call, None for merge/deliver), ``states`` (hex
    of each replica), ``join`` (hex of the join of all replicas) and ``value`` (``plain``
    value of that join). See tests/vectors/README.md for the call forms.
    """
    cls = type_for(vec["type"])
    params = vec.get("params", {})
    states = [cls(**params) for _ in range(vec.get("replicas", 1))]
    deltas = []
    hexes = []
    for call in vec["calls"]:
        r = call[0]
        method = call[1]
        if method == "merge":
            states[r].merge(states[call[2]])
            d = None
        elif method == "deliver":
            states[r].merge(deltas[call[2]])
            d = None
        else:
            d = apply_call(states[r], call[1:])
        deltas.append(d)
        hexes.append(None if d is None else wire.dumps(d).hex())
    joined = cls(**params)
    for s in states:
        joined.merge(s)
    return {
        "deltas": hexes,
        "states": [wire.dumps(s).hex() for s in states],
        "join": wire.dumps(joined).hex(),
        "value": plain(joined.value()),
    }


def check_vector(vec):
    """Replay one entry of tests/vectors/crdt.json; check value and every byte.

    Also decodes each recorded hex and re-encodes it, so the decoder is held to the same
    bytes as the encoder. Raises AssertionError naming the vector and what differed.
    """
    name = vec["name"]
    got = replay(vec)
    if got["value"] != vec["value"]:
        raise AssertionError("%s: value %r, expected %r" % (name, got["value"], vec["value"]))
    for key in ("deltas", "states", "join"):
        if got[key] != vec[key]:
            raise AssertionError("%s: %s %r, expected %r" % (name, key, got[key], vec[key]))
    for h in [vec["join"]] + vec["states"] + [d for d in vec["deltas"] if d is not None]:
        back = wire.dumps(wire.loads(bytes.fromhex(h))).hex()
        if back != h:
            raise AssertionError("%s: %s decodes and re-encodes as %s" % (name, h, back))
