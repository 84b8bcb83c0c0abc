"""MicroPython: the sync protocol end to end between two in-process Nodes, with faults.

    micropython -X heapsize=... tests/device/sync_mp.py [repo root] [bundle dir]

A device node (AWMap of ad -> GCounter, interested in the gateway's AWSet of ads) and a
gateway node exchange messages through a seeded channel that loses, duplicates and
reorders them, while the device keeps counting and the gateway keeps changing the ads. The
device persists (snapshot through CBOR) before it sends, and crashes now and then,
restarting from that snapshot with the next epoch. After healing, the gateway must hold
exactly the impressions counted (the oracle) and the device exactly the gateway's ads.
Prints "sync: N passed, M failed" and exits 1 on failure.
"""

import gc
import os
import random
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else (os.getenv("LASP_EDGE_ROOT") or ".")
BASE = sys.argv[2] if len(sys.argv) > 2 else ROOT + "/sdk"
sys.path.insert(0, BASE)

from lasp_edge import AWMap, AWSet, cbor  # noqa: E402
from lasp_edge.sync import Node  # noqa: E402

print("lasp_edge from", BASE)


def device(epoch, disk):
    n = Node("d1", epoch, interests=["ads"], max_payload=300, track_durable=True)
    if disk is not None:
        n.restore(cbor.loads(disk))
    else:
        n.declare("imp", AWMap("gcounter"))
        n.declare("ads", AWSet())
    n.sync_period_ms = 100
    n.ack_timeout_ms = 400
    return n


def gateway():
    n = Node("gw", 1, auto_declare=True)
    n.declare("ads", AWSet())
    n.sync_period_ms = 100
    return n


def run(seed, rounds):
    rng = random.Random(seed) if hasattr(random, "Random") else None
    rnd = rng.random if rng else random.random
    if rng is None:
        random.seed(seed)
    oracle = {}
    epoch = 1
    disk = None
    dev = device(epoch, disk)
    gw = gateway()
    dev.hello("gw")
    wire = []
    now = 0
    unflushed = {}

    def persist():
        nonlocal disk
        disk = cbor.dumps(dev.snapshot())
        dev.mark_durable()
        for k, v in unflushed.items():
            oracle[k] = oracle.get(k, 0) + v
        unflushed.clear()

    def collect(src, node):
        for dst, data in node.take():
            wire.append((src, dst, data))

    def deliver(i, faulty):
        src, dst, data = wire.pop(i)
        node = gw if dst == "gw" else dev
        events = node.receive(data, now, peer=src)
        merged = [e for e in events if e[0] == "merged"]
        if merged and node is dev:
            persist()
        for e in merged:
            node.commit(e[3])
        if faulty and rnd() < 0.1:
            wire.append((src, dst, data))  # duplicate
        collect(dst, node)

    for _round in range(rounds):
        now += 50
        for _ in range(int(rnd() * 4)):
            ad = "ad%d" % int(rnd() * 12)
            dev.update("imp", "update", ad, "increment", "d1")
            unflushed[ad] = unflushed.get(ad, 0) + 1
        if rnd() < 0.05:
            gw.update("ads", "add", "gw", "ad%d" % int(rnd() * 12))
        if rnd() < 0.03:
            gw.update("ads", "remove", "ad%d" % int(rnd() * 12))
        if unflushed and rnd() < 0.5:
            persist()
        dev.tick(now)
        gw.tick(now)
        collect("d1", dev)
        collect("gw", gw)
        while wire and rnd() < 0.7:
            i = int(rnd() * len(wire))
            if rnd() < 0.25:
                wire.pop(i)  # lost
            else:
                deliver(i, True)
        if rnd() < 0.02:  # crash: lose everything not persisted
            unflushed.clear()
            epoch += 1
            dev = device(epoch, disk)
            persist()
            dev.hello("gw")
            collect("d1", dev)
    if unflushed:
        persist()
    for _ in range(2000):  # heal
        if wire:
            deliver(0, False)
            continue
        now += 100
        dev.tick(now)
        gw.tick(now)
        collect("d1", dev)
        collect("gw", gw)
        if not wire and dev.next_deadline_ms() is None and gw.next_deadline_ms() is None:
            break
    got = gw.vars["imp"].value()
    if got != oracle:
        print("MISMATCH seed", seed, "gateway", got, "oracle", oracle)
        return False
    if dev.vars["ads"] != gw.vars["ads"]:
        print("MISMATCH seed", seed, "device ads", dev.vars["ads"].value(), gw.vars["ads"].value())
        return False
    return True


passed = failed = 0
peak = 0
for seed in range(1, 9):
    gc.collect()
    if run(seed, 300):
        passed += 1
    else:
        failed += 1
    peak = max(peak, gc.mem_alloc()) if hasattr(gc, "mem_alloc") else 0
print("sync: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
