"""Persistence: reopen holds what was committed; kill -9 loses nothing update returned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lasp_edge.store import Store, core

WORKER = os.path.join(os.path.dirname(__file__), "store_worker.py")


def test_reopen_holds_every_kind_of_variable(tmp_path):
    path = str(tmp_path / "s.db")
    s = Store("me", path)
    s.declare("S", "awset")
    s.declare("impr", "awmap", vtype="gcounter")
    s.declare("w", "window", size=2)
    s.declare_dynamic("top", "topk", k=2)
    s.fold_dynamic("top", None, "board")
    for x in range(5):
        s.update("S", "add", x)
    s.update("S", "remove", 3)
    s.update("impr", "update", "ad", "increment", 4)
    s.update("w", "observe", 7, 1.5)
    s.update("top", "add", "p", 9)
    s.map("S", lambda x: x + 1, "T")
    expect = {n: s.state(n) for n in ("S", "impr", "w", "top", "board")}
    seq, pending = s.last_seq, s.pending()
    s.close()

    r = Store("me", path)
    for n, st in expect.items():
        assert r.state(n) == st, n
    assert r.last_seq == seq
    assert [(p.seq, p.name, p.delta) for p in r.pending()] == [
        (p.seq, p.name, p.delta) for p in pending
    ]
    assert "T" not in r.variables()  # derived: rebuilt when the program re-declares it
    r.map("S", lambda x: x + 1, "T")
    assert r.query("T") == {1, 2, 3, 5}
    r.declare_dynamic("top", "topk", k=2)
    r.fold_dynamic("top", None, "board")
    assert r.query("board") == [("p", 9)]
    assert r.last_seq == seq  # nothing new to publish
    r.update("S", "add", 9)
    assert r.last_seq == seq + 1  # sequence numbers keep growing across restarts
    r.close()


def test_checkpoints_and_acks_bound_the_journal(tmp_path, monkeypatch):
    monkeypatch.setattr(core, "MIN_CHECKPOINT_BYTES", 200)
    path = str(tmp_path / "s.db")
    s = Store("me", path)
    s.declare("c", "gcounter")
    s.declare_dynamic("d", "gcounter")
    for _ in range(300):
        s.update("c", "increment")
        s.update("d", "increment")
    rows = s._db.conn.execute("SELECT COUNT(*), SUM(ship) FROM journal").fetchone()
    assert rows[1] == 300  # unacked shippable deltas are all kept for sync
    assert rows[0] < 400  # but dynamic rows were folded into checkpoints
    s.ack(s.last_seq)
    left = s._db.conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    assert left < 100
    s.close()
    r = Store("me", path)
    assert (r.query("c"), r.query("d"), r.pending()) == (300, 300, [])
    r.close()


def test_reset_is_durable(tmp_path):
    path = str(tmp_path / "s.db")
    s = Store("me", path)
    s.declare_dynamic("d", "awset")
    s.update("d", "add", 1)
    s.reset("d")
    s.update("d", "add", 2)
    s.close()
    r = Store("me", path)
    assert r.query("d") == {2}
    r.close()


def test_a_file_belongs_to_one_replica(tmp_path):
    path = str(tmp_path / "s.db")
    Store("a", path).close()
    with pytest.raises(ValueError, match="belongs to replica 'a'"):
        Store("b", path)
    with pytest.raises(ValueError, match="synchronous"):
        Store("a", path, synchronous="off")


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_kill_9_loses_nothing_that_update_returned(tmp_path, synchronous):
    path = str(tmp_path / "s.db")
    for round_ in range(2):  # crash, reopen, crash again on top of the recovered file
        proc = subprocess.Popen(
            [sys.executable, WORKER, "updates", path, synchronous],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        done = []
        for line in proc.stdout:
            done.append(int(line))
            if len(done) >= 150 + 37 * round_:
                break
        proc.send_signal(signal.SIGKILL)  # in the middle of whatever it was doing
        proc.wait()
        s = Store("w", path)
        acked = set(done)
        present = s.query("S")
        for i in acked:  # every add that returned is there, and every remove too
            if i % 3 != 2:
                assert i in present, i
            elif i + 1 in acked:  # remove(i) returned before i + 1 was printed
                assert i not in present, i
        assert s.query("c") >= len(done)
        s.close()


def test_a_file_has_one_owner_at_a_time(tmp_path):
    path = str(tmp_path / "s.db")
    s = Store("a", path)
    with pytest.raises(ValueError, match="open in another Store"):
        Store("a", path)
    s.close()
    Store("a", path).close()
