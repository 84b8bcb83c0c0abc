"""A deterministic in-memory network of sync ``Node``s with faults, and its oracle.

Topology: devices ``d1``, ``d2`` -> gateway ``gw`` -> aggregator ``agg``. Devices hold a
counter ``c``, a map ``m`` of counters and an add-wins set ``s``; they want only ``s`` back
(interests); ``gw`` and ``agg`` adopt whatever they are sent. Every node persists a CBOR
snapshot the way its real adapter would: devices on explicit flushes (and before sending),
gateway and aggregator before acknowledging. A crash throws away everything but the last
snapshot and restarts with the next epoch.

The oracle is the join of every delta that was durable when made, per variable: what every
interested replica must hold after the network heals.
"""

from lasp_edge import AWMap, AWSet, GCounter, cbor
from lasp_edge.sync import EV_MERGED, Node

DEVICES = ("d1", "d2")
UPSTREAM = {"d1": "gw", "d2": "gw", "gw": "agg"}


def make_node(rid, epoch):
    if rid in DEVICES:
        n = Node(rid, epoch, interests=["s"], max_payload=160, track_durable=True)
        n.declare("c", GCounter())
        n.declare("m", AWMap("gcounter"))
        n.declare("s", AWSet())
    else:
        n = Node(rid, epoch, auto_declare=True)
        n.declare("s", AWSet())
    n.sync_period_ms = 100
    n.ack_timeout_ms = 300
    n.max_timeout_ms = 1200
    return n


class Sim:
    def __init__(self):
        self.now = 0
        self.nodes = {}
        self.disk = {}  # rid -> snapshot bytes
        self.epochs = {}
        self.wire = []  # (src, dst, bytes) in flight
        self.oracle = {}  # var -> joined state of durable updates
        self.unflushed = {}  # rid -> [(var, delta)] made since the last device flush
        self.rejected = []
        for rid in DEVICES + ("gw", "agg"):
            self.boot(rid)

    # -- lifecycle -----------------------------------------------------------------------

    def boot(self, rid):
        self.epochs[rid] = self.epochs.get(rid, 0) + 1
        n = make_node(rid, self.epochs[rid])
        if rid in self.disk:
            n.restore(cbor.loads(self.disk[rid]))
        self.nodes[rid] = n
        self.unflushed[rid] = []
        self.persist(rid)
        for peer in self.peers_of(rid):
            n.hello(peer)
        self.collect(rid)

    def peers_of(self, rid):
        out = [UPSTREAM[rid]] if rid in UPSTREAM else []
        out += [d for d, up in UPSTREAM.items() if up == rid]
        return out

    def persist(self, rid):
        n = self.nodes[rid]
        self.disk[rid] = cbor.dumps(n.snapshot())
        if n.durable_seq is not None:
            n.mark_durable()
        for var, d in self.unflushed[rid]:
            self._oracle_add(var, d)
        self.unflushed[rid] = []

    def crash(self, rid):
        """Lose everything not persisted; in-flight messages to/from it may still arrive."""
        del self.nodes[rid]
        self.boot(rid)

    # -- workload ------------------------------------------------------------------------

    def _oracle_add(self, var, d):
        cur = self.oracle.get(var)
        if cur is None:
            self.oracle[var] = d.copy()
        else:
            cur.merge(d)

    def update(self, rid, var, op, *args):
        n = self.nodes[rid]
        d = n.update(var, op, *args)
        if rid in DEVICES:
            self.unflushed[rid].append((var, d))
        else:
            self._oracle_add(var, d)
            self.persist(rid)
        return d

    # -- network -------------------------------------------------------------------------

    def collect(self, rid):
        for dst, data in self.nodes[rid].take():
            self.wire.append((rid, dst, data))

    def tick(self, dt):
        self.now += dt
        for rid, n in self.nodes.items():
            if n.durable_seq is not None and self.unflushed[rid]:
                self.persist(rid)  # the device runtime flushes before it syncs
            n.tick(self.now)
            self.collect(rid)

    def deliver(self, i):
        src, dst, data = self.wire.pop(i % len(self.wire))
        node = self.nodes[dst]
        events = node.receive(data, self.now, peer=src)
        merged = [e for e in events if e[0] == EV_MERGED]
        self.rejected += [e for e in events if e[0] == "rejected"]
        if merged:
            self.persist(dst)  # durable before acknowledging
            for e in merged:
                node.commit(e[3])
        self.collect(dst)

    def heal(self, max_steps=5000):
        """No more faults: deliver everything, tick, until nothing is pending."""
        for _ in range(max_steps):
            if self.wire:
                self.deliver(0)
                continue
            self.tick(50)
            if not self.wire and all(n.next_deadline_ms() is None for n in self.nodes.values()):
                return True
        return False
