"""Dynamic variables and fold_dynamic: global views over local values, across replicas."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lasp_edge.crdts import GCounter, MaxRegister, TopK
from lasp_edge.store import DerivedVariableError, LocalNetwork, Store


def leaderboard(replica: str, k: int = 3) -> Store:
    s = Store(replica)
    s.declare_dynamic("local", "topk", k=k)
    s.fold_dynamic("local", None, "board")
    return s


def test_global_top_k_is_the_top_k_of_local_top_ks():
    a, b, c = leaderboard("a"), leaderboard("b"), leaderboard("c")
    net = LocalNetwork()
    net.connect(a, b)
    net.connect(b, c)
    a.update("local", "add", "ann", 50)
    a.update("local", "add", "al", 10)
    b.update("local", "add", "bob", 40)
    c.update("local", "add", "cat", 60)
    c.update("local", "add", "cy", 5)
    assert a.query("board") == [("ann", 50), ("al", 10)]  # before sync: only its own
    net.sync()
    for s in (a, b, c):
        assert s.query("board") == [("cat", 60), ("ann", 50), ("bob", 40)]
        assert s.query("local") != s.query("board")  # local values stay local


def test_shrinking_and_leaving_replicas():
    a, b = leaderboard("a"), leaderboard("b")
    net = LocalNetwork()
    net.connect(a, b)
    a.update("local", "add", "ann", 50)
    b.update("local", "add", "bob", 70)
    b.update("local", "add", "bea", 20)
    net.sync()
    assert a.query("board") == [("bob", 70), ("ann", 50), ("bea", 20)]
    b.reset("local")  # new season on b: its contribution shrinks to nothing
    net.sync()
    assert a.query("board") == b.query("board") == [("ann", 50)]
    b.update("local", "add", "bea", 30)  # b comes back with a smaller value
    net.sync()
    assert a.query("board") == [("ann", 50), ("bea", 30)]

    # A replica that vanishes keeps its slot until an operator evicts it.
    a.evict("board", "b")
    assert a.query("board") == [("ann", 50)]
    net.sync()
    assert b.query("board") == [("ann", 50)]
    b.update("local", "add", "bea", 31)  # add-wins: a live replica that publishes is back
    net.sync()
    assert a.query("board") == [("ann", 50), ("bea", 31)]


def test_fn_maps_local_values_to_contributions():
    s = Store("a")
    s.declare_dynamic("readings", "awset")

    def peak(local):
        m = MaxRegister()
        m.set(max(local.value(), default=0))
        return m

    s.fold_dynamic("readings", peak, "fleet_peak")
    s.update("readings", "add", 17)
    s.update("readings", "add", 12)
    assert s.query("fleet_peak") == 17
    s.update("readings", "remove", 17)  # local value shrinks: the view follows
    assert s.query("fleet_peak") == 12
    assert s.read("fleet_peak", 12) == 12
    with pytest.raises(DerivedVariableError, match="fold_dynamic"):
        s.update("fleet_peak", "set", 1)


def test_fold_dynamic_errors():
    s = Store("a")
    s.declare("plain", "gcounter")
    s.declare_dynamic("d", "gcounter")
    with pytest.raises(ValueError, match="folds a dynamic variable"):
        s.fold_dynamic("plain", None, "g")
    with pytest.raises(ValueError, match="not a fold_dynamic global"):
        s.fold_dynamic("d", None, "plain")
    with pytest.raises(TypeError, match="must return a CRDT state"):
        s.fold_dynamic("d", lambda v: v.value(), "g")
    s.fold_dynamic("d", None, "g")
    with pytest.raises(ValueError, match="already folded"):
        s.fold_dynamic("d", None, "g2")
    with pytest.raises(ValueError, match="reset applies to dynamic"):
        s.reset("plain")
    with pytest.raises(ValueError, match="evict applies"):
        s.evict("plain", "b")


def test_a_relay_stores_and_forwards_globals_it_does_not_fold():
    a, b = leaderboard("a"), leaderboard("b")
    relay = Store("relay")  # declares nothing: bind creates the variables it sees
    net = LocalNetwork()
    net.connect(a, relay)
    net.connect(relay, b)
    a.update("local", "add", "ann", 5)
    net.sync()
    assert b.query("board") == [("ann", 5)]
    relay.declare_dynamic("local", "topk", k=3)
    relay.fold_dynamic("local", None, "board")  # adopts the global it already holds
    assert relay.query("board") == [("ann", 5)]


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(["add", "add", "reset", "sync"]),
            st.integers(0, 6),
            st.integers(0, 99),
        ),
        min_size=10,
        max_size=60,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_views_converge_to_the_join_of_current_local_values(ops, seed):
    rng = random.Random(seed)
    stores = [leaderboard(r, k=3) for r in ("a", "b", "c")]
    net = LocalNetwork(coalesce=bool(seed % 2))
    net.connect(stores[0], stores[1])
    net.connect(stores[0], stores[2])
    for i, op, who, score in ops:
        s = stores[i]
        if op == "add":
            s.update("local", "add", "p%d" % who, score)
        elif op == "reset":
            s.reset("local")
        else:
            net.collect()
            net.deliver(rng, duplicate=0.3)
    net.sync()
    want = TopK(3)
    for s in stores:
        want.merge(s.state("local"))
    for s in stores:
        assert s.query("board") == want.value()


def test_dynamic_counter_slots_join_into_a_fleet_wide_sum():
    """fold_dynamic joins contributions; GCounter slots are per replica, so that is a sum."""
    a, b = Store("a"), Store("b")
    for s in (a, b):
        s.declare_dynamic("n", "gcounter")
        s.fold_dynamic("n", None, "total")
    net = LocalNetwork()
    net.connect(a, b)
    a.update("n", "increment", 3)
    b.update("n", "increment", 4)
    net.sync()
    # GCounter slots are per replica, so their join is the fleet-wide sum.
    assert a.query("total") == b.query("total") == 7
    assert isinstance(a.state("n"), GCounter)
