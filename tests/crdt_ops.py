"""Op scripts: build CRDT histories from lists of small ints, on CPython and MicroPython.

One table (``spec_rows()``, as Spec objects ``SPECS``) says, for every registered type, how
a few ints become a mutator call.
Hypothesis draws the ints on CPython (and shrinks failures to short scripts); the device
scripts draw them from ``random`` with a fixed seed. Both therefore explore the same kinds
of histories through the same code.

A *script* is a flat list of ints read four at a time: ``[kind, replica, x, y]``. ``kind``
picks a mutator (or, for ``kind % 8 == 7``, a sync: replica ``x`` merges the full state of
replica ``y``), ``replica`` picks which of ``n`` replicas acts, and ``x``/``y`` pick the
arguments. Syncs create causal histories (a remove that observed an add from elsewhere);
skipped syncs leave concurrent ones.

Specs name their type by its registry name and import the class on first use, and ``SPECS``
is built on first use too, so a device process that checks one spec (``spec_named``) loads
only that type's code and keeps only that spec: tests/device/crdt_props_mp.py runs one
process per spec to fit a 64 KB heap. The explicit calls of the shared vectors are replayed
by ``crdt_replay``.

This module is portable: no typing, dataclasses or f-strings, and no reliance on dict order.
"""

from lasp_edge.crdts.registry import type_for

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
    """How to make bottom and how to apply one op, for one type and parameters.

    ``tname`` is the registry name of the type; ``cls`` imports the class on first use
    (see the module docstring for why).
    """

    def __init__(self, name, tname, params, apply):
        self.name = name
        self.tname = tname
        self.params = params
        self.apply = apply
        self._cls = None

    @property
    def cls(self):
        if self._cls is None:
            self._cls = type_for(self.tname)
        return self._cls

    def bottom(self):
        return self.cls(**self.params)

    def __repr__(self):
        return "Spec(%s)" % self.name


def spec_rows():
    """One row per spec: ``(name, registry name of the type, constructor keywords, apply)``.

    Built on each call rather than kept: a device process needs one row, and fourteen rows
    with their names and parameter dicts are ~2 KB of a 64 KB heap.
    """
    return (
        ("gcounter", "gcounter", {}, _gcounter),
        ("pncounter", "pncounter", {}, _pncounter),
        ("gset", "gset", {}, _gset),
        ("twopset", "twopset", {}, _twopset),
        ("awset", "awset", {}, _awset),
        ("lwwregister", "lwwregister", {}, _lww),
        ("mvregister", "mvregister", {}, _mv),
        ("maxregister", "maxregister", {}, _max),
        ("ewflag", "ewflag", {}, _ewflag),
        ("topk2", "topk", {"k": 2}, _topk),
        ("topk3", "topk", {"k": 3}, _topk),
        ("awmap_gcounter", "awmap", {"vtype": "gcounter"}, _map_gcounter),
        ("awmap_awset", "awmap", {"vtype": "awset"}, _map_awset),
        ("awmap_topk2", "awmap", {"vtype": "topk", "vparams": {"k": 2}}, _map_topk),
    )


def spec_named(name):
    """The spec called ``name``, built alone (a device process needs just one)."""
    for row in spec_rows():
        if row[0] == name:
            return Spec(*row)
    raise KeyError(name)


def __getattr__(name):
    # ``SPECS``, every row as a Spec, is built on first use and then kept as a module
    # global, for the CPython tests that iterate over all of them.
    if name == "SPECS":
        specs = tuple(Spec(*row) for row in spec_rows())
        globals()["SPECS"] = specs
        return specs
    raise AttributeError(name)


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


def run(spec, ints, n=3, on_step=None, replicas=REPLICAS, keep=True):
    """Run ``ints`` as a script over ``n`` replicas; return a History.

    Replica ``i`` acts as ``replicas[i]``. ``on_step(step)`` is called after each mutation
    (laws check each step as it happens, so a failure points at the op that broke it).
    Only mutations are recorded as steps; a sync is a plain merge. With ``keep=False``
    the steps are only passed to ``on_step``, not recorded (a device keeps what it needs
    of them itself: see ``crdt_laws.check_history``).
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
        if keep:
            steps.append(step)
        if on_step is not None:
            on_step(step)
        step = old = delta = None
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
