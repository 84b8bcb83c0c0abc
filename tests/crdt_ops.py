"""Op scripts: build CRDT histories from lists of small ints, on CPython and MicroPython.

One table (``SPECS``) says, for every registered type, how a few ints become a mutator call.
Hypothesis draws the ints on CPython (and shrinks failures to short scripts); the device
scripts draw them from ``random`` with a fixed seed. Both therefore explore the same kinds
of histories through the same code.

A *script* is a flat list of ints read four at a time: ``[kind, replica, x, y]``. ``kind``
picks a mutator (or, for ``kind % 8 == 7``, a sync: replica ``x`` merges the full state of
replica ``y``), ``replica`` picks which of ``n`` replicas acts, and ``x``/``y`` pick the
arguments. Syncs create causal histories (a remove that observed an add from elsewhere);
skipped syncs leave concurrent ones.

This module is portable: no typing, dataclasses or f-strings, and no reliance on dict order.
"""

from lasp_edge import cbor
from lasp_edge.crdts import (
    AWMap,
    AWSet,
    EWFlag,
    GCounter,
    GSet,
    LWWRegister,
    MaxRegister,
    MVRegister,
    PNCounter,
    TopK,
    TwoPSet,
)

# Replica ids: small ints and short strs, ints before strs in every ordering we define.
REPLICAS = (0, "a", 7, "bb")

# Set elements and map keys: CBOR heads of every width, strs, bytes, None and tuples.
ELEMENTS = (0, 1, -1, 24, 1000, 2**40, "a", "bb", b"\x00", None, (1, "a"), ())

# Register values: anything CBOR-able, including values that compare equal in Python but
# encode differently (1, True, 1.0), arrays written as list or tuple, maps and NaN.
VALUES = (0, 1, True, 1.0, 0.5, -7, "x", b"\xff", None, [1, 2], (1, 2), {"k": [1]}, float("nan"))

# TopK ids and scores: more ids than k so that truncation happens; integral floats to test
# that 3 and 3.0 are one score.
TOPK_IDS = (0, 1, 2, "p", "q", "r")

MAP_KEYS = ("k", 1, (0, "x"))


def elem(x):
    return ELEMENTS[x % len(ELEMENTS)]


def value_of(x):
    return VALUES[x % len(VALUES)]


def score_of(x, y):
    s = x % 7
    if y % 4 == 0:
        return s + 0.5
    if y % 4 == 1:
        return float(s)
    return s


def topk_id(x):
    return TOPK_IDS[x % len(TOPK_IDS)]


def map_key(x):
    return MAP_KEYS[x % len(MAP_KEYS)]


# --------------------------------------------------------------------------------------------
# One apply function per spec: (state, replica id, kind, x, y) -> delta
# --------------------------------------------------------------------------------------------


def _gcounter(s, r, k, x, y):
    return s.increment(r, x % 4)


def _pncounter(s, r, k, x, y):
    if k % 2:
        return s.decrement(r, x % 4)
    return s.increment(r, x % 4)


def _gset(s, r, k, x, y):
    return s.add(elem(x))


def _twopset(s, r, k, x, y):
    if k % 3 == 0:
        return s.remove(elem(x))
    return s.add(elem(x))


def _awset(s, r, k, x, y):
    if k % 3 == 0:
        return s.remove(elem(x))
    return s.add(r, elem(x))


def _lww(s, r, k, x, y):
    return s.set(value_of(y), x % 5, r)  # few timestamps: ties happen


def _mv(s, r, k, x, y):
    return s.set(r, value_of(x))


def _max(s, r, k, x, y):
    return s.set(x % 20)


def _ewflag(s, r, k, x, y):
    if k % 2:
        return s.disable()
    return s.enable(r)


def _topk(s, r, k, x, y):
    return s.add(topk_id(x), score_of(y, k))


def _map_gcounter(s, r, k, x, y):
    if k % 3 == 0:
        return s.remove(map_key(x))
    return s.update(map_key(x), "increment", r, 1 + y % 3)


def _map_awset(s, r, k, x, y):
    if k % 4 == 0:
        return s.remove(map_key(x))
    if k % 4 == 1:
        return s.update(map_key(x), "remove", elem(y))
    return s.update(map_key(x), "add", r, elem(y))


def _map_topk(s, r, k, x, y):
    if k % 3 == 0:
        return s.remove(map_key(x))
    return s.update(map_key(x), "add", topk_id(y), score_of(y // 6, k))


class Spec:
    """How to make bottom and how to apply one op, for one type and parameters."""

    def __init__(self, name, cls, params, apply):
        self.name = name
        self.cls = cls
        self.params = params
        self.apply = apply

    def bottom(self):
        return self.cls(**self.params)

    def __repr__(self):
        return "Spec(%s)" % self.name


SPECS = (
    Spec("gcounter", GCounter, {}, _gcounter),
    Spec("pncounter", PNCounter, {}, _pncounter),
    Spec("gset", GSet, {}, _gset),
    Spec("twopset", TwoPSet, {}, _twopset),
    Spec("awset", AWSet, {}, _awset),
    Spec("lwwregister", LWWRegister, {}, _lww),
    Spec("mvregister", MVRegister, {}, _mv),
    Spec("maxregister", MaxRegister, {}, _max),
    Spec("ewflag", EWFlag, {}, _ewflag),
    Spec("topk2", TopK, {"k": 2}, _topk),
    Spec("topk3", TopK, {"k": 3}, _topk),
    Spec("awmap_gcounter", AWMap, {"vtype": "gcounter"}, _map_gcounter),
    Spec("awmap_awset", AWMap, {"vtype": "awset"}, _map_awset),
    Spec("awmap_topk2", AWMap, {"vtype": "topk", "vparams": {"k": 2}}, _map_topk),
)


def spec_named(name):
    for s in SPECS:
        if s.name == name:
            return s
    raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Histories
# --------------------------------------------------------------------------------------------

SYNC = 7


class Step:
    """One mutation: who did it, the state before and after, and the delta it returned."""

    def __init__(self, replica, old, new, delta):
        self.replica = replica
        self.old = old
        self.new = new
        self.delta = delta


class History:
    """The outcome of a script: the replicas' final states and every mutation step."""

    def __init__(self, spec, states, steps):
        self.spec = spec
        self.states = states
        self.steps = steps

    def deltas(self):
        return [s.delta for s in self.steps]


def run(spec, ints, n=3, on_step=None, replicas=REPLICAS):
    """Run ``ints`` as a script over ``n`` replicas; return a History.

    Replica ``i`` acts as ``replicas[i]``. ``on_step(step)`` is called after each mutation
    (laws check each step as it happens, so a failure points at the op that broke it).
    Only mutations are recorded as steps; a sync is a plain merge.
    """
    states = [spec.bottom() for _ in range(n)]
    steps = []
    for i in range(0, len(ints) - 3, 4):
        kind = ints[i]
        who = ints[i + 1] % n
        x = ints[i + 2]
        y = ints[i + 3]
        if kind % 8 == SYNC:
            if x % n != y % n:
                states[x % n].merge(states[y % n])
            continue
        old = states[who].copy()
        delta = spec.apply(states[who], replicas[who], kind, x, y)
        step = Step(replicas[who], old, states[who].copy(), delta)
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return History(spec, states, steps)


def lcg_ints(seed, count):
    """``count`` pseudo-random ints in [0, 256), the same on every platform."""
    out = []
    x = seed
    for _ in range(count):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return out


def permutation(n, ints):
    """A permutation of range(n) chosen by ``ints`` (Fisher-Yates; portable, no shuffle)."""
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = ints[i % len(ints)] % (i + 1) if ints else 0
        order[i], order[j] = order[j], order[i]
    return order


# --------------------------------------------------------------------------------------------
# Plain, JSON-able forms of values (shared by the vectors generator and the device scripts)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Vectors: explicit calls written as data (tests/vectors/crdt.json)
# --------------------------------------------------------------------------------------------


def replay(vec):
    """Run one vector's calls; return what the vector records, computed afresh.

    Returns a dict with ``deltas`` (hex per call, None for merge/deliver), ``states`` (hex
    of each replica), ``join`` (hex of the join of all replicas) and ``value`` (``plain``
    value of that join). See tests/vectors/README.md for the call forms.
    """
    from lasp_edge import wire
    from lasp_edge.crdts import type_for

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
