"""Each protocol rule on its own, through the public Node API, two nodes back to back."""

import random

import pytest

from lasp_edge import AWMap, AWSet, GCounter, cbor
from lasp_edge.sync import EV_BIRTH, EV_DEATH, EV_MERGED, EV_REJECTED, Node
from lasp_edge.sync import messages as M


def pair(**dev_kw):
    dev = Node("d1", 1, interests=["s"], **dev_kw)
    gw = Node("gw", 1, auto_declare=True)
    for n in (dev, gw):
        n.sync_period_ms = 0
    dev.declare("c", GCounter())
    dev.declare("s", AWSet())
    gw.declare("s", AWSet())
    return dev, gw


def holds_nothing(node, var):
    """The variable may be declared (peers announce what they hold) but has no data."""
    return var not in node.vars or node.vars[var].is_bottom()


def pump(a, b, now=0, rounds=20, drop=None):
    """Deliver everything both ways until quiet; ``drop(msg)`` may discard messages."""
    events = []
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            src.tick(now)
            for _peer, data in src.take():
                moved = True
                if drop is not None and drop(data):
                    continue
                for ev in dst.receive(data, now, peer=src.replica):
                    events.append((dst.replica, ev))
                    if ev[0] == EV_MERGED:
                        dst.commit(ev[3])
        if not moved:
            break
    return events


def connect(dev, gw):
    dev.hello("gw")
    return pump(dev, gw)


def test_birth_handshake_makes_both_sides_online():
    dev, gw = pair()
    events = connect(dev, gw)
    assert ("gw", (EV_BIRTH, "d1", True)) in events
    assert dev.peers["gw"].online and gw.peers["d1"].online
    assert gw.peers["d1"].interests == {"s"}


def test_deltas_flow_up_and_only_interests_flow_down():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("c", "increment", "d1", 4)
    gw.declare("other", GCounter())
    gw.update("other", "increment", "gw", 9)
    gw.update("s", "add", "gw", "ad-1")
    pump(dev, gw)
    assert gw.vars["c"].value() == 4
    assert dev.vars["s"].value() == {"ad-1"}
    assert "other" not in dev.vars


def test_a_delta_is_never_echoed_to_the_peer_it_came_from():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("s", "add", "d1", "x")
    sent_down = []
    pump(dev, gw)
    gw.tick(10_000)
    sent_down = [M.decode(d) for _p, d in gw.take()]
    assert all(m.kind != M.DELTA for m in sent_down)
    assert gw.vars["s"].value() == {"x"}


def test_acks_come_only_from_commit_and_trim_the_log():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("c", "increment", "d1")
    dev.tick(0)
    [(_, data)] = dev.take()
    events = gw.receive(data, 0, peer="d1")
    assert [e[0] for e in events] == [EV_MERGED]
    assert gw.take() == []  # nothing acknowledged before the adapter says "durable"
    assert dev.log.size() == 1
    gw.commit(events[0][3])
    [(_, ack)] = gw.take()
    dev.receive(ack, 0, peer="gw")
    assert dev.log.size() == 0


def test_only_durable_changes_leave_a_tracking_node():
    dev, gw = pair(track_durable=True)
    dev.mark_durable()
    connect(dev, gw)
    dev.update("c", "increment", "d1", 2)
    pump(dev, gw)
    assert holds_nothing(gw, "c")
    dev.mark_durable()
    pump(dev, gw)
    assert gw.vars["c"].value() == 2


def test_lost_messages_are_resent_after_the_ack_timeout():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("c", "increment", "d1", 3)
    pump(dev, gw, now=0, drop=lambda d: M.decode(d).kind == M.DELTA)
    assert holds_nothing(gw, "c")
    assert dev.next_deadline_ms() == dev.ack_timeout_ms
    pump(dev, gw, now=dev.ack_timeout_ms)
    assert gw.vars["c"].value() == 3


def test_lost_births_are_asked_again():
    dev, gw = pair()
    dev.hello("gw")
    pump(dev, gw, drop=lambda d: M.decode(d).kind == M.BIRTH)
    assert not gw.peers.get("d1") or not gw.peers["d1"].online
    pump(dev, gw, now=10 * dev.ack_timeout_ms)
    assert dev.peers["gw"].online and gw.peers["d1"].online


def test_large_deltas_are_split_and_acked_only_when_every_part_arrived():
    dev, gw = pair()
    dev.max_payload = 200
    dev.declare("m", AWMap("gcounter"))
    connect(dev, gw)
    for i in range(60):
        dev.update("m", "update", "ad-%02d" % i, "increment", "d1", i + 1)
    dev.tick(0)
    out = dev.take()
    assert len(out) > 3
    assert all(len(data) <= 220 for _p, data in out)
    for _p, data in out[:-1]:
        for ev in gw.receive(data, 0, peer="d1"):
            gw.commit(ev[3])
    assert gw.take() == []  # one part missing: no ack yet
    for ev in gw.receive(out[-1][1], 0, peer="d1"):
        gw.commit(ev[3])
    assert [M.decode(d).kind for _p, d in gw.take()] == [M.ACK]
    assert gw.vars["m"].value() == {"ad-%02d" % i: i + 1 for i in range(60)}


def test_a_new_peer_gets_full_state_once_the_log_was_released():
    dev, gw = pair()
    connect(dev, gw)
    gw.update("s", "add", "gw", "a")
    pump(dev, gw)
    assert gw.log.size() == 0 and gw.log.trimmed_to > 0
    late = Node("d2", 1, interests=["s"])
    late.declare("s", AWSet())
    late.sync_period_ms = 0
    late.hello("gw")
    pump(late, gw)
    assert late.vars["s"].value() == {"a"}


def test_a_gap_makes_the_receiver_rebirth_and_the_sender_rewind():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("c", "increment", "d1")
    pump(dev, gw)
    fresh_gw = Node("gw", 2, auto_declare=True)  # lost its record of d1 entirely
    fresh_gw.sync_period_ms = 0
    dev.update("c", "increment", "d1")
    dev.tick(0)
    [(_, data)] = dev.take()
    fresh_gw.receive(data, 0, peer="d1")
    kinds = [M.decode(d).kind for _p, d in fresh_gw.take()]
    assert M.BIRTH in kinds
    fresh_gw.hello("d1")
    pump(dev, fresh_gw)
    assert fresh_gw.vars["c"].value() == 2


def test_stale_will_is_ignored_and_current_will_marks_offline():
    dev, gw = pair()
    connect(dev, gw)
    will_1 = dev.death_message()
    dev2 = Node("d1", 2, interests=["s"])
    dev2.declare("s", AWSet())
    dev2.hello("gw")
    pump(dev2, gw)
    assert gw.receive(will_1, 0, peer="d1") == []
    assert gw.peers["d1"].online
    assert gw.receive(dev2.death_message(), 0, peer="d1") == [(EV_DEATH, "d1")]
    assert not gw.peers["d1"].online


def test_a_message_claiming_another_sender_is_rejected():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("c", "increment", "d1")
    dev.tick(0)
    [(_, data)] = dev.take()
    [ev] = gw.receive(data, 0, peer="d9")
    assert ev[0] == EV_REJECTED and "does not match" in ev[2]
    assert holds_nothing(gw, "c")


def test_authorize_hook_rejects_and_counts_forged_writes():
    def only_own_slot(peer, var, delta):
        touched = delta.replicas() if hasattr(delta, "replicas") else set()
        return None if touched <= {peer} else "touches %s" % sorted(touched - {peer})

    dev, gw = pair()
    gw.authorize = only_own_slot
    connect(dev, gw)
    dev.update("c", "increment", "someone-else", 100)
    dev.tick(0)
    [(_, data)] = dev.take()
    [ev] = gw.receive(data, 0, peer="d1")
    assert ev[0] == EV_REJECTED and "unauthorized" in ev[2]
    assert gw.peers["d1"].rejected == 1
    assert holds_nothing(gw, "c")


def test_a_type_conflict_is_rejected_not_merged():
    dev, gw = pair()
    gw.declare("c", AWSet())
    connect(dev, gw)
    dev.update("c", "increment", "d1")
    dev.tick(0)
    [(_, data)] = dev.take()
    events = gw.receive(data, 0, peer="d1")
    assert events[0][0] == EV_REJECTED and "'c'" in events[0][2]
    assert gw.vars["c"].is_bottom()


def test_garbage_never_raises_and_is_counted():
    _dev, gw = pair()
    rng = random.Random(11)
    valid = M.delta("d1", 1, 1, 1, 0, 1, False, {"c": [1, {"d1": 1}]})
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    samples += [valid[:i] for i in range(len(valid))]
    samples += [
        cbor.dumps([1, 3, "d1", 1, 5, 2, 0, 1, False, {}]),  # seq_from > seq_to
        cbor.dumps([1, 3, "d1", 1, 1, 1, 3, 2, False, {}]),  # part >= nparts
        cbor.dumps([1, 3, "d1", 1, 1, 1, 0, 1, False, {"c": [99, {}]}]),  # unknown tag
        cbor.dumps([2, 4, "d1", 1, 1, 1]),  # unknown version
        cbor.dumps([1, 9, "d1", 1]),  # unknown kind
        cbor.dumps([1, 4, "d1", -1, 1, 1]),  # negative epoch
        cbor.dumps([1, 1, "d1", 1, {"x" * 65: 1}, None, 0, True]),  # var name too long
    ]
    for data in samples:
        events = gw.receive(data, 0, peer="d1")
        assert all(e[0] == EV_REJECTED for e in events)


def test_decoder_round_trips_every_kind():
    b = M.decode(M.birth("d1", 3, {"c": 1}, ["s"], 7, True))
    assert (b.kind, b.sender, b.epoch, b.holds, b.interests, b.recv_to, b.ask) == (
        M.BIRTH,
        "d1",
        3,
        {"c": 1},
        ["s"],
        7,
        True,
    )
    d = M.decode(M.delta("d1", 3, 4, 9, 1, 2, True, {"c": [1, {"d1": 5}]}))
    assert (d.seq_from, d.seq_to, d.part, d.nparts, d.full) == (4, 9, 1, 2, True)
    assert d.deltas["c"].value() == 5
    a = M.decode(M.ack("gw", 2, 3, 9))
    assert (a.kind, a.epoch, a.acked_epoch, a.recv_to) == (M.ACK, 2, 3, 9)
    assert M.decode(M.death("d1", 3)).kind == M.DEATH


def test_oversized_messages_are_rejected():
    _dev, gw = pair()
    gw.max_message = 100
    big = M.delta("d1", 1, 1, 1, 0, 1, False, {"c": [1, {"r%d" % i: 1 for i in range(40)}]})
    [ev] = gw.receive(big, 0, peer="d1")
    assert ev[0] == EV_REJECTED and "exceeds" in ev[2]


def test_snapshot_restore_keeps_state_log_and_peers():
    dev, gw = pair()
    connect(dev, gw)
    dev.update("c", "increment", "d1", 5)
    snap = cbor.loads(cbor.dumps(dev.snapshot()))
    again = Node("d1", 2, interests=["s"])
    again.restore(snap)
    assert again.vars["c"].value() == 5
    assert again.log.size() == dev.log.size()
    assert again.peers["gw"].recv_to == dev.peers["gw"].recv_to


def test_the_log_stays_bounded_when_a_peer_never_acknowledges():
    dev, gw = pair()
    connect(dev, gw)
    for t in range(200):
        dev.update("c", "increment", "d1")
        dev.tick(t * 10_000)
        dev.take()  # every send is lost
    assert dev.log.size() <= 10
    pump(dev, gw, now=10**9)
    assert gw.vars["c"].value() == 200


@pytest.mark.parametrize("kind", ["birth", "delta", "ack", "death"])
def test_messages_are_canonical_cbor(kind):
    msg = {
        "birth": M.birth("d1", 1, {"s": 5, "c": 1}, ["s"], 0, True),
        "delta": M.delta("d1", 1, 1, 2, 0, 1, False, {"c": [1, {"d1": 2}]}),
        "ack": M.ack("gw", 1, 1, 2),
        "death": M.death("d1", 1),
    }[kind]
    assert cbor.dumps(cbor.loads(msg)) == msg


def test_auto_declared_variables_keep_the_parameters_of_their_first_delta():
    from lasp_edge import TopK

    dev, gw = pair()
    dev.declare("top", TopK(5))
    dev.update("top", "add", "ann", 10)
    connect(dev, gw)
    events = pump(dev, gw)
    assert not [e for _n, e in events if e[0] == EV_REJECTED]
    assert gw.vars["top"].k == 5
    assert gw.vars["top"].value() == [("ann", 10)]


def test_one_mistyped_variable_does_not_block_the_others():
    dev, gw = pair()
    gw.declare("c", AWSet())  # a configuration mismatch for "c" only
    dev.declare("m", AWMap("gcounter"))
    connect(dev, gw)
    dev.update("c", "increment", "d1")
    dev.update("m", "update", "ad-1", "increment", "d1", 3)
    events = pump(dev, gw)
    rejected = [e for _n, e in events if e[0] == EV_REJECTED]
    assert len(rejected) >= 1 and "'c'" in rejected[0][2]
    assert gw.vars["m"].value() == {"ad-1": 3}
    assert gw.vars["c"].is_bottom()
    assert dev.log.size() == 0  # acknowledged: the sender is not stuck resending
