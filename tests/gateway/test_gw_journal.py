"""A batch the gateway saved as its messages (the input journal) survives ``kill -9``.

Most batches only merge device DELTAs; the gateway commits those as the messages themselves
(``NodeDB.journal_inputs``) and replays them at restart (``SyncService._replay_inputs``).
The gateway is driven by hand here (``deliver`` + ``step``). Hypothesis interleaves births,
DELTAs (in order, duplicated, with gaps, several per batch), the aggregator coming online
and acknowledging, and turns; after any turn the files are copied as a ``kill -9`` leaves
them and opened as a restarted gateway, which must hold exactly the node the running one
held: variables, every delta-log segment and every peer's marks; or, if a send or an ACK
moved the log since the last full save, which is saved lazily, all it received and at least
what it owed every peer (``same_data``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_gw_batch import DEVICES, MAX_SEQ, birth_msg, delta_msg, restarted
from test_gw_nodedb import give_schema, offline_gateway, same_node

from lasp_edge import GSet, wire
from lasp_edge.sync import Node
from lasp_edge.sync import messages as M
from lasp_gateway import service
from lasp_gateway.gateway import Gateway, GatewayConfig
from lasp_gateway.nodedb import NodeDB


def _join(segments: list) -> Any:
    acc = None
    for seg in segments:
        if acc is None:
            acc = seg.delta.copy()
        else:
            acc.merge(seg.delta)
    return acc


def same_data(live: Node, again: Node) -> None:
    """``same_node``, except for what only moved the log since the last full save (the
    ``_LAZY_LOG`` rule of ``service.py``): segments a send sealed or an ACK released, and
    the ACKing peer's ``acked`` mark, reach the disk with the next full save. A restart in
    between may find those segments open or still there and the mark older: data resent,
    which join makes harmless. Everything received must be there (variables, the log's
    sequence, every peer's epoch and ``recv_to``), and every peer must still be owed at
    least what the running gateway owed it."""
    assert live.vars == again.vars
    assert live.log.last_seq == again.log.last_seq
    assert again.log.trimmed_to <= live.log.trimmed_to
    assert set(live.peers) == set(again.peers)
    for pid, p in live.peers.items():
        q = again.peers[pid]
        assert (p.epoch, p.recv_to) == (q.epoch, q.recv_to), pid
        assert q.acked <= p.acked, pid
    for var, segs in live.log.by_var.items():
        back = again.log.by_var.get(var, [])
        for pid, p in live.peers.items():
            owed = _join([s for s in segs if s.hi > p.acked])
            still = _join([s for s in back if s.hi > again.peers[pid].acked])
            assert owed is None or (still is not None and owed.leq(still)), (var, pid)


def check_restart(gw: Gateway, path: str, into: Path) -> None:
    again = restarted(path, into)
    try:
        if gw._log_moved:  # the log moved (a send, an ACK) since the last full save
            same_data(gw.node, again.node)
        else:
            same_node(gw.node, again.node)
        assert again.db.inputs_held == 0  # the replay ended in a full save
    finally:
        again.db.close()


def last_up(sent: list) -> int | None:
    """The ``seq_to`` of the newest DELTA the gateway sent its aggregator."""
    ups = [m.seq_to for p, m in sent if p == "agg" and m.kind == M.DELTA]
    return ups[-1] if ups else None


actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(DEVICES), st.integers(1, MAX_SEQ)),
        st.tuples(st.just("birth"), st.sampled_from(DEVICES)),
        st.just(("step",)),
        st.just(("crash",)),
        # the aggregator: comes online (the gateway forwards to it from then on, sealing
        # what it sends) and acknowledges the newest DELTA it was sent
        st.just(("agg_birth",)),
        st.just(("agg_ack",)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(script=actions)
# the aggregator acknowledges a forward and the gateway crashes before its next full save
@example(
    script=[("agg_birth",), ("step",), ("send", "d1", 1), ("step",), ("step",),
            ("agg_ack",), ("step",)]
)  # fmt: skip
def test_a_restart_after_any_turn_holds_the_same_node(script):
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "gw.db")
        gw, sent = offline_gateway(path)
        try:
            give_schema(gw)
            for act in [*script, ("step",), ("crash",)]:
                if act[0] == "send":
                    gw.deliver("devices", "le/u/" + act[1], delta_msg(act[1], act[2]))
                elif act[0] == "birth":
                    gw.deliver("devices", "le/u/" + act[1], birth_msg(act[1]))
                elif act[0] == "step":
                    gw.step(wait=0)
                elif act[0] == "agg_birth":
                    gw.deliver("uplink", "le/g/gw/agg", M.birth("agg", 1, {}, None, 0, False))
                elif act[0] == "agg_ack":
                    seq = last_up(sent)
                    if seq is not None:
                        ack = M.ack("agg", 1, gw.node.epoch, seq)
                        gw.deliver("uplink", "le/g/gw/agg", ack)
                else:
                    check_restart(gw, path, Path(tmp) / "crash")
        finally:
            gw.db.close()


def test_delta_batches_are_journaled_and_the_rest_saves_in_full(tmp_path, monkeypatch):
    path = str(tmp_path / "gw.db")
    gw, sent = offline_gateway(path)
    try:
        give_schema(gw)
        for dev in DEVICES:
            gw.deliver("devices", "le/u/" + dev, birth_msg(dev))
        gw.step(wait=0)  # births: a full save
        assert (gw.journaled_batches, gw.db.inputs_held) == (0, 0)
        for k in (1, 2):
            for dev in DEVICES:
                gw.deliver("devices", "le/u/" + dev, delta_msg(dev, k))
            sent.clear()
            gw.step(wait=0)
            assert len([m for _p, m in sent if m.kind == M.ACK]) == len(DEVICES)
        assert (gw.journaled_batches, gw.db.inputs_held) == (2, 2 * len(DEVICES))
        check_restart(gw, path, tmp_path / "crash")
        # a birth: a full save, which must also write what the journaled batches moved
        # (the other devices' marks and log segments) before it drops their messages
        gw.deliver("devices", "le/u/d2", birth_msg("d2"))
        gw.step(wait=0)
        assert (gw.journaled_batches, gw.db.inputs_held) == (2, 0)
        check_restart(gw, path, tmp_path / "crash")
        # the bound on what a restart replays: past it, a delta batch saves in full too
        monkeypatch.setattr(service, "JOURNAL_MAX", len(DEVICES) - 1)
        for dev in DEVICES:
            gw.deliver("devices", "le/u/" + dev, delta_msg(dev, 3))
        gw.step(wait=0)
        assert (gw.journaled_batches, gw.db.inputs_held) == (2, 0)
        check_restart(gw, path, tmp_path / "crash")
    finally:
        gw.db.close()


def test_replay_keeps_what_was_acked_under_a_wider_policy(tmp_path):
    """Journaled messages were authorized when they arrived: a restart with a narrower
    ``open_vars`` (the GSet ``tags`` no longer open to devices) must not drop them."""
    path = str(tmp_path / "gw.db")
    gw = Gateway(GatewayConfig(db=path, status_period_ms=0, open_vars=["tags"]))
    sent: list = []
    gw.route = lambda peer, data: sent.append((peer, M.decode(data)))  # type: ignore[method-assign]
    try:
        for k, elem in ((1, "a"), (2, "b")):
            tags = GSet()
            tags.add(elem)
            msg = M.delta("d1", 1, k, k, 0, 1, False, {"tags": wire.to_typed(tags)})
            gw.deliver("devices", "le/u/d1", msg)
            gw.step(wait=0)  # the first creates the variable (a full save); the second is journaled
        assert [m.recv_to for _p, m in sent if m.kind == M.ACK] == [1, 2]
        assert gw.db.inputs_held == 1
        again = restarted(path, tmp_path / "crash")  # default policy: nothing open
    finally:
        gw.db.close()
    try:
        assert again.node.vars["tags"].value() == {"a", "b"}
        assert again.node.peers["d1"].recv_to == 2
        # and the narrower policy holds for what comes now
        tags = GSet()
        tags.add("c")
        again.deliver(
            "devices", "le/u/d1", M.delta("d1", 1, 3, 3, 0, 1, False, {"tags": wire.to_typed(tags)})
        )
        again.step(wait=0)
        assert again.node.vars["tags"].value() == {"a", "b"}
        assert again.stats["d1"].rejected == 1
    finally:
        again.db.close()


def test_a_clean_stop_folds_the_journal_into_the_tables(tmp_path):
    path = str(tmp_path / "gw.db")
    gw, _sent = offline_gateway(path)
    give_schema(gw)
    for dev in DEVICES:
        gw.deliver("devices", "le/u/" + dev, delta_msg(dev, 1))
    gw.step(wait=0)
    for dev in DEVICES:
        gw.deliver("devices", "le/u/" + dev, delta_msg(dev, 2))
    gw.step(wait=0)
    assert gw.db.inputs_held == 2 * len(DEVICES)  # both batches journaled
    memory = gw.node.vars["impressions"].value()
    gw.stop()
    db = NodeDB(path)
    try:
        snap = db.load()
        assert db.inputs_held == 0
        assert snap is not None
        assert wire.from_typed(snap["vars"]["impressions"]).value() == memory
        assert {pid: r for pid, _e, _a, r, _i in snap["peers"] if pid in DEVICES} == {
            dev: 2 for dev in DEVICES
        }
    finally:
        db.close()


def test_group_commit_waits_for_company_only_while_it_is_cheap(tmp_path, monkeypatch):
    """``_hold_s``: how long queued messages wait before their batch is committed."""
    gw, _sent = offline_gateway(str(tmp_path / "gw.db"))
    try:
        now = [100.0]
        monkeypatch.setattr(service.time, "monotonic", lambda: now[0])
        assert gw.commit_delay_s == 0.02  # the gateway's default
        assert gw._hold_s() == 0.0  # nothing queued
        gw.deliver("devices", "le/u/d1", delta_msg("d1", 1))
        now[0] += 0.005
        assert abs(gw._hold_s() - 0.015) < 1e-9  # 20 ms after the first message
        now[0] += 0.015
        assert gw._hold_s() <= 0.0  # its time is up
        now[0] -= 0.015
        gw._on_synced(1)  # a sync returned: its ACKs leave (release_durable), and the
        assert abs(gw._hold_s() - 0.015) < 1e-9  # batch keeps gathering
        for k in range(2, 1 + service.GROUP_COMMIT_BATCH):
            gw.deliver("devices", "le/u/d1", delta_msg("d1", k))
        assert gw._hold_s() == 0.0  # a full batch (a busy gateway) never waits
        gw.commit_delay_s = 0.0
        while not gw.inbox.empty():
            gw.inbox.get_nowait()
        gw.deliver("devices", "le/u/d1", delta_msg("d1", 1))
        assert gw._hold_s() == 0.0  # group commit off
    finally:
        gw.db.close()
