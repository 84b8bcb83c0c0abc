"""LocalNetwork: partitions, healing, forwarding, bootstrap, acknowledgements."""

from __future__ import annotations

from lasp_edge.store import LocalNetwork, Store


def counters(*names: str) -> list[Store]:
    out = []
    for n in names:
        s = Store(n)
        s.declare("c", "gcounter")
        out.append(s)
    return out


def test_partitioned_replicas_diverge_then_converge():
    a, b, c = counters("a", "b", "c")
    net = LocalNetwork()
    net.connect(a, b)
    net.connect(b, c)
    net.partition(b)
    for s, n in ((a, 1), (b, 2), (c, 3)):
        s.update("c", "increment", n)
    net.sync()
    assert [s.query("c") for s in (a, b, c)] == [1, 2, 3]
    net.heal(b)
    net.sync()
    assert [s.query("c") for s in (a, b, c)] == [6, 6, 6]


def test_a_chain_forwards_and_acks_let_stores_forget():
    a, b, c = counters("a", "b", "c")
    net = LocalNetwork()
    net.connect(a, b)
    net.connect(b, c)
    a.update("c", "increment", 5)
    net.sync()
    assert c.query("c") == 5  # forwarded by b, which grew from it
    assert a.pending() == b.pending() == c.pending() == []


def test_a_partition_holds_back_acknowledgement():
    a, b = counters("a", "b")
    net = LocalNetwork()
    net.connect(a, b)
    net.partition()
    a.update("c", "increment")
    net.sync()
    assert len(a.pending()) == 1  # b has not got it: a must keep it
    net.heal()
    net.sync()
    assert a.pending() == [] and b.query("c") == 1


def test_a_late_peer_is_bootstrapped_with_full_states():
    a, b = counters("a", "b")
    a.update("c", "increment", 3)
    a.ack(a.last_seq)  # the log is gone: only the state remains
    net = LocalNetwork()
    net.connect(a, b)
    net.sync()
    assert b.query("c") == 3


def test_disconnect_and_reconnect():
    a, b = counters("a", "b")
    net = LocalNetwork()
    net.connect(a, b)
    net.disconnect(a)
    a.update("c", "increment")
    net.sync()
    assert b.query("c") == 0
    net.connect(a, b)
    net.sync()
    assert b.query("c") == 1
