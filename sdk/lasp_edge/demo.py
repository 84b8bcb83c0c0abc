"""`lasp-edge demo`: replicas counting ad impressions offline and converging over a bad network.

This is the main job until the MQTT services land: a small, honest end-to-end run of the
portable core. Each device keeps an ``AWMap`` of ad id -> ``GCounter`` and a buffer of the
deltas it has not had acknowledged. Every round, online devices count impressions and ship
the *join* of their unacknowledged deltas as CBOR bytes through a network that loses,
duplicates and reorders messages, and devices drop off-line for a while. The aggregator
merges what arrives and acknowledges it (acks are lost too). A device forgets a delta only
once it is acknowledged; resending is always safe because join is idempotent.

At the end the network heals, everyone syncs, and the aggregator's counts are checked
against an oracle of every impression counted.
"""

import random
import sys

from lasp_edge import AWMap, cbor, wire


class Device:
    def __init__(self, rid):
        self.rid = rid
        self.state = AWMap("gcounter")
        self.pending = AWMap("gcounter")  # join of deltas not yet acknowledged
        self.sent_seq = 0  # sequence of the last delta group sent
        self.acked_seq = 0
        self.inflight: tuple | None = None  # (seq, delta group) awaiting its ack

    def count(self, ad, n):
        self.pending.merge(self.state.update(ad, "increment", self.rid, n))

    def outgoing(self):
        """One message: [seq, typed delta group]; seq names the group for the ack."""
        if self.pending.is_bottom():
            return None
        self.sent_seq += 1
        self.inflight = (self.sent_seq, self.pending.copy())
        return cbor.dumps([self.rid, self.sent_seq, wire.to_typed(self.pending)])

    def on_ack(self, seq):
        if self.inflight is not None and seq == self.inflight[0]:
            # Forget exactly what that message carried; later counts stay pending.
            sent = self.inflight[1]
            if sent == self.pending:
                self.pending = AWMap("gcounter")
            self.acked_seq = seq
            self.inflight = None


class LossyNetwork:
    """Delivers byte messages with loss, duplication and reordering, seeded."""

    def __init__(self, rng, loss, dup):
        self.rng, self.loss, self.dup = rng, loss, dup
        self.queue = []
        self.sent = self.delivered = self.bytes = 0

    def send(self, msg):
        self.sent += 1
        self.bytes += len(msg)
        if self.rng.random() < self.loss:
            return
        self.queue.append(msg)
        if self.rng.random() < self.dup:
            self.queue.append(msg)

    def drain(self):
        self.rng.shuffle(self.queue)
        out, self.queue = self.queue, []
        self.delivered += len(out)
        return out


def run(devices=5, rounds=30, ads=4, loss=0.2, dup=0.1, offline=0.3, seed=1, out=sys.stdout):
    rng = random.Random(seed)
    fleet = [Device("dev-%d" % i) for i in range(1, devices + 1)]
    by_id = {d.rid: d for d in fleet}
    agg = AWMap("gcounter")
    oracle: dict = {}
    up = LossyNetwork(rng, loss, dup)
    down = LossyNetwork(rng, loss, dup)
    off_until: dict = {}
    full_state_bytes = 0
    ad_ids = ["ad-%d" % i for i in range(1, ads + 1)]

    def sync_round(r, heal=False):
        nonlocal full_state_bytes
        for d in fleet:
            if not heal and off_until.get(d.rid, -1) >= r:
                continue
            msg = d.outgoing()
            if msg is not None:
                up.send(msg)
                full_state_bytes += len(wire.dumps(d.state))
        for msg in up.drain():
            rid, seq, typed = cbor.loads(msg)
            agg.merge(wire.from_typed(typed))
            down.send(cbor.dumps([rid, seq]))
        for msg in down.drain():
            rid, seq = cbor.loads(msg)
            by_id[rid].on_ack(seq)

    out.write(
        "lasp-edge demo: %d devices, %d ads, %d rounds, loss %.0f%%, dup %.0f%%, seed %d\n"
        % (devices, ads, rounds, loss * 100, dup * 100, seed)
    )
    live = hasattr(out, "isatty") and out.isatty()  # a status line on a terminal, else a log
    for r in range(rounds):
        for d in fleet:
            if d.rid not in off_until or off_until[d.rid] < r:
                if rng.random() < offline / 5:
                    off_until[d.rid] = r + rng.randint(2, 6)
            for _ in range(rng.randint(0, 3)):
                ad = rng.choice(ad_ids)
                n = rng.randint(1, 5)
                d.count(ad, n)  # always succeeds, online or not
                oracle[ad] = oracle.get(ad, 0) + n
        sync_round(r)
        offline_now = sum(1 for d in fleet if off_until.get(d.rid, -1) >= r)
        behind = sum(oracle.values()) - sum(agg.value().values())
        line = "round %3d/%d  offline %d  messages %4d  impressions not yet at aggregator %4d" % (
            r + 1,
            rounds,
            offline_now,
            up.sent,
            behind,
        )
        if live:
            out.write("\r" + line)
            out.flush()
        elif (r + 1) % 5 == 0 or r + 1 == rounds:
            out.write(line + "\n")
    out.write(
        "%snetwork healed; syncing until every delta is acknowledged ...\n" % ("\n" if live else "")
    )
    heal_rounds = 0
    while any(not d.pending.is_bottom() for d in fleet) and heal_rounds < 200:
        heal_rounds += 1
        sync_round(rounds + heal_rounds, heal=True)
    got = agg.value()
    out.write("\n%-8s %12s %12s  %s\n" % ("ad", "aggregator", "oracle", "match"))
    ok = True
    for ad in ad_ids:
        match = got.get(ad, 0) == oracle.get(ad, 0)
        ok = ok and match
        out.write("%-8s %12d %12d  %s\n" % (ad, got.get(ad, 0), oracle.get(ad, 0), match))
    out.write(
        "\nconverged after %d healing rounds; %d delta messages, %d bytes "
        "(full-state sync would have sent %d bytes: %.1fx more)\n"
        % (heal_rounds, up.sent, up.bytes, full_state_bytes, full_state_bytes / max(up.bytes, 1))
    )
    out.write(
        "RESULT: %s\n" % ("converged, nothing lost, nothing double-counted" if ok else "MISMATCH")
    )
    return 0 if ok else 1
