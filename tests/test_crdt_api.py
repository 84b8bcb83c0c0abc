"""What each CRDT type promises, its error cases, the registry, and hostile wire input.

The algebra (join laws, deltas, round trips) is in test_crdt_laws.py; this file pins down
the semantics that tell the types apart and the ways callers and peers can get them wrong.
"""

import contextlib
import math

import pytest
from crdt_ops import SPECS, lcg_ints, run
from hypothesis import given, settings
from hypothesis import strategies as st

import lasp_edge
from lasp_edge import cbor, wire
from lasp_edge.crdts import (
    BY_NAME,
    BY_TAG,
    TYPES,
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
    type_for,
)


def sync(*states):
    """Full-state anti-entropy: every state ends up as the join of all."""
    j = states[0].join(states[1])
    for s in states[2:]:
        j.merge(s)
    for s in states:
        s.merge(j)
    return j


def roundtrip(s):
    return wire.loads(wire.dumps(s))


# --------------------------------------------------------------------------------------------
# The shared interface
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", TYPES, ids=[t.NAME for t in TYPES])
def test_interface(cls):
    b = cls()
    assert b.is_bottom()
    assert b == cls() and b <= cls() and b >= cls()
    assert b.bottom() == b and b.bottom() is not b
    assert cls(**b.params()) == b
    assert type(cls.TAG) is int and 0 < cls.TAG < 24
    assert cls.NAME.lower() == cls.NAME and cls.MUTATORS
    for m in cls.MUTATORS:
        assert callable(getattr(b, m))
    assert wire.loads(wire.dumps(b)) == b
    assert b != 0 and b != None  # noqa: E711 - comparing with foreign objects is just False


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_copy_is_independent(spec):
    s = run(spec, lcg_ints(4, 120), 1).states[0]
    before = wire.dumps(s)
    c = s.copy()
    c.merge(run(spec, lcg_ints(5, 120), 1, replicas=("zz",)).states[0])
    ints = lcg_ints(6, 90)
    for i in range(0, 90, 3):
        spec.apply(c, "zz", ints[i], ints[i + 1], ints[i + 2])
    assert s <= c
    assert wire.dumps(s) == before


def test_join_of_different_types_raises_type_error():
    states = [t() for t in TYPES]
    for a in states:
        for b in states:
            if type(a) is type(b):
                continue
            with pytest.raises(TypeError):
                a.join(b)
            with pytest.raises(TypeError):
                a.merge(b)
            with pytest.raises(TypeError):
                a <= b  # noqa: B015
            assert a != b


def test_parameter_mismatch():
    with pytest.raises(ValueError):
        TopK(2).join(TopK(3))
    with pytest.raises(TypeError):
        AWMap("gcounter").join(AWMap("awset"))
    with pytest.raises(ValueError):
        AWMap("topk", {"k": 2}).merge(AWMap("topk", {"k": 3}))


@pytest.mark.parametrize("bad", [True, -1, 2**30, "", "x" * 33, 1.5, None, b"a", (1,)])
def test_bad_replica_ids(bad):
    with pytest.raises(ValueError):
        GCounter().increment(bad)
    with pytest.raises(ValueError):
        PNCounter().decrement(bad)
    with pytest.raises(ValueError):
        AWSet().add(bad, 1)
    with pytest.raises(ValueError):
        MVRegister().set(bad, 1)
    with pytest.raises(ValueError):
        EWFlag().enable(bad)
    with pytest.raises(ValueError):
        LWWRegister().set(1, 1, bad)
    with pytest.raises(ValueError):
        TopK().add(bad, 1)


def test_good_replica_ids():
    g = GCounter()
    for r in (0, 2**30 - 1, "a", "x" * 32, "ü"):
        g.increment(r)
    assert g.value() == 5 and roundtrip(g) == g


def test_negative_amounts():
    with pytest.raises(ValueError):
        GCounter().increment(1, -1)
    with pytest.raises(ValueError):
        PNCounter().increment(1, -1)
    with pytest.raises(ValueError):
        PNCounter().decrement(1, -1)
    with pytest.raises(ValueError):
        MaxRegister().set(-1)
    with pytest.raises(TypeError):
        GCounter().increment(1, 1.0)
    with pytest.raises(TypeError):
        GCounter().increment(1, True)


def test_counter_overflow_is_refused():
    g = GCounter()
    g.increment(1, 2**64 - 1)
    with pytest.raises(ValueError):
        g.increment(1)
    assert g.value() == 2**64 - 1
    with pytest.raises(ValueError):
        MaxRegister().set(2**64)


@pytest.mark.parametrize("bad", [True, False, 1.0, 0.5, math.nan, [1], {"a": 1}, (1, 2.0)])
def test_elements_must_have_one_encoding(bad):
    """bool/float elements would make equal sets encode differently (1 == True == 1.0)."""
    for mutate in (
        lambda: GSet().add(bad),
        lambda: TwoPSet().remove(bad),
        lambda: AWSet().add(1, bad),
        lambda: AWSet().remove(bad),
        lambda: AWMap().update(bad, "increment", 1),
        lambda: AWMap().remove(bad),
    ):
        with pytest.raises(ValueError):
            mutate()


def test_set_bytes_do_not_depend_on_insertion_order():
    elems = [3, -1, "b", "a", b"\x01", None, (1, "x"), 2**40, 24, ()]
    a, b = GSet(), GSet()
    for e in elems:
        a.add(e)
    for e in reversed(elems):
        b.add(e)
    assert a == b and wire.dumps(a) == wire.dumps(b)
    c, d = AWSet(), AWSet()
    for e in elems:
        c.add(1, e)
    d.add(1, elems[0])
    for e in elems[1:]:
        d.add(1, e)
    assert wire.dumps(c) == wire.dumps(d)


# --------------------------------------------------------------------------------------------
# Semantics, type by type
# --------------------------------------------------------------------------------------------


def test_gcounter():
    a, b = GCounter(), GCounter()
    a.increment(1, 2)
    b.increment("b", 5)
    b.increment(1, 1)  # a stale view of replica 1's slot loses to the max
    assert a.join(b).value() == 7
    assert a.increment(1, 0).is_bottom()
    assert a.get(1) == 2 and a.replicas() == {1}


def test_pncounter():
    a, b = PNCounter(), PNCounter()
    a.increment(1, 10)
    b.decrement(2, 4)
    a.decrement(1, 3)
    j = sync(a, b)
    assert j.value() == 3 and a == b
    assert j.replicas() == {1, 2}
    assert a.decrement(1, 0).is_bottom()


def test_gset():
    s = GSet()
    assert s.add("x").value() == {"x"}
    assert s.add("x").is_bottom()
    assert "x" in s and len(s) == 1


def test_twopset_removal_is_final():
    a, b = TwoPSet(), TwoPSet()
    a.add("x")
    sync(a, b)
    b.remove("x")
    a.add("x")  # re-adding does not undo a removal, concurrent or not
    sync(a, b)
    assert a.value() == set() and "x" not in a
    a.add("x")
    assert a.value() == set()


def test_twopset_remove_before_add():
    s = TwoPSet()
    s.remove("z")
    s.add("z")
    assert s.value() == set()


def test_awset_add_wins_against_concurrent_remove():
    a, b = AWSet(), AWSet()
    a.add(1, "x")
    sync(a, b)
    b.remove("x")  # observed a's first add only
    a.add(1, "x")  # concurrent re-add: a fresh dot b never saw
    sync(a, b)
    assert a.value() == {"x"} == b.value()


def test_awset_remove_wins_over_what_it_observed():
    a, b = AWSet(), AWSet()
    a.add(1, "x")
    b.add(2, "x")
    sync(a, b)
    b.remove("x")
    sync(a, b)
    assert a.value() == set()


def test_awset_remove_then_readd():
    s = AWSet()
    s.add(1, "x")
    d = s.remove("x")
    assert "x" not in s and not d.is_bottom() and d.value() == set()
    s.add(1, "x")
    assert s.value() == {"x"}
    assert s.remove("nope").is_bottom()
    assert s.dots_of("x") == {(1, 2)}  # a remove takes no dot


def test_awset_replicas_come_from_the_context():
    s = AWSet.from_wire([[["x", "a", 2**40]], {"a": 2**40, 3: 7}, ["b", 9]])
    assert s.replicas() == {"a", 3, "b"}
    assert s.value() == {"x"}


def test_awset_concurrent_adds_keep_both_dots():
    a, b = AWSet(), AWSet()
    a.add(1, "x")
    b.add(2, "x")
    sync(a, b)
    assert a.dots_of("x") == {(1, 1), (2, 1)}
    a.add(1, "x")  # supersedes both observed dots
    assert a.dots_of("x") == {(1, 2)}


def test_lww_later_timestamp_wins_and_old_writes_are_ignored():
    r = LWWRegister()
    r.set("a", 5, 1)
    assert r.set("old", 4, 9).is_bottom()
    assert r.value() == "a" and r.timestamp() == 5
    r.set("b", 6, 0)
    assert r.value() == "b"


def test_lww_tie_break_by_replica_id_and_commutative():
    x, y, z = LWWRegister(), LWWRegister(), LWWRegister()
    x.set("int-replica", 7, 900)
    y.set("str-replica", 7, "a")  # at equal timestamps strs rank above ints
    z.set("small-int", 7, 5)
    for order in ((x, y, z), (z, y, x), (y, x, z)):
        j = order[0].join(order[1]).join(order[2])
        assert j.value() == "str-replica"
        assert wire.dumps(j) == wire.dumps(y)
    assert x.join(z).value() == "int-replica"  # 900 > 5


def test_lww_same_timestamp_and_replica_breaks_tie_by_value_bytes():
    a, b = LWWRegister(), LWWRegister()
    a.set("aa", 1, 1)
    b.set("b", 1, 1)
    assert a.join(b) == b.join(a)
    assert a.join(b).value() == "aa"  # longer encoding ranks higher (canonical CBOR order)


def test_lww_refuses_bad_timestamps_and_values():
    for ts in (-1, 2**64, 1.5, True, None):
        with pytest.raises(ValueError):
            LWWRegister().set("v", ts, 1)
    with pytest.raises(ValueError):
        LWWRegister().set(object(), 1, 1)


def test_mvregister_keeps_concurrent_values_until_overwritten():
    a, b = MVRegister(), MVRegister()
    a.set(1, "red")
    b.set(2, "blue")
    sync(a, b)
    assert a.value() == ["red", "blue"] or a.value() == ["blue", "red"]
    assert a.value() == b.value()  # canonical order, the same everywhere
    a.set(1, "green")  # observed both: supersedes both
    sync(a, b)
    assert b.value() == ["green"]


def test_mvregister_deduplicates_equal_values():
    a, b = MVRegister(), MVRegister()
    a.set(1, "same")
    b.set(2, "same")
    assert a.join(b).value() == ["same"]


@pytest.mark.parametrize("v", [(1, 2), math.nan, [1, (2, 3)], {"k": (1,)}])
def test_mvregister_values_survive_the_wire(v):
    """A tuple comes back as a list and NaN != NaN: equality is by encoding."""
    m = MVRegister()
    m.set(1, v)
    assert roundtrip(m) == m
    n = MVRegister()
    n.set(1, "other")
    assert roundtrip(m) != n


def test_ewflag_enable_wins():
    a, b = EWFlag(), EWFlag()
    a.enable(1)
    sync(a, b)
    b.disable()
    a.enable(1)
    sync(a, b)
    assert a.value() is True
    b.disable()
    sync(a, b)
    assert a.value() is False
    assert b.disable().is_bottom()


def test_maxregister():
    m = MaxRegister()
    assert m.set(0).is_bottom()
    m.set(5)
    assert m.set(3).is_bottom() and m.value() == 5
    other = MaxRegister()
    other.set(9)
    assert m.join(other).value() == 9 and m.merge(other) and not m.merge(other)


def test_topk_keeps_best_score_per_id():
    t = TopK(3)
    t.add("a", 5)
    assert t.add("a", 3).is_bottom()
    t.add("a", 8)
    t.add("b", 1)
    assert t.value() == [("a", 8), ("b", 1)]


def test_topk_truncates_deterministically():
    t = TopK(2)
    t.add("b", 5)
    t.add(7, 5)  # equal scores: ints rank before strs
    t.add("a", 5)  # equal scores: then ascending id
    assert t.value() == [(7, 5), ("a", 5)]
    u = TopK(2)
    for i, s in (("a", 5), (7, 5), ("b", 5)):
        u.add(i, s)
    assert u == t and wire.dumps(u) == wire.dumps(t)
    assert t.add("c", 4).is_bottom()


def test_topk_global_top_is_join_of_local_tops():
    scores = [("p%d" % (i % 9), (i * 37) % 50) for i in range(60)]
    one = TopK(3)
    for i, s in scores:
        one.add(i, s)
    parts = [TopK(3), TopK(3), TopK(3)]
    for n, (i, s) in enumerate(scores):
        parts[n % 3].add(i, s)
    assert parts[0].join(parts[1]).join(parts[2]) == one


def test_topk_integral_float_scores_are_ints():
    a, b = TopK(2), TopK(2)
    a.add("x", 3)
    b.add("x", 3.0)
    assert a == b and wire.dumps(a) == wire.dumps(b)
    assert TopK.from_wire([2, ["x", -0.0]]).value() == [("x", 0)]
    c = TopK(2)
    c.add("y", 2.5)
    assert c.value() == [("y", 2.5)] and roundtrip(c) == c


def test_topk_bad_scores_and_k():
    for s in (math.nan, "1", None, True):
        with pytest.raises((TypeError, ValueError)):
            TopK().add("x", s)
    with pytest.raises(ValueError):
        TopK().add("x", 2**64)
    for k in (0, -1, 1025, 2.0, True):
        with pytest.raises(ValueError):
            TopK(k)


def test_awmap_remove_hides_observed_and_concurrent_update_brings_it_back():
    a, b = AWMap("gcounter"), AWMap("gcounter")
    a.update("ad", "increment", 1, 2)
    sync(a, b)
    b.remove("ad")
    assert "ad" not in b and b.value() == {}
    a.update("ad", "increment", 1, 1)  # concurrent with the remove
    sync(a, b)
    assert b.value() == {"ad": 3}  # back, with its whole history
    b.remove("ad")
    sync(a, b)
    assert a.value() == {} and a.keys() == [] and a.get("ad") is None


def test_awmap_nested_types():
    m = AWMap("awset")
    m.update("room", "add", 1, "alice")
    m.update("room", "add", 1, "bob")
    m.update("room", "remove", "alice")
    assert m.value() == {"room": {"bob"}}
    assert m.update("hall", "remove", "x").is_bottom()
    assert "hall" not in m
    t = AWMap("topk", {"k": 2})
    for i, s in (("p", 1), ("q", 2), ("r", 3)):
        t.update("g", "add", i, s)
    assert t.value() == {"g": [("r", 3), ("q", 2)]}
    assert t.get("g") == t.get("g") and t.get("g") is not t.get("g")
    assert t.params() == {"vtype": "topk", "vparams": {"k": 2}}


def test_awmap_bad_use():
    with pytest.raises(ValueError):
        AWMap("gcounter").update("k", "decrement", 1)
    with pytest.raises(ValueError):
        AWMap("nosuchtype")
    with pytest.raises(ValueError):
        AWMap("topk", {"k": 0})
    assert AWMap().remove("absent").is_bottom()


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry():
    assert len(BY_TAG) == len(BY_NAME) == len(TYPES)
    for t in TYPES:
        assert type_for(t) is t
        assert type_for(t.TAG) is t
        assert type_for(t.NAME) is t
        assert type_for(t.NAME.upper()) is t
        assert getattr(lasp_edge, t.__name__) is t
    assert lasp_edge.TYPES is TYPES
    for bad in (0, 99, "nosuch", None, True):
        with pytest.raises(ValueError):
            type_for(bad)


def test_tags_are_the_wire_contract():
    """Never renumber (docs/PROTOCOL.md): pin every tag."""
    assert {t.NAME: t.TAG for t in TYPES} == {
        "gcounter": 1,
        "pncounter": 2,
        "gset": 3,
        "twopset": 4,
        "awset": 5,
        "lwwregister": 6,
        "mvregister": 7,
        "maxregister": 8,
        "ewflag": 9,
        "topk": 10,
        "awmap": 11,
    }


# --------------------------------------------------------------------------------------------
# Malformed wire forms
# --------------------------------------------------------------------------------------------

MALFORMED = [
    (GCounter, []),
    (GCounter, {1: -1}),
    (GCounter, {1: 1.0}),
    (GCounter, {True: 1}),
    (GCounter, {"": 1}),
    (GCounter, {1: 2**64}),
    (PNCounter, {}),
    (PNCounter, [{}]),
    (PNCounter, [{}, []]),
    (GSet, {}),
    (GSet, [1.0]),
    (GSet, [{"a": 1}]),
    (TwoPSet, [[], [], []]),
    (TwoPSet, [[], {}]),
    (AWSet, [[], {}]),
    (AWSet, [{}, {}, []]),
    (AWSet, [[["x", 1]], {1: 1}, []]),  # entry without a whole dot
    (AWSet, [[["x", 1, 2]], {1: 1}, []]),  # dot outside the causal context
    (AWSet, [[["x", 1, 1], ["y", 1, 1]], {1: 1}, []]),  # duplicate dot
    (AWSet, [[["x", 1, 1, 1, 1]], {1: 1}, []]),  # duplicate dot in one entry
    (AWSet, [[["x", 1, 0]], {1: 1}, []]),  # dot counter 0
    (AWSet, [[], {1: 0}, []]),
    (AWSet, [[], [], []]),  # vv not a map
    (AWSet, [[], {}, [1]]),  # odd cloud
    (AWSet, [[], {}, {}]),
    (AWSet, [[[1.5, 1, 1]], {1: 1}, []]),
    (LWWRegister, []),
    (LWWRegister, [1, 1]),
    (LWWRegister, [-1, 1, "v"]),
    (LWWRegister, [1, -1, "v"]),
    (LWWRegister, {}),
    (MVRegister, [[1, 1], {1: 1}, []]),
    (MVRegister, [[1, 2, "v"], {1: 1}, []]),
    (MVRegister, [[1, 1, "v", 1, 1, "w"], {1: 1}, []]),
    (MVRegister, [{}, {}, []]),
    (MaxRegister, -1),
    (MaxRegister, 1.0),
    (MaxRegister, None),
    (MaxRegister, True),
    (EWFlag, [[1, 1], {}, []]),
    (EWFlag, [[1], {1: 1}, []]),
    (EWFlag, [[], {"x" * 33: 1}, []]),
    (TopK, [2]),
    (TopK, [0, []]),
    (TopK, [2, {}]),
    (TopK, [2.0, []]),
    (TopK, [1, ["a", 1, "b", 2]]),  # more entries than k
    (TopK, [2, ["a", 1, "a", 2]]),  # duplicate id
    (TopK, [2, ["a", "high"]]),
    (TopK, [2, ["a", None]]),
    (TopK, [2, ["a", math.nan]]),
    (TopK, [2, ["a"]]),
    (TopK, [2, [1.5, 1]]),
    (AWMap, [1, {}, {}]),
    (AWMap, [99, {}, {}, {}]),  # unknown value type tag
    (AWMap, [1, [], {}, {}]),
    (AWMap, [1, {}, [], {}]),
    (AWMap, [1, {"k": 2}, {}, {}]),  # gcounter takes no parameters
    (AWMap, [10, {"k": 0}, {}, {}]),
    (AWMap, [10, {1: 2}, {}, {}]),
    (AWMap, [10, {"k": 2}, {"g": [3, []]}, {}]),  # nested k mismatch
    (AWMap, [1, {}, {"k": []}, {}]),  # nested gcounter malformed
    (AWMap, [1, {}, {1.5: {1: 1}}, {}]),  # key not an element
    (AWMap, [11, {"vtype": "topk", "vparams": 7}, {}, {}]),
    (AWMap, [11, {"vtype": 11, "vparams": {"vtype": 99}}, {}, {}]),
]


@pytest.mark.parametrize("cls, w", MALFORMED, ids=[repr(m)[:60] for m in MALFORMED])
def test_from_wire_rejects_malformed(cls, w):
    with pytest.raises(ValueError):
        cls.from_wire(w)
    with pytest.raises(ValueError):
        wire.loads(cbor.dumps([wire.VERSION, cls.TAG, w]))


def test_wire_envelope_errors():
    good = wire.dumps(GCounter())
    assert wire.loads(good) == GCounter()
    for obj in ([1, 99, {}], [1, 0, {}], [2, 1, {}], [1, 1], [1, "gcounter", {}], {}, 5):
        with pytest.raises(ValueError):
            wire.loads(cbor.dumps(obj))
    for data in (b"", good[:-1], good + b"\x00", b"\xff", "text", None):
        with pytest.raises(ValueError):
            wire.loads(data)
    assert wire.from_typed(wire.to_typed(TopK(3))) == TopK(3)
    with pytest.raises(ValueError):
        wire.from_typed([TopK.TAG, [3, ["a", 1]], 0])


def test_decoding_is_lenient_but_canonicalizes():
    """A non-canonical but meaningful form decodes to the state it means."""
    s = AWSet.from_wire([[["x", 1, 2]], {}, [1, 2, 1, 1]])  # cloud that is really a prefix
    assert s.to_wire() == [[["x", 1, 2]], {1: 2}, []]
    assert GCounter.from_wire({1: 0, 2: 3}).to_wire() == {2: 3}
    t = TopK.from_wire([3, ["b", 1, "a", 5]])
    assert t.to_wire() == [3, ["a", 5, "b", 1]]


# --------------------------------------------------------------------------------------------
# Fuzz: hostile data raises ValueError and nothing else
# --------------------------------------------------------------------------------------------

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.sampled_from([0, 1, 2, 3, 10, 11, 24, 2**30]),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["k", "vtype", "vparams", "gcounter", "topk", "awset"]),
    st.binary(max_size=4),
)
KEY = st.one_of(st.integers(-5, 30), st.text(max_size=3), st.sampled_from(["k", "vtype"]))
GARBAGE = st.recursive(
    LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(KEY, inner, max_size=4)),
    max_leaves=25,
)


def _valid_wires():
    out = []
    for spec in SPECS:
        for s in run(spec, lcg_ints(7, 160)).states:
            out.append((type(s), s.to_wire()))
    return out


VALID = _valid_wires()


def _mutate(w, data):
    """Replace one randomly chosen node of a valid wire form by garbage."""
    if type(w) is list and w and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(w) - 1))
        return w[:i] + [_mutate(w[i], data)] + w[i + 1 :]
    if type(w) is dict and w and data.draw(st.booleans()):
        k = data.draw(st.sampled_from(sorted(w, key=repr)))
        out = dict(w)
        out[k] = _mutate(w[k], data)
        return out
    return data.draw(GARBAGE)


def _only_value_error(fn, arg):
    """Call ``fn(arg)``: returning or raising ValueError is fine; anything else fails."""
    with contextlib.suppress(ValueError):
        fn(arg)


@settings(deadline=None, max_examples=1000)
@given(w=GARBAGE, cls=st.sampled_from(TYPES))
def test_fuzz_from_wire_garbage(cls, w):
    _only_value_error(cls.from_wire, w)


@settings(deadline=None, max_examples=1500)
@given(data=st.data())
def test_fuzz_from_wire_mutated(data):
    """Near-valid forms reach deep validation paths; what decodes must be a sound state."""
    cls, w = data.draw(st.sampled_from(VALID))
    w = _mutate(w, data)
    try:
        s = cls.from_wire(w)
    except ValueError:
        return
    b = wire.dumps(s)
    assert wire.loads(b) == s and wire.dumps(wire.loads(b)) == b
    assert s.join(s) == s


@settings(deadline=None, max_examples=1000)
@given(data=st.data())
def test_fuzz_wire_loads_bytes(data):
    cls, w = data.draw(st.sampled_from(VALID))
    b = bytearray(cbor.dumps([wire.VERSION, cls.TAG, w]))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(b) - 1))
        op = data.draw(st.integers(0, 2))
        if op == 0:
            b[i] = data.draw(st.integers(0, 255))
        elif op == 1:
            del b[i]
        else:
            b.insert(i, data.draw(st.integers(0, 255)))
        if not b:
            break
    _only_value_error(wire.loads, bytes(b))


@settings(deadline=None, max_examples=500)
@given(b=st.binary(max_size=64))
def test_fuzz_wire_loads_random_bytes(b):
    _only_value_error(wire.loads, b)
