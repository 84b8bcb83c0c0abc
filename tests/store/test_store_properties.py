"""Property tests: derived variables equal a from-scratch recomputation, always.

Several stores run the same program and exchange deltas through a LocalNetwork that
reorders and duplicates messages. After every step each store's derived variables must
equal the plain-Python definition over that store's own inputs, and once the network is
drained every store must hold the same inputs and therefore the same outputs.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from store_programs import check_program, declare_program

from lasp_edge.crdts import AWSet
from lasp_edge.store import LocalNetwork, SlidingWindow, Store

OPS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which store
        st.sampled_from(
            ["addA", "rmA", "addB", "rmB", "addG", "addT", "rmT", "deliver", "deliver", "cut"]
        ),
        st.integers(0, 7),  # element
    ),
    min_size=20,
    max_size=100,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, seed=st.integers(0, 2**32 - 1))
def test_derived_equal_recomputation_across_replicas(ops, seed):
    rng = random.Random(seed)
    stores = [Store(r) for r in ("a", "b", "c")]
    net = LocalNetwork(coalesce=seed % 2 == 0)
    for s in stores:
        declare_program(s)
    net.connect(stores[0], stores[1])
    net.connect(stores[1], stores[2])  # c hears a only through b (forwarding)
    for i, op, x in ops:
        s = stores[i]
        if op == "addA":
            s.update("A", "add", x)
        elif op == "rmA":
            s.update("A", "remove", x)
        elif op == "addB":
            s.update("B", "add", x)
        elif op == "rmB":
            s.update("B", "remove", x)
        elif op == "addG":
            s.update("G", "add", x)
        elif op == "addT":
            s.update("T2", "add", x)
        elif op == "rmT":
            s.update("T2", "remove", x)
        elif op == "deliver":
            net.collect()
            net.deliver(rng, duplicate=0.3)
        elif op == "cut":
            net.partition() if x % 2 else net.heal()
        check_program(s)
        for other in stores:
            check_program(other)
    net.heal()
    net.sync()
    for s in stores:
        check_program(s)
    for name in ("A", "B", "G", "T2"):
        assert stores[0].state(name) == stores[1].state(name) == stores[2].state(name)
    for name in ("M", "U", "D", "sum", "max"):
        assert stores[0].query(name) == stores[1].query(name) == stores[2].query(name)


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=5, max_size=40),
    data=st.data(),
)
def test_bind_of_arbitrary_states_keeps_derived_exact(ops, data):
    """Binding whole states (not just single-op deltas) from an independent replica."""
    s = Store("me")
    declare_program(s)
    other = AWSet()
    for add, x in ops:
        if add:
            other.add("them", x)
        else:
            other.remove(x)
        if data.draw(st.booleans()):
            s.bind("A", other.copy())
            check_program(s)
        if data.draw(st.booleans()):
            s.update("A", "remove" if x % 2 else "add", x)
            check_program(s)
    s.bind("A", other)
    check_program(s)


WINDOW_OPS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 12), st.integers(-20, 40)), min_size=3, max_size=30
)


@settings(max_examples=60, deadline=None)
@given(a=WINDOW_OPS, b=WINDOW_OPS, c=WINDOW_OPS)
def test_window_is_a_lattice(a, b, c):
    def build(ops):
        w = SlidingWindow(size=4)
        deltas = []
        for r, epoch, v in ops:
            deltas.append(w.observe(r, epoch, v))
        return w, deltas

    x, dx = build(a)
    y, _ = build(b)
    z, _ = build(c)
    assert x.join(y) == y.join(x)
    assert x.join(y).join(z) == x.join(y.join(z))
    assert x.join(x) == x
    assert x <= x.join(y) and y <= x.join(y)
    assert SlidingWindow.from_wire(x.to_wire()) == x
    rebuilt = SlidingWindow(size=4)
    for d in reversed(dx):  # deltas in any order, twice, rebuild the state
        rebuilt.merge(d)
        rebuilt.merge(d)
    assert rebuilt == x
