"""``Node.tick`` skips a peer when nothing it wants was logged since it last had nothing
pending (``Peer.checked``, ``DeltaLog.var_seq``): a gateway's tick walks every device, and
most devices want none of the variables the fleet keeps growing. A skipped peer must never
miss a send.

The property: the same script of local updates, peers' DELTAs, durability marks, ticks,
ACKs and (re)births, run on a node with the shortcut and on one without it, makes both
send the same bytes.
"""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lasp_edge import GCounter, wire
from lasp_edge.sync import Node
from lasp_edge.sync import messages as M

VARS = ("a", "b")
PEERS = ("p0", "p1")


class AlwaysLooks(Node):
    """The reference: every due peer's log is walked (no peer is ever marked checked)."""

    def tick(self, now_ms):
        for p in self.peers.values():
            p.checked = -1
        super().tick(now_ms)


def gateway(cls):
    n = cls("gw", 1, sync_period_ms=0, ack_timeout_ms=10_000, track_durable=True)
    for v in VARS:
        n.declare(v, GCounter())
    return n


INTERESTS = st.one_of(st.none(), st.lists(st.sampled_from(VARS), unique=True, max_size=2))
STEP = st.one_of(
    st.tuples(st.just("update"), st.sampled_from(VARS)),
    st.tuples(st.just("delta"), st.tuples(st.sampled_from(PEERS), st.sampled_from(VARS))),
    st.tuples(st.just("durable"), st.booleans()),
    st.tuples(st.just("tick"), st.just(None)),
    st.tuples(st.just("ack"), st.sampled_from(PEERS)),
    # a birth's recv_to: nothing held yet, or everything logged so far
    st.tuples(st.just("birth"), st.tuples(st.sampled_from(PEERS), INTERESTS, st.booleans())),
)


def run(node, script):
    """Apply ``script``; return every message the node sent, in order."""
    sent = []
    last_to = {}  # peer -> seq_to of the last DELTA it was sent
    epochs = dict.fromkeys(PEERS, 0)
    seqs = dict.fromkeys(PEERS, 0)  # the peer's own log, for its DELTAs
    now = 0
    for kind, arg in script:
        if kind == "update":
            node.update(arg, "increment", "gw", 1)
        elif kind == "delta" and epochs[arg[0]]:
            pid, var = arg
            seqs[pid] += 1
            typed = {var: wire.to_typed(GCounter().increment(pid, seqs[pid]))}
            data = M.delta(pid, epochs[pid], seqs[pid], seqs[pid], 0, 1, False, typed)
            node.receive(data, now, pid)
        elif kind == "durable":  # everything logged, or all but the newest change
            behind = max(node.durable_seq or 0, node.log.last_seq - 1)
            node.mark_durable(None if arg else behind)
        elif kind == "tick":
            now += 10
            node.tick(now)
        elif kind == "ack" and arg in last_to and epochs[arg]:
            node.receive(M.ack(arg, epochs[arg], node.epoch, last_to[arg]), now, arg)
        elif kind == "birth":
            pid, interests, holds_all = arg
            epochs[pid] += 1
            seqs[pid] = 0
            recv_to = node.log.last_seq if holds_all else 0
            node.receive(M.birth(pid, epochs[pid], {}, interests, recv_to, False), now, pid)
        for pid, data in node.take():
            m = M.decode(data)
            if m.kind == M.DELTA:
                last_to[pid] = m.seq_to
            sent.append((pid, data))
    return sent


@settings(max_examples=500, deadline=None)
@given(st.lists(STEP, min_size=10, max_size=60))
# A peer that already holds everything (its birth says so) is found with nothing pending
# while the segment it would need is still open; the next update joins that open segment,
# and must still wake the peer.
@example(
    [
        ("update", "a"),
        ("durable", True),
        ("birth", ("p0", ["a"], True)),
        ("tick", None),
        ("update", "a"),
        ("durable", True),
        ("tick", None),
    ]
)
def test_skipping_quiet_peers_never_changes_what_is_sent(script):
    assert run(gateway(Node), script) == run(gateway(AlwaysLooks), script)


def test_a_peer_that_wants_nothing_that_changed_is_not_walked():
    """The shortcut is taken: once a peer was found with nothing pending, updates to
    variables it does not want leave it alone (counted through ``_send_to``)."""
    walked = []

    class Counting(Node):
        def _send_to(self, p, now_ms):
            walked.append(p.id)
            return super()._send_to(p, now_ms)

    node = gateway(Counting)
    run(node, [("birth", ("p0", ["a"], False)), ("birth", ("p1", ["b"], False)), ("tick", None)])
    walked.clear()
    run(node, [("update", "b"), ("durable", True), ("tick", None), ("tick", None)])
    assert walked == ["p1"]  # p1 got its DELTA; p0 (wants only "a") was skipped
