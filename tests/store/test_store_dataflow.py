"""Combinators: results, provenance, fold rules, cycles, errors, incremental behaviour."""

from __future__ import annotations

import pytest

from lasp_edge.crdts import TopK
from lasp_edge.store import CycleError, DataflowError, LocalNetwork, Store


def seeded(*names: str) -> Store:
    s = Store("me")
    for n in names:
        s.declare(n, "awset")
    return s


def test_seed_map_and_removal_provenance():
    s = seeded("S1")
    for x in (1, 2, 3):
        s.update("S1", "add", x)
    s.map("S1", lambda x: x * 2, "S2")
    assert s.query("S2") == {2, 4, 6}
    s.update("S1", "remove", 2)
    assert s.query("S2") == {2, 6}


def test_map_keeps_an_output_while_any_input_still_produces_it():
    s = seeded("S")
    s.map("S", lambda x: x // 10, "tens")
    for x in (11, 12, 25):
        s.update("S", "add", x)
    assert s.query("tens") == {1, 2}
    s.update("S", "remove", 11)
    assert s.query("tens") == {1, 2}  # 12 still produces 1
    s.update("S", "remove", 12)
    assert s.query("tens") == {2}
    s.update("S", "add", 11)  # re-add brings it back
    assert s.query("tens") == {1, 2}


def test_filter_union_intersection_product():
    s = seeded("A", "B")
    s.filter("A", lambda x: x > 1, "big")
    s.union("A", "B", "u")
    s.intersection("A", "B", "i")
    s.product("A", "B", "p")
    for x in (1, 2, 3):
        s.update("A", "add", x)
    for x in (3, 4):
        s.update("B", "add", x)
    assert s.query("big") == {2, 3}
    assert s.query("u") == {1, 2, 3, 4}
    assert s.query("i") == {3}
    assert s.query("p") == {(a, b) for a in (1, 2, 3) for b in (3, 4)}
    s.update("A", "remove", 3)
    assert s.query("u") == {1, 2, 3, 4}  # 3 is still in B
    assert s.query("i") == set()
    assert s.query("p") == {(a, b) for a in (1, 2) for b in (3, 4)}
    s.update("B", "remove", 3)
    assert s.query("u") == {1, 2, 4}


def test_combinators_start_from_existing_inputs_and_can_chain():
    s = seeded("S")
    for x in range(6):
        s.update("S", "add", x)
    s.map("S", lambda x: x * x, "sq")
    s.filter("sq", lambda x: x % 2 == 0, "even_sq")
    s.fold("even_sq", lambda x: x, "total")
    assert s.query("even_sq") == {0, 4, 16}
    assert s.query("total") == 20
    s.update("S", "remove", 4)
    assert s.query("total") == 4


def test_fold_into_a_pncounter_drops_on_removal():
    s = seeded("scores")
    s.fold("scores", lambda e: e[1], "sum")  # undeclared dst: a pncounter
    s.update("scores", "add", ("ana", 10))
    s.update("scores", "add", ("bo", 5))
    s.update("scores", "add", ("cy", -3))
    assert s.query("sum") == 12
    s.update("scores", "remove", ("ana", 10))
    assert s.query("sum") == 2
    assert s.variables()["sum"] == "derived pncounter"


def test_fold_into_a_gcounter_needs_a_grow_only_input():
    s = seeded("S")
    s.declare("n", "gcounter")
    with pytest.raises(TypeError, match="cannot take a removed element back; declare n as a pn"):
        s.fold("S", lambda x: 1, "n")
    s.declare("G", "gset")
    s.fold("G", lambda x: 1, "n")
    s.update("G", "add", "a")
    s.update("G", "add", "b")
    assert s.query("n") == 2


def test_fold_into_any_lattice_is_exact_under_removal():
    s = seeded("temps")
    s.declare("peak", "maxregister")
    s.fold("temps", lambda e: ("set", e[1]), "peak")  # (op, *args) applied to bottom
    s.declare("top2", "topk", k=2)

    def one(e):
        t = TopK(2)
        t.add(e[0], e[1])
        return t

    s.fold("temps", one, "top2")
    for e in (("a", 20), ("b", 31), ("c", 25), ("d", 12)):
        s.update("temps", "add", e)
    assert s.query("peak") == 31
    assert s.query("top2") == [("b", 31), ("c", 25)]
    s.update("temps", "remove", ("b", 31))
    assert s.query("peak") == 25  # a view, not a lattice variable: it goes down
    assert s.query("top2") == [("c", 25), ("a", 20)]
    for e in (("a", 20), ("c", 25), ("d", 12)):
        s.update("temps", "remove", e)
    assert s.query("peak") == 0 and s.query("top2") == []


def test_fold_checks_what_fn_returns():
    s = seeded("S")
    s.declare("peak", "maxregister")
    s.update("S", "add", 1)
    with pytest.raises(DataflowError, match="must return a maxregister state"):
        s.fold("S", lambda x: x, "peak")
    s.fold("S", lambda x: ("set", x), "peak")
    with pytest.raises(DataflowError, match=r"fold\(S -> bad_sum\).*must return an int"):
        s.fold("S", lambda x: "many", "bad_sum")  # checked on the existing elements
    s.declare("E", "awset")
    s.fold("E", lambda x: "many", "late_sum")
    with pytest.raises(DataflowError, match="late_sum"):
        s.update("E", "add", 2)  # or on the first element that arrives
    s.update("S", "add", 2)
    assert s.query("peak") == 2
    s.declare("top", "topk", k=3)
    wrong_k = TopK(2)
    with pytest.raises(DataflowError, match=r"topk state with \{'k': 3\}"):
        s.fold("S", lambda x: wrong_k, "top")


def test_a_failing_function_breaks_only_what_depends_on_it():
    s = seeded("S")
    s.map("S", lambda x: 10 // x, "inv")
    s.map("inv", lambda x: x + 1, "inv1")
    s.map("S", lambda x: x, "ok")
    s.update("S", "add", 5)
    with pytest.raises(DataflowError, match=r"map\(S -> inv\) failed: ZeroDivisionError"):
        s.update("S", "add", 0)
    assert s.query("S") == {0, 5}  # the input change itself was applied
    assert s.query("ok") == {0, 5}
    with pytest.raises(DataflowError):
        s.query("inv")
    with pytest.raises(DataflowError):
        s.read("inv1")
    s.update("S", "add", 7)  # later updates still work for the healthy parts
    assert s.query("ok") == {0, 5, 7}


def test_cycles_and_bad_destinations_are_rejected():
    s = seeded("A", "B")
    s.map("A", lambda x: x, "C")
    with pytest.raises(CycleError):
        s.map("A", lambda x: x, "A")
    with pytest.raises(CycleError, match="depend on itself"):
        s.map("C", lambda x: x, "A")
    s.union("C", "B", "D")
    with pytest.raises(CycleError):
        s.filter("D", bool, "B")
    with pytest.raises(ValueError, match=r"already derived by map\(A -> C\)"):
        s.map("B", lambda x: x, "C")
    s.update("B", "add", 1)
    with pytest.raises(ValueError, match="already holds data"):
        s.map("A", lambda x: x, "B")
    s.declare("n", "gcounter")
    with pytest.raises(TypeError, match="inputs must be sets"):
        s.map("n", lambda x: x, "E")
    with pytest.raises(TypeError, match="derived set is an awset"):
        s.map("A", lambda x: x, "n")
    s.update("A", "add", 0)
    with pytest.raises(DataflowError, match="ZeroDivisionError"):
        s.map("A", lambda x: 1 // x, "F")
    assert "F" not in s.variables()  # a failed declaration leaves nothing behind


def test_a_declared_destination_can_be_used_before_its_combinator():
    s = seeded("A")
    s.declare("B", "awset")
    s.map("B", lambda x: x + 100, "C")  # B is an input before it is derived
    s.update("A", "add", 1)
    s.map("A", lambda x: x, "B")
    assert s.query("C") == {101}


def test_derived_variables_follow_remote_deltas_including_context_only_removals():
    a, b = Store("a"), Store("b")
    for s in (a, b):
        s.declare("S", "awset")
        s.map("S", lambda x: x * 2, "T")
    net = LocalNetwork(coalesce=False)
    net.connect(a, b)
    for x in (1, 2, 3):
        a.update("S", "add", x)
    net.sync()
    assert b.query("T") == {2, 4, 6}
    a.update("S", "remove", 2)  # travels as dots only, no element
    net.sync()
    assert b.query("T") == {2, 6}


def test_concurrent_add_wins_through_the_dataflow():
    a, b = Store("a"), Store("b")
    for s in (a, b):
        s.declare("S", "awset")
        s.map("S", str, "T")
    net = LocalNetwork()
    net.connect(a, b)
    a.update("S", "add", 1)
    net.sync()
    net.partition()
    a.update("S", "remove", 1)
    b.update("S", "add", 1)  # concurrent re-add
    net.heal()
    net.sync()
    assert a.query("T") == b.query("T") == {"1"}


def test_one_update_touches_only_what_changed():
    """Incrementality without timing: count calls of the user functions."""
    calls = {"map": 0, "filter": 0, "fold": 0}

    def counted(kind, f):
        def g(x):
            calls[kind] += 1
            return f(x)

        return g

    s = seeded("S")
    for x in range(2000):
        s.update("S", "add", x)
    s.map("S", counted("map", lambda x: x * 2), "M")
    s.filter("M", counted("filter", lambda x: x % 4 == 0), "F")
    s.fold("F", counted("fold", lambda x: x), "total")
    for k in calls:
        calls[k] = 0
    s.update("S", "add", 5000)
    s.update("S", "remove", 7)
    s.bind("S", s.state("S"))  # nothing new: nothing recomputed
    assert calls == {"map": 1, "filter": 1, "fold": 1}


def test_a_reader_blocked_on_a_derived_variable_sees_the_failure():
    import threading

    s = seeded("S")
    s.map("S", lambda x: 1 // x, "inv")
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            s.read("inv", {"cardinality": 5}, timeout=10)
        except Exception as exc:
            errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    while s._vars["inv"].cond is None:
        threading.Event().wait(0.001)
    with pytest.raises(DataflowError):
        s.update("S", "add", 0)
    th.join(10)
    assert [type(e) for e in errors] == [DataflowError]


def test_dynamic_sets_can_feed_combinators_and_reset_clears_what_they_derived():
    s = Store("me")
    s.declare_dynamic("mine", "awset")
    s.map("mine", lambda x: x * 10, "tens")
    s.update("mine", "add", 1)
    s.update("mine", "add", 2)
    assert s.query("tens") == {10, 20}
    s.reset("mine")
    assert s.query("tens") == set()
    s.update("mine", "add", 3)
    s.update("mine", "remove", 3)
    s.update("mine", "add", 4)
    assert s.query("tens") == {40}
