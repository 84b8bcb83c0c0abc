"""Store basics: declare, the update-argument rule, query, bind, clear errors, sync log."""

from __future__ import annotations

import pytest

from lasp_edge.crdts import AWSet, GCounter, LWWRegister, TopK
from lasp_edge.store import (
    DerivedVariableError,
    Store,
    UnknownOperationError,
    UnknownVariableError,
)


def test_update_rule_inserts_the_replica_where_each_type_wants_it():
    s = Store("me")
    s.declare("clicks", "gcounter")
    s.declare("pn", "pncounter")
    s.declare("ads", "awset")
    s.declare("g", "gset")
    s.declare("tp", "twopset")
    s.declare("reg", "lwwregister")
    s.declare("mv", "mvregister")
    s.declare("mx", "maxregister")
    s.declare("flag", "ewflag")
    s.declare("top", "topk", k=2)
    s.declare("impr", "awmap", vtype="gcounter")
    s.declare("regs", "awmap", vtype="lwwregister")

    s.update("clicks", "increment")
    s.update("clicks", "increment", 4)
    s.update("pn", "increment", 5)
    s.update("pn", "decrement", 2)
    s.update("ads", "add", "ad1")
    s.update("g", "add", 1)
    s.update("tp", "add", 1)
    s.update("reg", "set", "v", 7)
    s.update("mv", "set", "x")
    s.update("mx", "set", 9)
    s.update("flag", "enable")
    s.update("top", "add", "p", 10)
    s.update("impr", "update", "ad1", "increment")
    s.update("impr", "update", "ad1", "increment", 2)
    s.update("regs", "update", "k", "set", "val", 3)

    assert s.query("clicks") == 5
    assert s.state("clicks").get("me") == 5  # counted under this store's replica id
    assert s.query("pn") == 3
    assert s.query("ads") == {"ad1"}
    assert s.state("ads").dots_of("ad1") == {("me", 1)}
    assert s.query("g") == {1} and s.query("tp") == {1}
    assert s.query("reg") == "v"
    assert s.state("reg").replicas() == {"me"}
    assert s.query("mv") == ["x"] and s.query("mx") == 9 and s.query("flag") is True
    assert s.query("top") == [("p", 10)]
    assert s.query("impr") == {"ad1": 3}
    assert s.state("impr").get("ad1").get("me") == 3
    assert s.query("regs") == {"k": "val"}

    s.update("ads", "remove", "ad1")
    s.update("flag", "disable")
    s.update("tp", "remove", 1)
    assert s.query("ads") == set() and s.query("flag") is False and s.query("tp") == set()


def test_update_returns_the_delta_and_bottom_when_nothing_changed():
    s = Store(1)
    s.declare("mx", "maxregister")
    d = s.update("mx", "set", 5)
    assert d.value() == 5
    assert s.update("mx", "set", 3).is_bottom()
    assert [p.seq for p in s.pending()] == [1]  # a no-op is not logged


def test_declare_is_idempotent_for_the_same_type_and_refuses_another():
    s = Store("me")
    s.declare("c", "gcounter")
    s.update("c", "increment")
    s.declare("c", GCounter)  # class or name, same type: no-op, state kept
    assert s.query("c") == 1
    with pytest.raises(ValueError, match="already declared as source gcounter"):
        s.declare("c", "pncounter")
    s.declare("t", "topk", k=3)
    with pytest.raises(ValueError, match="k=3"):
        s.declare("t", "topk", k=4)
    s.declare_dynamic("d", "gcounter")
    with pytest.raises(ValueError, match="dynamic"):
        s.declare("d", "gcounter")
    with pytest.raises(ValueError, match="unknown CRDT type 'nope'; valid: .*awset.*window"):
        s.declare("x", "nope")


def test_errors_name_what_is_valid():
    s = Store("me")
    s.declare("clicks", "gcounter")
    s.declare("ads", "awset")
    with pytest.raises(UnknownVariableError, match="variable 'click'; declared: ads, clicks"):
        s.update("click", "increment")
    with pytest.raises(KeyError):  # also a KeyError, for plain-Python callers
        s.query("nope")
    with pytest.raises(UnknownOperationError, match=r"no operation 'add'; valid: increment\(n=1\)"):
        s.update("clicks", "add", 1)
    with pytest.raises(ValueError, match=r"valid: add\(e\), remove\(e\)"):
        s.update("ads", "insert", 1)
    with pytest.raises(TypeError, match="supplies the replica id"):
        s.update("ads", "add")
    s.declare("impr", "awmap", vtype="gcounter")
    with pytest.raises(UnknownOperationError, match="awmap value type gcounter has no operation"):
        s.update("impr", "update", "ad1", "add")
    with pytest.raises(TypeError):
        s.update("clicks", "increment", "lots")
    s.map("ads", lambda x: x, "copy")
    with pytest.raises(DerivedVariableError, match=r"derived by map\(ads -> copy\)"):
        s.update("copy", "add", 1)
    assert s.query("clicks") == 0  # failed calls changed nothing


def test_bind_merges_remote_states_and_logs_only_growth():
    a, b = Store("a"), Store("b")
    for s in (a, b):
        s.declare("ads", "awset")
    d = a.update("ads", "add", "x")
    assert b.bind("ads", d, origin="a") is True
    assert b.bind("ads", d, origin="a") is False  # idempotent: no growth, not logged again
    assert b.query("ads") == {"x"}
    (p,) = b.pending()
    assert (p.name, p.origin, p.delta) == ("ads", "a", d)
    with pytest.raises(TypeError, match="cannot bind a gcounter"):
        b.bind("ads", GCounter())
    with pytest.raises(TypeError):
        b.bind("ads", {"x"})
    t = TopK(3)
    t.add("p", 1)
    b.declare("top", "topk", k=2)
    with pytest.raises(TypeError, match="topk"):
        b.bind("top", t)


def test_bind_declares_unknown_variables_for_relays():
    relay = Store("relay")
    reg = LWWRegister()
    reg.set("hello", 1, "dev")
    assert relay.bind("greeting", reg) is True
    assert relay.query("greeting") == "hello"
    assert relay.variables() == {"greeting": "source lwwregister"}


def test_pending_numbers_changes_and_ack_forgets():
    s = Store("me")
    s.declare("c", "gcounter")
    s.declare_dynamic("local", "gcounter")
    for _ in range(3):
        s.update("c", "increment")
    s.update("local", "increment")  # dynamic: never pending
    assert [p.seq for p in s.pending()] == [1, 2, 3]
    assert [p.seq for p in s.pending(since=2)] == [3]
    s.ack(2)
    assert [p.seq for p in s.pending()] == [3]
    s.ack(99)
    assert s.pending() == [] and s.last_seq == 3


def test_derived_and_dynamic_variables_are_never_shipped():
    s = Store("me")
    s.declare("S", "awset")
    s.map("S", lambda x: -x, "T")
    s.declare_dynamic("mine", "awset")
    s.update("S", "add", 1)
    s.update("mine", "add", 1)
    assert {p.name for p in s.pending()} == {"S"}
    assert set(s.replicated()) == {"S"}
    with pytest.raises(ValueError, match="dynamic"):
        s.bind("mine", AWSet())
    with pytest.raises(DerivedVariableError):
        s.bind("T", AWSet())


def test_replica_ids_are_checked():
    with pytest.raises(ValueError):
        Store("")
    with pytest.raises(ValueError):
        Store("x" * 33)
    Store(7)
