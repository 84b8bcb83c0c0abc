"""Batching and the fsync off the loop never acknowledge what is not durable.

The gateway is driven by hand (``deliver`` + ``step``, what its paho thread and service
thread do), with a stand-in for the fsync thread, so the test decides when the disk
"finishes" a sync. Hypothesis interleaves device DELTAs (duplicated, reordered, several per
batch, gaps), turns of the loop and syncs. Whenever the disk reports a sync, the test takes
a *crash copy* of the database (the files as they are: what ``kill -9`` or, for what the
sync covered, a power loss leaves) and opens it as a restarted gateway (which replays
the batches it journaled as messages since its last full save). Every ACK
that leaves must be covered by the last crash copy taken before it left: the device's mark
(``recv_to``) and its data there are at least what the ACK says. At the end everything is
delivered in order and synced, and gateway, crash copy and oracle (each device's highest
count) agree.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_gw_nodedb import give_schema, offline_gateway

from lasp_edge import AWMap, wire
from lasp_edge.sync import messages as M
from lasp_gateway.gateway import Gateway

DEVICES = ["d1", "d2", "d3"]
MAX_SEQ = 6


def delta_msg(dev: str, k: int) -> bytes:
    """Device ``dev``'s DELTA number ``k``: its slot for its own ad counts ``k`` (cumulative,
    so delta ``k`` holds everything of deltas ``1..k``: the oracle is the highest ``k``)."""
    m = AWMap("gcounter")
    m.update("ad-" + dev, "increment", dev, k)
    return M.delta(dev, 1, k, k, 0, 1, False, {"impressions": wire.to_typed(m)})


def birth_msg(dev: str) -> bytes:
    return M.birth(dev, 1, {"impressions": 11}, ["ads"], 0, False)


class HeldSyncer:
    """Stands in for ``WalSyncer``: records what was asked; the test says when it is done."""

    def __init__(self) -> None:
        self.requested = 0

    def request(self, n: int) -> None:
        self.requested = n

    def close(self) -> None:
        pass


def restarted(path: str, into: Path) -> Gateway:
    """A gateway opened on a copy of the files as they are now (what ``kill -9`` leaves);
    it replays what it had journaled since its last full save."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir()
    for suffix in ("", "-wal"):
        if Path(path + suffix).exists():
            shutil.copyfile(path + suffix, into / ("gw.db" + suffix))
    return offline_gateway(str(into / "gw.db"))[0]


def crash_copy(path: str, into: Path) -> dict[str, Any]:
    """``{device: (recv_to, count)}`` as a gateway restarted now would hold them."""
    gw = restarted(path, into)
    try:
        node = gw.node
        counts = node.vars["impressions"].value() if "impressions" in node.vars else {}
        return {
            pid: (p.recv_to, counts.get("ad-%s" % pid, 0))
            for pid, p in node.peers.items()
            if pid in DEVICES
        }
    finally:
        gw.db.close()


def acks_in(sent: list) -> list[tuple[str, int]]:
    return [(peer, m.recv_to) for peer, m in sent if m.kind == M.ACK]


def check_covered(acks: list[tuple[str, int]], durable: dict[str, Any]) -> None:
    for dev, recv_to in acks:
        held_to, count = durable.get(dev, (0, 0))
        assert recv_to <= held_to, "ACK %s:%d left before it was durable" % (dev, recv_to)
        assert recv_to <= count, "ACK %s:%d but its data is not on disk" % (dev, recv_to)


actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(DEVICES), st.integers(1, MAX_SEQ)),
        st.just(("step",)),
        st.just(("sync",)),
        st.just(("release",)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(script=actions)
@example(script=[("send", "d1", 1), ("step",), ("release",)])  # released before its sync
def test_no_ack_leaves_before_the_sync_that_covers_it(script):
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "gw.db")
        gw, sent = offline_gateway(path)
        try:
            run_script(gw, sent, path, Path(tmp) / "crash", script)
        finally:
            gw.db.close()


def run_script(gw: Gateway, sent: list, path: str, crash: Path, script: list) -> None:
    give_schema(gw)
    syncer = HeldSyncer()
    gw.start_syncer(syncer)
    for dev in DEVICES:
        gw.deliver("devices", "le/u/" + dev, birth_msg(dev))
    durable: dict[str, Any] = {}

    def turn() -> None:
        sent.clear()
        gw.step(wait=0)
        check_covered(acks_in(sent), durable)

    def sync() -> None:
        nonlocal durable
        durable = crash_copy(path, crash)  # the disk holds this much now
        gw._on_synced(syncer.requested)  # as the fsync thread reports it

    def release() -> None:  # the loop's turn after a sync, while a batch gathers
        sent.clear()
        gw.release_durable()
        check_covered(acks_in(sent), durable)

    turn()
    for act in script:
        if act[0] == "send":
            gw.deliver("devices", "le/u/" + act[1], delta_msg(act[1], act[2]))
        elif act[0] == "step":
            turn()
        elif act[0] == "release":
            release()
        else:
            sync()
    # Then every device sends everything in order, and the disk keeps up.
    last: dict[str, int] = {}
    for k in range(1, MAX_SEQ + 1):
        for dev in DEVICES:
            gw.deliver("devices", "le/u/" + dev, delta_msg(dev, k))
        turn()
        sync()
        turn()
        last.update(acks_in(sent))
    sync()
    turn()
    last.update(acks_in(sent))
    assert last == {dev: MAX_SEQ for dev in DEVICES}
    want = {"ad-" + dev: MAX_SEQ for dev in DEVICES}
    assert gw.node.vars["impressions"].value() == want
    assert crash_copy(path, crash) == {dev: (MAX_SEQ, MAX_SEQ) for dev in DEVICES}


def test_a_sync_releases_its_acks_and_the_gathering_batch_keeps_gathering(tmp_path):
    """After an fsync the loop sends what it covers (``release_durable``) without
    committing the messages queued since: a commit for them now would start the next fsync
    at once, and a steady fleet would commit a few messages per fsync instead of a batch
    per commit delay."""
    gw, sent = offline_gateway(str(tmp_path / "gw.db"))
    try:
        give_schema(gw)
        syncer = HeldSyncer()
        gw.start_syncer(syncer)
        sent.clear()
        for dev in ("d1", "d2"):
            gw.deliver("devices", "le/u/" + dev, birth_msg(dev))
        gw.deliver("devices", "le/u/d1", delta_msg("d1", 1))
        gw.step(wait=0)
        assert acks_in(sent) == []  # held: its save is not durable yet
        gw.deliver("devices", "le/u/d2", delta_msg("d2", 1))  # the next batch gathers
        saves, queued = gw.db.saves, gw.inbox.qsize()
        gw._on_synced(syncer.requested)
        gw.release_durable()
        assert acks_in(sent) == [("d1", 1)]
        assert gw.db.saves == saves  # d2's DELTA was not committed ...
        assert gw.inbox.qsize() == queued + 1  # ... nor taken (the sync's own item joins it)
        sent.clear()
        gw.step(wait=0)  # its batch's time came
        assert acks_in(sent) == [] and gw.db.saves == saves + 1
        gw._on_synced(syncer.requested)
        gw.release_durable()
        assert acks_in(sent) == [("d2", 1)]
    finally:
        gw.db.close()


def test_one_ack_per_device_and_batch(tmp_path):
    """Three DELTAs of one device in one batch: one ACK (they are cumulative), the last."""
    gw, sent = offline_gateway(str(tmp_path / "gw.db"))
    try:
        give_schema(gw)
        for dev in ("d1", "d2"):
            gw.deliver("devices", "le/u/" + dev, birth_msg(dev))
        gw.step(wait=0)
        sent.clear()
        for k in (1, 2, 3):
            gw.deliver("devices", "le/u/d1", delta_msg("d1", k))
        gw.deliver("devices", "le/u/d2", delta_msg("d2", 1))
        gw.step(wait=0)  # no syncer started: synced in line
        assert sorted(acks_in(sent)) == [("d1", 3), ("d2", 1)]
    finally:
        gw.db.close()


def test_the_fsync_thread_releases_acks_and_a_failed_fsync_stops_the_loop(tmp_path):
    path = str(tmp_path / "gw.db")
    gw, sent = offline_gateway(path)
    try:
        assert gw.db.fsync_apart  # the gateway's default with synchronous="full"
        give_schema(gw)
        gw.start_syncer()  # the real thread
        sent.clear()
        gw.deliver("devices", "le/u/d1", birth_msg("d1"))
        gw.deliver("devices", "le/u/d1", delta_msg("d1", 1))
        deadline = time.monotonic() + 60
        while not acks_in(sent) and time.monotonic() < deadline:
            gw.step(wait=0.05)
        assert acks_in(sent) == [("d1", 1)]
        assert gw.db.wal_syncs >= 2  # at open, then for the save
        # The disk fails: the loop stops (fail-stop) and the ACK never leaves.
        gate = threading.Event()

        def failing() -> None:
            gate.set()
            raise OSError("I/O error")

        gw.db.sync_wal = failing  # type: ignore[method-assign]
        sent.clear()
        gw.deliver("devices", "le/u/d1", delta_msg("d1", 2))
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                gw.step(wait=0.05)
        assert gate.is_set() and not acks_in(sent)
    finally:
        gw.stop()  # the fsync thread, then the database (the links never started)
