"""The laws every lasp-edge CRDT must obey, as plain functions (CPython and MicroPython).

Each function raises AssertionError with a message naming the law, the type and the wire
bytes of the states involved, so a failure on a device is as readable as one under pytest.
They do not use ``assert`` (stripped under ``-O``) and do not depend on dict order.

The laws (Almeida, Shoker, Baquero 2018; see ``lasp_edge/crdts/base.py``):

* join is commutative, associative and idempotent, and mutates neither input;
* ``merge`` returns True iff the state strictly grew, and leaves ``a.join(b)`` behind;
* ``a <= b`` iff ``a.join(b) == b``; bottom is below everything; ``>=`` mirrors ``<=``;
* a mutator is an inflation (``old <= new``) and ``old.join(delta) == new``; a mutator that
  changes nothing returns bottom;
* deltas delivered in any order, duplicated, or dropped and resent converge to the join of
  the full states;
* ``to_wire``/``from_wire`` round-trip through real CBOR bytes, and equal states encode to
  equal bytes however they were built.
"""

import sys

from crdt_ops import permutation, run

from lasp_edge import wire

try:
    from micropython import const
except ImportError:  # CPython
    from lasp_edge._compat import const

# The laws by number; crdt_law_texts.LAWS says each in words and is imported only when one
# fails. As const()s these names compile to plain ints on MicroPython, so a passing device
# run holds none of the sentences (as str objects, ~3 KB of a 64 KB heap).
_WIRE_FORM_ROUNDTRIP = const(1)
_LOADS_SAME_TYPE = const(2)
_BYTES_ROUNDTRIP = const(3)
_REENCODE_SAME_BYTES = const(4)
_PARAMS_SURVIVE = const(5)
_LE_IFF_JOIN = const(6)
_GE_MIRRORS_LE = const(7)
_BELOW_JOIN = const(8)
_JOIN_ABOVE = const(9)
_BOTTOM_IS_BOTTOM = const(10)
_BOTTOM_BELOW = const(11)
_LT_IRREFLEXIVE = const(12)
_LT_FROM_LE = const(13)
_COMMUTATIVE = const(14)
_ASSOCIATIVE = const(15)
_IDEMPOTENT = const(16)
_JOIN_AGAIN = const(17)
_BOTTOM_IDENTITY = const(18)
_JOIN_PURE = const(19)
_MERGE_BOOL = const(20)
_MERGE_IS_JOIN = const(21)
_MERGE_REPORTS_GROWTH = const(22)
_MERGE_SPARES_ARG = const(23)
_MERGE_AGAIN = const(24)
_DELTA_TYPE = const(25)
_DELTA_PARAMS = const(26)
_INFLATION = const(27)
_DELTA_JOINS_OLD = const(28)
_DELTA_BELOW_NEW = const(29)
_NOOP_BOTTOM = const(30)
_CHANGE_DELTA = const(31)
_ANY_ORDER = const(32)
_DUPLICATED = const(33)
_GAPS_BELOW = const(34)
_RESENT = const(35)
_DELTAS_JOIN_FULL = const(36)
_MERGE_ORDER = const(37)
_REPLICA_BELOW_FULL = const(38)

# On a device a history's deltas are kept as their wire bytes and decoded again where a law
# uses them: on the 64-bit unix port a delta object of a causal type takes several hundred
# bytes, its encoding a few dozen, and a 64 KB heap cannot hold a history of objects next
# to the code. Decoding is exact (``check_step`` holds every delta to the round trip before
# it is packed). CPython keeps the objects.
PACK_DELTAS = sys.implementation.name == "micropython"


def _show(s):
    try:
        return "%s<%s>" % (type(s).__name__, wire.dumps(s).hex())
    except Exception as e:  # a state that cannot even be encoded is itself the finding
        return "%s<unencodable: %r>" % (type(s).__name__, e)


def law_text(law):
    """The law numbered ``law`` in words (see crdt_law_texts.py)."""
    try:
        from crdt_law_texts import LAWS
    except MemoryError:  # a device that failed for lack of heap: the number must do
        return "law %d" % law
    return LAWS.get(law, "law %d" % law)


def fail(law, *states, why=""):
    text = law_text(law) + (" (%s)" % why if why else "")
    raise AssertionError(text + ": " + ", ".join(_show(s) for s in states))


def check(cond, law, *states):
    if not cond:
        fail(law, *states)


def check_same(a, b, law):
    """``a == b`` as states, and equal states give equal bytes."""
    if a != b:
        fail(law, a, b, why="states differ")
    if wire.dumps(a) != wire.dumps(b):
        fail(law, a, b, why="equal states, different bytes")


def check_roundtrip(s):
    """``to_wire``/``from_wire`` directly and through CBOR bytes give the same state."""
    cls = type(s)
    direct = cls.from_wire(s.to_wire())
    check_same(direct, s, _WIRE_FORM_ROUNDTRIP)
    data = wire.dumps(s)
    back = wire.loads(data)
    check(type(back) is cls, _LOADS_SAME_TYPE, s)
    check_same(back, s, _BYTES_ROUNDTRIP)
    check(wire.dumps(back) == data, _REENCODE_SAME_BYTES, s, back)
    check(back.params() == s.params(), _PARAMS_SURVIVE, s)


def check_order(a, b):
    """``<=`` is the lattice order: ``a <= b`` iff ``a.join(b) == b``; ``>=`` mirrors it."""
    j = a.join(b)
    le = a <= b
    check(le == (j == b), _LE_IFF_JOIN, a, b)
    check((b >= a) == le, _GE_MIRRORS_LE, a, b)
    check(a <= j and b <= j, _BELOW_JOIN, a, b)
    check(j >= a and j >= b, _JOIN_ABOVE, a, b)
    bottom = a.bottom()
    check(bottom.is_bottom(), _BOTTOM_IS_BOTTOM, bottom)
    check(bottom <= a, _BOTTOM_BELOW, a)
    check(not (a < a), _LT_IRREFLEXIVE, a)
    if le and a != b:
        check(a < b, _LT_FROM_LE, a, b)


def check_join(a, b, c):
    """Commutative, associative, idempotent, non-mutating join; merge reports growth."""
    before = [wire.dumps(x) for x in (a, b, c)]
    ab = a.join(b)
    check_same(ab, b.join(a), _COMMUTATIVE)
    check_same(ab.join(b), ab, _JOIN_AGAIN)
    ab = ab.join(c)  # reuse the name: one state fewer alive at a time (device heap)
    check_same(ab, a.join(b.join(c)), _ASSOCIATIVE)
    ab = None
    check_same(a.join(a), a, _IDEMPOTENT)
    check(a.bottom().join(a) == a, _BOTTOM_IDENTITY, a)
    after = [wire.dumps(x) for x in (a, b, c)]
    check(before == after, _JOIN_PURE, a, b, c)
    check_merge(a, b)
    check_merge(b, a)
    check_order(a, b)
    check_order(b, a)


def check_merge(a, b):
    """``a.merge(b)`` leaves ``a.join(b)``, returns True iff it strictly grew, spares b."""
    m = a.copy()
    b_bytes = wire.dumps(b)
    grew = m.merge(b)
    check(type(grew) is bool, _MERGE_BOOL, a, b)
    check_same(m, a.join(b), _MERGE_IS_JOIN)
    check(grew == (m != a), _MERGE_REPORTS_GROWTH, a, b)
    check(wire.dumps(b) == b_bytes, _MERGE_SPARES_ARG, b)
    check(m.merge(b) is False, _MERGE_AGAIN, m, b)


def check_step(step):
    """A mutator is an inflation whose delta joins the old state into the new one."""
    old, new, delta = step.old, step.new, step.delta
    check(type(delta) is type(old), _DELTA_TYPE, old, delta)
    check(delta.params() == old.params(), _DELTA_PARAMS, old, delta)
    check(old <= new, _INFLATION, old, new)
    check_same(old.join(delta), new, _DELTA_JOINS_OLD)
    check(delta <= new, _DELTA_BELOW_NEW, delta, new)
    if old == new:
        check(delta.is_bottom(), _NOOP_BOTTOM, old, delta)
    else:
        check(not delta.is_bottom(), _CHANGE_DELTA, old)
    check_roundtrip(delta)


def join_all(bottom, states):
    out = bottom.copy()
    for s in states:
        out.merge(s)
    return out


def check_delivery(bottom, deltas, expected, ints):
    """Deltas in any order, duplicated, or dropped then resent, converge to ``expected``.

    ``ints`` chooses the permutation and which deltas are duplicated or dropped first.
    """
    n = len(deltas)
    order = permutation(n, ints)
    check_same(join_all(bottom, (deltas[i] for i in order)), expected, _ANY_ORDER)
    # duplicated: every delta twice, the second copy at a random later point (the lists
    # hold indices, so ``deltas`` may be a Packed that decodes each use)
    dup = list(order)
    for k in range(n):
        at = ints[k % len(ints)] % (len(dup) + 1) if ints else len(dup)
        dup.insert(at, order[k])
    check_same(join_all(bottom, (deltas[i] for i in dup)), expected, _DUPLICATED)
    # dropped then resent: a receiver misses some deltas, then gets them all again
    r = bottom.copy()
    for k in range(n):
        if not ints or ints[(k + 1) % len(ints)] % 3:
            r.merge(deltas[order[k]])
    check(r <= expected, _GAPS_BELOW, r, expected)
    for d in deltas:
        r.merge(d)
    check_same(r, expected, _RESENT)


class Packed:
    """States kept as their wire bytes; indexing or iterating decodes fresh states."""

    def __init__(self):
        self.items = []

    def append(self, state):
        self.items.append(wire.dumps(state))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return wire.loads(self.items[i])

    def __iter__(self):
        for b in self.items:
            yield wire.loads(b)


def check_history(spec, ints, order_ints, n=3):
    """Every law over one scripted history; returns the History for further checks.

    Each step is checked as it happens. With ``PACK_DELTAS`` (on a device) the steps are
    not kept once checked, only their deltas, packed, so the returned History holds only
    the final states.
    """
    if PACK_DELTAS:
        deltas = Packed()

        def on_step(step):
            check_step(step)
            deltas.append(step.delta)

        h = run(spec, ints, n, on_step, keep=False)
    else:
        h = run(spec, ints, n, check_step)
        deltas = h.deltas()
    bottom = spec.bottom()
    full = join_all(bottom, h.states)
    check_same(join_all(bottom, deltas), full, _DELTAS_JOIN_FULL)
    check_delivery(bottom, deltas, full, order_ints)
    deltas = None
    # the same state reached by merging replicas in another order encodes the same
    order = permutation(n, order_ints)
    check_same(join_all(bottom, [h.states[i] for i in order]), full, _MERGE_ORDER)
    states = h.states
    for i in range(n):
        check_roundtrip(states[i])
        check_join(states[i], states[(i + 1) % n], states[(i + 2) % n])
    check_roundtrip(full)
    for s in states:
        check(s <= full, _REPLICA_BELOW_FULL, s, full)
    check_join(bottom, full, states[0])
    return h


def check_vector(vec):
    """Replay one entry of tests/vectors/crdt.json; check value and every byte.

    Kept here for the CPython tests; the code lives in ``crdt_replay`` (imported on first
    use), which the device script loads without the laws.
    """
    from crdt_replay import check_vector as check

    check(vec)
