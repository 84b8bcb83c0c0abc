"""NodeDB (SQLite persistence of a sync node) and the gateway's ack-after-durable, no broker.

The gateway is driven directly here: messages go in through ``deliver`` (what the paho
thread calls) and one ``step``; what it would publish is captured from ``route``.
"""

from __future__ import annotations

import sqlite3
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lasp_edge import AWMap, AWSet, LWWRegister, cbor, wire
from lasp_edge.sync import Node
from lasp_edge.sync import messages as M
from lasp_gateway import nodedb
from lasp_gateway.gateway import Gateway, GatewayConfig
from lasp_gateway.nodedb import NodeDB


def gateway_node() -> Node:
    n = Node("gw", 1, auto_declare=True)
    n.declare("ads", AWSet())
    n.update("ads", "add", "gw", "ad-1")
    return n


def device(name: str, epoch: int = 1) -> Node:
    d = Node(name, epoch, interests=["ads"], sync_period_ms=0)
    d.declare("impressions", AWMap("gcounter"))
    d.declare("ads", AWSet())
    return d


def connect(dev: Node, gw: Node) -> None:
    dev.hello("gw")
    for _ in range(4):
        for _p, data in dev.take():
            for ev in gw.receive(data, 0, peer=dev.replica):
                if ev[0] == "merged":
                    gw.commit(ev[3])
        for p, data in gw.take():
            if p == dev.replica:
                for ev in dev.receive(data, 0, peer="gw"):
                    if ev[0] == "merged":
                        dev.commit(ev[3])


def send(dev: Node, gw: Node, db: NodeDB, now: int = 0) -> None:
    """dev's pending delta into gw, persisted, committed (the service's order)."""
    dev.tick(now)
    changed = {}
    for _p, data in dev.take():
        for ev in gw.receive(data, now, peer=dev.replica):
            if ev[0] == "merged":
                changed.update(ev[2])
                db.save(gw, changed)
                gw.commit(ev[3])
    for p, data in gw.take():
        if p == dev.replica:
            dev.receive(data, now, peer="gw")


def same_node(a: Node, b: Node) -> None:
    assert {n: v for n, v in a.vars.items()} == {n: v for n, v in b.vars.items()}
    assert (a.log.last_seq, a.log.trimmed_to) == (b.log.last_seq, b.log.trimmed_to)
    segs = lambda n: sorted(  # noqa: E731
        (var, s.lo, s.hi, s.origin, s.sealed, cbor.dumps(s.delta.to_wire()))
        for var, ss in n.log.by_var.items()
        for s in ss
    )
    assert segs(a) == segs(b)
    marks = lambda n: {p: (q.epoch, q.acked, q.recv_to) for p, q in n.peers.items()}  # noqa: E731
    assert marks(a) == marks(b)


@pytest.mark.parametrize("older_file", [False, True])
def test_save_and_reopen_restores_the_node(tmp_path, older_file):
    """A new file gets ``PAGE_SIZE`` pages; a file made before (4 KiB pages) keeps its own
    and works the same."""
    path = str(tmp_path / "gw.db")
    if older_file:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        conn.commit()
        conn.close()
    db = NodeDB(path)
    page_size = db.conn.execute("PRAGMA page_size").fetchone()[0]
    assert page_size == (4096 if older_file else nodedb.PAGE_SIZE)
    db.claim("gw")
    gw = gateway_node()
    db.save(gw, {})
    devs = [device("d%d" % i) for i in range(3)]
    for i, d in enumerate(devs):
        connect(d, gw)
        for k in range(5):
            d.update("impressions", "update", "ad-%d" % (k % 2), "increment", d.replica, i + 1)
            send(d, gw, db, now=k)
    gw.tick(0)  # seals what it ships to devices
    gw.take()
    db.save(gw, {})
    db.close()
    db2 = NodeDB(path)
    db2.claim("gw")
    snap = db2.load()
    assert snap is not None
    back = Node("gw", 2, auto_declare=True)
    back.restore(snap)
    same_node(gw, back)
    assert back.vars["impressions"].value() == {"ad-0": 18, "ad-1": 12}
    assert db2.boot_epoch() == 1 + (db2.meta_get("epoch", 0) - 1) and db2.boot_epoch() >= 2
    with pytest.raises(ValueError):
        db2.claim("other")
    assert db2.conn.execute("PRAGMA page_size").fetchone()[0] == page_size
    db2.close()


def test_one_process_per_file(tmp_path):
    path = str(tmp_path / "gw.db")
    db = NodeDB(path)
    with pytest.raises(ValueError):
        NodeDB(path)
    db.close()
    NodeDB(path).close()


def test_cost_follows_the_change(tmp_path, capsys):
    """A small delta rewrites a few rows, not the node: measured against a snapshot."""
    db = NodeDB(str(tmp_path / "gw.db"), synchronous="normal")
    db.claim("gw")
    gw = gateway_node()
    devs = [device("d%03d" % i) for i in range(200)]
    for i, d in enumerate(devs):
        connect(d, gw)
        for ad in range(20):
            d.update("impressions", "update", "ad-%d" % ad, "increment", d.replica, i + 1)
        send(d, gw, db)
    gw.tick(0)
    gw.take()
    db.save(gw, {})
    snapshot_bytes = len(cbor.dumps(gw.snapshot()))
    rows0, bytes0 = db.rows_written, db.bytes_written
    n = 50
    for k in range(n):
        d = devs[k]
        d.update("impressions", "update", "ad-1", "increment", d.replica)
        send(d, gw, db, now=1000 + k)
    rows = (db.rows_written - rows0) / n
    per_save = (db.bytes_written - bytes0) / n
    with capsys.disabled():
        print(
            "\n  NodeDB: node snapshot %d B; per 1-increment message: %.1f rows, %.0f B payload"
            % (snapshot_bytes, rows, per_save)
        )
    assert rows <= 4  # journal row for the var, the sender's segment, its peer row
    assert per_save < snapshot_bytes / 100
    db.close()


def test_journal_is_checkpointed(tmp_path, monkeypatch):
    monkeypatch.setattr(nodedb, "MIN_CHECKPOINT_BYTES", 256)
    db = NodeDB(str(tmp_path / "gw.db"))
    db.claim("gw")
    gw = gateway_node()
    d = device("d1")
    connect(d, gw)
    for k in range(200):
        d.update("impressions", "update", "ad-%d" % (k % 7), "increment", "d1")
        send(d, gw, db, now=k)
    rows = db.conn.execute("SELECT COUNT(*) FROM var_journal").fetchone()[0]
    assert rows < 60  # checkpointed along the way, not 200 rows
    snap = db.load()
    db.close()
    assert snap is not None
    back = Node("gw", 2)
    back.restore(snap)
    assert back.vars["impressions"] == gw.vars["impressions"]


# -- the gateway, driven without a broker ------------------------------------------------


def offline_gateway(path: str) -> tuple[Gateway, list]:
    gw = Gateway(GatewayConfig(db=path, status_period_ms=0, forward_period_ms=0))
    sent: list = []
    gw.route = lambda peer, data: sent.append((peer, M.decode(data)))  # type: ignore[method-assign]
    return gw, sent


def give_schema(gw: Gateway) -> None:
    """What the aggregator's schema register tells a gateway (authz rule 4)."""
    schema = {"impressions": [11, AWMap("gcounter").params()], "ads": [5, {}]}
    reg = LWWRegister()
    reg.set({"vars": schema, "at_ms": 1}, 1, "agg")
    gw.deliver(
        "uplink",
        "le/g/gw/agg",
        M.delta("agg", 1, 1, 1, 0, 1, False, {"schema@agg": wire.to_typed(reg)}),
    )
    gw.step(wait=0)
    assert "impressions" in gw.node.vars


def feed(gw: Gateway, dev: Node) -> None:
    for _p, data in dev.take():
        gw.deliver("devices", "le/u/%s" % dev.replica, data)
    gw.step(wait=0)


def test_gateway_acks_only_after_the_commit_and_restarts_from_it(tmp_path):
    path = str(tmp_path / "gw.db")
    gw, sent = offline_gateway(path)
    give_schema(gw)
    sent.clear()
    dev = device("d1")
    dev.hello("gw")
    feed(gw, dev)
    assert [m.kind for _p, m in sent] == [M.BIRTH]
    dev.receive(M.birth("gw", gw.node.epoch, {}, None, 0, False), 0, peer="gw")
    dev.update("impressions", "update", "ad-1", "increment", "d1", 4)
    dev.tick(0)
    # a save that fails: no ACK may leave, and the service stops (fail-stop)
    real_save = gw.db.save

    def failing(*a, **kw):
        raise OSError("disk full")

    real_journal = gw.db.journal_inputs
    gw.db.save = gw.db.journal_inputs = failing  # type: ignore[method-assign]
    sent.clear()
    with pytest.raises(OSError):
        feed(gw, dev)
    assert not [m for _p, m in sent if m.kind == M.ACK]
    gw.db.save = real_save  # type: ignore[method-assign]
    gw.db.journal_inputs = real_journal  # type: ignore[method-assign]
    gw.db.close()
    # restart on the same file: what was not saved is not there, and the epoch moved on
    gw2, sent2 = offline_gateway(path)
    assert gw2.node.epoch == 2
    assert gw2.node.vars["impressions"].is_bottom()  # declared from the schema, no data
    gw2.on_link("devices", True)  # startup hello to every known device, asking for births
    gw2.step(wait=0)
    births = [(p, m) for p, m in sent2 if m.kind == M.BIRTH and p == "d1"]
    assert births and births[0][0] == "d1" and births[0][1].ask
    # the device resends (its log still holds the change) and is acknowledged now
    dev.receive(M.birth("gw", 2, {}, None, births[0][1].recv_to, False), 0, peer="gw")
    dev.tick(0)
    sent2.clear()
    feed(gw2, dev)
    acks = [m for _p, m in sent2 if m.kind == M.ACK]
    assert acks and gw2.node.vars["impressions"].value() == {"ad-1": 4}
    gw2.db.close()
    gw3, _ = offline_gateway(path)
    assert gw3.node.vars["impressions"].value() == {"ad-1": 4}
    assert gw3.node.peers["d1"].recv_to == acks[-1].recv_to
    gw3.db.close()


def test_shared_variables_are_typed_by_upstream(tmp_path):
    """A device cannot create a shared variable, nor write one with another type."""
    from lasp_edge import GCounter

    gw, sent = offline_gateway(str(tmp_path / "gw.db"))
    squatter = Node("d1", 1, sync_period_ms=0)
    squatter.declare("impressions", GCounter())  # the wrong type, before the schema
    squatter.declare("fresh", GCounter())
    squatter.declare("mine@d1", GCounter())
    squatter.update("impressions", "increment", "d1")
    squatter.update("mine@d1", "increment", "d1")
    squatter.hello("gw")
    feed(gw, squatter)
    squatter.receive(M.birth("gw", gw.node.epoch, {}, None, 0, False), 0, peer="gw")
    squatter.tick(0)
    feed(gw, squatter)
    assert "impressions" not in gw.node.vars and gw.stats["d1"].rejected == 1
    assert "unknown shared variable 'impressions'" in (gw.stats["d1"].last_reason or "")
    give_schema(gw)  # now the gateway knows: impressions is an AWMap of GCounters
    squatter.peers["gw"].inflight = None
    squatter.tick(0)
    feed(gw, squatter)
    assert gw.stats["d1"].rejected == 2
    assert "is a AWMap here" in (gw.stats["d1"].last_reason or "")
    assert gw.node.vars["impressions"].is_bottom()
    # only the mistyped variable is dropped; the device's own variable in the same
    # message is taken (a wrong declaration must not stall every other variable)
    assert gw.node.vars["mine@d1"].value() == 1
    gw.db.close()


def test_one_delta_group_carries_many_device_messages(tmp_path):
    """Device messages of a period go up as one DELTA: the join, not one per message."""
    gw, sent = offline_gateway(str(tmp_path / "gw.db"))
    give_schema(gw)
    gw.deliver("uplink", "le/g/gw/agg", M.birth("agg", 1, {}, None, 0, False))
    gw.step(wait=0)
    assert gw.node.peers["agg"].online
    devs = [device("d%d" % i) for i in range(5)]
    for d in devs:
        d.hello("gw")
        feed(gw, d)
        d.receive(M.birth("gw", gw.node.epoch, {}, None, 0, False), 0, peer="gw")
    gw.node.flush(gw.now_ms())  # ship what is pending now (the schema's echo, if any)
    gw.node.peers["agg"].inflight = None
    gw.node.peers["agg"].last_send = gw.now_ms()  # the next period starts now
    sent.clear()
    n = 0
    for k in range(10):
        for d in devs:
            d.update("impressions", "update", "ad-%d" % (k % 3), "increment", d.replica)
            d.tick(k)
            for _p, data in d.take():
                gw.deliver("devices", "le/u/%s" % d.replica, data)
                n += 1
            d.peers["gw"].inflight = None  # do not wait for the ack: keep sending
    gw.node.sync_period_ms = 10**9  # nothing goes up while the batch is processed
    gw.step(wait=0)
    assert n == 50 and not [m for p, m in sent if p == "agg" and m.kind == M.DELTA]
    gw.node.flush(gw.now_ms())
    ups = [M.decode(data) for p, data in gw.node.take() if p == "agg"]
    deltas = [m for m in ups if m.kind == M.DELTA]
    assert len(deltas) == 1
    assert deltas[0].deltas["impressions"].value() == gw.node.vars["impressions"].value()
    assert sum(deltas[0].deltas["impressions"].value().values()) == 50
    gw.db.close()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=6),
        min_size=1,
        max_size=8,
    ),
    forward_after=st.sets(st.integers(0, 7)),
)
def test_narrowed_saves_leave_nothing_for_a_full_comparison(tmp_path, batches, forward_after):
    """The gateway's saves compare only the open log segments of the origins a batch heard
    from (``log_origins``); a full comparison made afterwards must find nothing unwritten
    (a segment missed there would be lost from the store-and-forward log by a restart)."""
    path = tempfile.mkdtemp(dir=tmp_path) + "/gw.db"  # a fresh file per example
    gw = Gateway(GatewayConfig(db=path, status_period_ms=1, forward_period_ms=0))
    gw.route = lambda peer, data: None  # type: ignore[method-assign]
    # Every batch saved, none journaled as its messages: the narrowed comparison is what is
    # under test (the journal, after which the next save compares everything, has its own
    # tests in test_gw_journal.py).
    gw.journaled = lambda peer: False  # type: ignore[method-assign]
    try:
        give_schema(gw)
        gw.deliver("uplink", "le/g/gw/agg", M.birth("agg", 1, {}, None, 0, False))
        gw.step(wait=0)
        devs = [device("d%d" % i) for i in range(4)]
        for d in devs:
            d.hello("gw")
            feed(gw, d)
            d.receive(M.birth("gw", gw.node.epoch, {}, None, 0, False), 0, peer="gw")
        updates = 0
        for i, batch in enumerate(batches):
            for which, ad in batch:
                d = devs[which]
                d.update("impressions", "update", "ad-%d" % ad, "increment", d.replica)
                updates += 1
                d.tick(i)
                for _p, data in d.take():
                    gw.deliver("devices", "le/u/%s" % d.replica, data)
                d.peers["gw"].inflight = None  # keep sending without waiting for acks
            gw._last_status = -(1 << 62)  # a status update (origin None) in this batch too
            gw.step(wait=0)
            if i in forward_after:
                gw.node.flush(gw.now_ms())  # seals segments: the next save compares all
                gw.step(wait=0)
            # the segments table holds the log as it was at the save (a tick after it may
            # have sealed some since: the flag is compared by the next save)
            stored = {
                lo: (var, hi, cbor.loads(origin), wire.from_typed(cbor.loads(typed)))
                for lo, var, hi, origin, typed in gw.db.conn.execute(
                    "SELECT lo, var, hi, origin, typed FROM segments"
                )
            }
            live = {
                s.lo: (var, s.hi, s.origin, s.delta)
                for var, segs in gw.node.log.by_var.items()
                for s in segs
            }
            assert stored == live, "a narrowed save missed a segment"
        # not vacuous: every update reached the gateway's state through device segments
        assert sum(gw.node.vars["impressions"].value().values()) == updates
        assert any(s.origin in ("d0", "d1", "d2", "d3") for s in gw.node.log.by_var["impressions"])
    finally:
        gw.db.close()
