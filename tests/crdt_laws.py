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

from crdt_ops import permutation, run

from lasp_edge import wire


def _show(s):
    try:
        return "%s<%s>" % (type(s).__name__, wire.dumps(s).hex())
    except Exception as e:  # a state that cannot even be encoded is itself the finding
        return "%s<unencodable: %r>" % (type(s).__name__, e)


def fail(law, *states):
    raise AssertionError(law + ": " + ", ".join(_show(s) for s in states))


def check(cond, law, *states):
    if not cond:
        fail(law, *states)


def check_same(a, b, law):
    """``a == b`` as states, and equal states give equal bytes."""
    check(a == b, law + " (states differ)", a, b)
    check(wire.dumps(a) == wire.dumps(b), law + " (equal states, different bytes)", a, b)


def check_roundtrip(s):
    """``to_wire``/``from_wire`` directly and through CBOR bytes give the same state."""
    cls = type(s)
    direct = cls.from_wire(s.to_wire())
    check_same(direct, s, "from_wire(to_wire(s)) == s")
    data = wire.dumps(s)
    back = wire.loads(data)
    check(type(back) is cls, "wire.loads returns the same type", s)
    check_same(back, s, "wire.loads(wire.dumps(s)) == s")
    check(wire.dumps(back) == data, "re-encoding a decoded state gives the same bytes", s, back)
    check(back.params() == s.params(), "params survive the wire", s)


def check_order(a, b):
    """``<=`` is the lattice order: ``a <= b`` iff ``a.join(b) == b``; ``>=`` mirrors it."""
    j = a.join(b)
    le = a <= b
    check(le == (j == b), "a <= b iff a.join(b) == b", a, b)
    check((b >= a) == le, "b >= a iff a <= b", a, b)
    check(a <= j and b <= j, "both sides are <= their join", a, b)
    check(j >= a and j >= b, "the join is >= both sides", a, b)
    bottom = a.bottom()
    check(bottom.is_bottom(), "bottom() is bottom", bottom)
    check(bottom <= a, "bottom <= a", a)
    check(not (a < a), "a < a is false", a)
    if le and a != b:
        check(a < b, "a <= b and a != b means a < b", a, b)


def check_join(a, b, c):
    """Commutative, associative, idempotent, non-mutating join; merge reports growth."""
    before = [wire.dumps(x) for x in (a, b, c)]
    ab = a.join(b)
    check_same(ab, b.join(a), "join is commutative")
    check_same(ab.join(c), a.join(b.join(c)), "join is associative")
    check_same(a.join(a), a, "join is idempotent")
    check_same(ab.join(b), ab, "joining again changes nothing")
    check(a.bottom().join(a) == a, "bottom is the identity of join", a)
    after = [wire.dumps(x) for x in (a, b, c)]
    check(before == after, "join does not mutate its inputs", a, b, c)
    check_merge(a, b)
    check_merge(b, a)
    check_order(a, b)
    check_order(b, a)


def check_merge(a, b):
    """``a.merge(b)`` leaves ``a.join(b)``, returns True iff it strictly grew, spares b."""
    m = a.copy()
    b_bytes = wire.dumps(b)
    grew = m.merge(b)
    check(type(grew) is bool, "merge returns a bool", a, b)
    check_same(m, a.join(b), "merge leaves a.join(b)")
    check(grew == (m != a), "merge returns True iff the state strictly grew", a, b)
    check(wire.dumps(b) == b_bytes, "merge does not mutate its argument", b)
    check(m.merge(b) is False, "merging the same state again reports no growth", m, b)


def check_step(step):
    """A mutator is an inflation whose delta joins the old state into the new one."""
    old, new, delta = step.old, step.new, step.delta
    check(type(delta) is type(old), "a mutator returns a delta of the same type", old, delta)
    check(delta.params() == old.params(), "a delta has the state's parameters", old, delta)
    check(old <= new, "a mutator is an inflation (old <= new)", old, new)
    check_same(old.join(delta), new, "old.join(delta) == new")
    check(delta <= new, "a delta is below the new state", delta, new)
    if old == new:
        check(delta.is_bottom(), "a mutator that changes nothing returns bottom", old, delta)
    else:
        check(not delta.is_bottom(), "a mutator that changes the state returns a delta", old)
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
    shuffled = join_all(bottom, [deltas[i] for i in order])
    check_same(shuffled, expected, "deltas in any order converge")
    # duplicated: every delta twice, the second copy at a random later point
    dup = []
    for i in order:
        dup.append(deltas[i])
    for k in range(n):
        at = ints[k % len(ints)] % (len(dup) + 1) if ints else len(dup)
        dup.insert(at, deltas[order[k]])
    check_same(join_all(bottom, dup), expected, "duplicated deltas converge")
    # dropped then resent: a receiver misses some deltas, then gets them all again
    r = bottom.copy()
    for k in range(n):
        if not ints or ints[(k + 1) % len(ints)] % 3:
            r.merge(deltas[order[k]])
    check(r <= expected, "a receiver with gaps is below the full state", r, expected)
    for d in deltas:
        r.merge(d)
    check_same(r, expected, "dropped then resent deltas converge")


def check_history(spec, ints, order_ints, n=3):
    """Every law over one scripted history; returns the History for further checks."""
    h = run(spec, ints, n, check_step)
    bottom = spec.bottom()
    full = join_all(bottom, h.states)
    deltas = h.deltas()
    check_same(join_all(bottom, deltas), full, "all deltas join to the joined full states")
    check_delivery(bottom, deltas, full, order_ints)
    # the same state reached by merging replicas in another order encodes the same
    order = permutation(n, order_ints)
    check_same(join_all(bottom, [h.states[i] for i in order]), full, "merge order is irrelevant")
    states = h.states
    for i in range(n):
        check_roundtrip(states[i])
        check_join(states[i], states[(i + 1) % n], states[(i + 2) % n])
    check_roundtrip(full)
    for s in states:
        check(s <= full, "every replica is below the join of all", s, full)
    check_join(bottom, full, states[0])
    return h


def check_vector(vec):
    """Replay one entry of tests/vectors/crdt.json; check value and every byte.

    Also decodes each recorded hex and re-encodes it, so the decoder is held to the same
    bytes as the encoder.
    """
    from crdt_ops import replay

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
