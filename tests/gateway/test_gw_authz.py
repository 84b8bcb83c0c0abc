"""The device write rule (authz.py), type by type, and through a real Node."""

from __future__ import annotations

import pytest

from lasp_edge import (
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
from lasp_edge.sync import EV_MERGED, EV_REJECTED, Node
from lasp_gateway.authz import (
    DeviceInterests,
    DevicePolicy,
    has_replica_ids,
    owner_of,
    restrict_interests,
)
from lasp_gateway.topics import device_of, replica_from_level, server_sender

policy = DevicePolicy(open_vars=["votes"], trusted=["agg"])


def ok(peer, var, delta):
    return policy(peer, var, delta) is None


def test_owner_of():
    assert owner_of("temp@d1") == "d1"
    assert owner_of("a@b@d1") == "d1"
    assert owner_of("temp") is None and owner_of("@d1") is None and owner_of("temp@") is None


def counter(r, n=1):
    c = GCounter()
    return c.increment(r, n)


def test_counters_own_slot_only():
    assert ok("d1", "c", counter("d1", 5))
    assert not ok("d1", "c", counter("d2"))
    pn = PNCounter()
    assert ok("d1", "pn", pn.decrement("d1"))
    assert not ok("d1", "pn", PNCounter().decrement("d2"))
    two = GCounter()
    two.increment("d1")
    two.increment("d2")
    assert "'d2'" in policy("d1", "c", two)


def test_causal_types_dots_and_context():
    s = AWSet()
    assert ok("d1", "s", s.add("d1", "x"))
    assert not ok("d1", "s", AWSet().add("d2", "x"))
    # removing (or re-adding) what another replica added names its dots in the context
    shared = AWSet()
    shared.add("agg", "ad-1")
    mine = shared.copy()
    assert not ok("d1", "s", mine.remove("ad-1"))
    assert not ok("d1", "s", shared.copy().add("d1", "ad-1"))
    assert ok("d1", "f", EWFlag().enable("d1"))
    assert not ok("d1", "f", EWFlag().enable("d2"))
    assert ok("d1", "mv", MVRegister().set("d1", "v"))
    assert not ok("d1", "mv", MVRegister().set("d2", "v"))


def test_lww_writer():
    assert ok("d1", "r", LWWRegister().set("v", 10, "d1"))
    assert not ok("d1", "r", LWWRegister().set("v", 10, "gw"))


def test_awmap_nested_and_tombstones():
    m = AWMap("gcounter")
    assert ok("d1", "m", m.update("ad", "increment", "d1"))
    assert not ok("d1", "m", AWMap("gcounter").update("ad", "increment", "d2"))
    shared = AWMap("gcounter")
    shared.update("ad", "increment", "d2")
    assert not ok("d1", "m", shared.remove("ad"))  # the tombstone holds d2's slot
    sets = AWMap("gset")
    assert not ok("d1", "m", sets.update("k", "add", 1))  # no replica ids: not shared
    assert ok("d1", "m@d1", sets)
    assert has_replica_ids(AWMap("awset")) and not has_replica_ids(AWMap("topk", {"k": 3}))


@pytest.mark.parametrize(
    "state",
    [GSet().add(1), TwoPSet().add(1), MaxRegister().set(5), TopK(3).add("p", 9)],
    ids=["gset", "twopset", "maxregister", "topk"],
)
def test_types_without_replica_ids_need_ownership_or_open(state):
    assert not ok("d1", "shared", state)
    assert ok("d1", "shared@d1", state)
    assert not ok("d1", "shared@d2", state)
    assert ok("d1", "votes", state)  # --open-vars
    assert ok("agg", "shared", state)  # trusted upstream


def test_owned_variables_belong_to_their_owner():
    assert ok("d1", "c@d1", counter("d2"))  # its own variable: its business
    assert not ok("d1", "c@d2", counter("d1"))
    assert not ok("d1", "status@gw", LWWRegister().set("x", 1, "d1"))
    assert ok(7, "temp@7", MaxRegister().set(1))  # int replica ids compare as text
    assert ok(7, "c", counter(7)) and not ok(7, "c", counter("7"))


def test_device_interests():
    wants = DeviceInterests("d1")
    assert "ads" in wants and "temp@d1" in wants
    assert "temp@d2" not in wants and "status@gw" not in wants
    assert restrict_interests(None, "d1").device == "d1"
    assert restrict_interests({"temp@d2"}, "d1") == {"temp@d2"}  # asked by name: allowed


def test_topics_name_the_sender():
    assert device_of("le/u/d1") == "d1" and device_of("le/u/7") == 7
    assert replica_from_level("07") == "07"
    for bad in ("le/u/", "le/x/d1", "le/u/d1/x", "le/u/" + "x" * 33):
        with pytest.raises(ValueError):
            device_of(bad)
    assert server_sender("le/g/gw/agg", "gw") == "agg"
    with pytest.raises(ValueError):
        server_sender("le/g/other/agg", "gw")


def test_node_rejects_a_whole_message_with_one_forged_variable():
    dev = Node("d1", 1)
    gw = Node("gw", 1, auto_declare=True, authorize=policy)
    dev.declare("c", GCounter())
    dev.declare("s", AWSet())
    dev.update("c", "increment", "d1", 3)
    dev.bind("s", AWSet().add("d2", "forged"))
    dev.hello("gw")
    for _peer, data in dev.take():
        gw.receive(data, 0, peer="d1")
    for _peer, data in gw.take():  # gw's BIRTH: dev is now online
        dev.receive(data, 0, peer="gw")
    dev.tick(0)
    [(_, data)] = [m for m in dev.take() if m[1][2] == 3]  # the DELTA
    events = gw.receive(data, 0, peer="d1")
    assert [e[0] for e in events] == [EV_REJECTED]
    assert "d2" in events[0][2]
    assert "c" not in gw.vars or gw.vars["c"].is_bottom()
    # the honest part alone goes through
    dev2 = Node("d1", 2)
    dev2.declare("c", GCounter())
    dev2.update("c", "increment", "d1", 3)
    dev2.hello("gw")
    for _peer, data in dev2.take():
        gw.receive(data, 0, peer="d1")
    for _peer, data in gw.take():
        dev2.receive(data, 0, peer="gw")
    dev2.tick(0)
    kinds = [e[0] for _p, d in dev2.take() for e in gw.receive(d, 0, peer="d1")]
    assert EV_MERGED in kinds and gw.vars["c"].value() == 3
