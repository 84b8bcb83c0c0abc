"""MicroPython: the sync protocol end to end between two in-process Nodes, with faults.

    micropython -X heapsize=64K tests/device/sync_mp.py <repo root> [bundle dir]
        [--only=SEED,...] [--parts]

A device node counts ad impressions (``imp``: AWMap of ad -> GCounter) and follows the
gateway's ad budgets (``budget``: AWMap of ad -> GCounter, where the gateway also retires
ads by removing their keys). They exchange messages through a seeded channel that loses,
duplicates and reorders them, while the device keeps counting and the gateway keeps
changing budgets. The device persists (snapshot through CBOR) before it sends, and crashes
now and then, restarting from that snapshot with the next epoch. After healing, the gateway
must hold exactly the impressions counted (the oracle) and the device exactly the
gateway's budgets. Prints "sync: N passed, M failed" and exits 1 on failure.

``--parts`` prints the seeds and exits; ``--only`` runs just those seeds (the harness runs
one process per seed). With a bundle dir (lasp_edge compiled to .mpy) the package comes
from there instead of <root>/sdk.

Why both variables are AWMaps of GCounters: this script checks the protocol (sequence
numbers, acks, epochs, retransmission, persistence), which does not depend on the CRDT
type, and one family of types keeps the loaded code small enough for a 64 KB heap on the
64-bit unix port. Every type's own merge laws are checked by crdt_props_mp.py; key removal
here still makes the gateway's variable non-monotonic in its keys (add wins, tombstones).
"""

import sys

ARGS = []
FLAGS = {}
for _a in sys.argv[1:]:
    if _a.startswith("--"):
        _k, _, _v = _a[2:].partition("=")
        FLAGS[_k] = _v
    else:
        ARGS.append(_a)
SEEDS = (1, 2, 3, 4, 5, 6, 7, 8)
ROUNDS = 300
ADS = 4  # distinct ad ids: few keys keep both maps, their deltas and the log small

if "parts" in FLAGS:  # answered before anything is imported: listing must stay cheap
    print("parts:", " ".join(str(s) for s in SEEDS))
    sys.exit(0)
ROOT = ARGS[0]
BASE = ARGS[1] if len(ARGS) > 1 else ROOT + "/sdk"
sys.path.insert(0, BASE)

import gc  # noqa: E402
import random  # noqa: E402

from lasp_edge import cbor  # noqa: E402
from lasp_edge.crdts.awmap import AWMap  # noqa: E402
from lasp_edge.sync import Node  # noqa: E402


def device(epoch, disk):
    n = Node("d1", epoch, interests=["budget"], max_payload=300, track_durable=True)
    if disk is not None:
        n.restore(cbor.loads(disk))
    else:
        n.declare("imp", AWMap("gcounter"))
        n.declare("budget", AWMap("gcounter"))
    n.sync_period_ms = 100
    n.ack_timeout_ms = 400
    return n


def gateway():
    n = Node("gw", 1, auto_declare=True)
    n.declare("budget", AWMap("gcounter"))
    n.sync_period_ms = 100
    return n


def ad(rnd):
    return "ad%d" % int(rnd() * ADS)


def run(seed, rounds):
    random.seed(seed)
    rnd = random.random
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
        disk = None
        gc.collect()
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
            a = ad(rnd)
            dev.update("imp", "update", a, "increment", "d1")
            unflushed[a] = unflushed.get(a, 0) + 1
        if rnd() < 0.05:
            gw.update("budget", "update", ad(rnd), "increment", "gw", 1 + int(rnd() * 5))
        if rnd() < 0.03:
            gw.update("budget", "remove", ad(rnd))  # the ad is retired (until re-funded)
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
            dev = None
            gc.collect()
            dev = device(epoch, disk)
            persist()
            dev.hello("gw")
            collect("d1", dev)
        gc.collect()
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
    if dev.vars["budget"] != gw.vars["budget"]:
        print("MISMATCH seed", seed, "device", dev.vars["budget"], "gateway", gw.vars["budget"])
        return False
    return True


def main():
    print("lasp_edge from", BASE)
    seeds = [int(s) for s in FLAGS["only"].split(",")] if FLAGS.get("only") else SEEDS
    passed = failed = 0
    for seed in seeds:
        gc.collect()
        if run(seed, ROUNDS):
            passed += 1
        else:
            failed += 1
    print("sync: %d passed, %d failed" % (passed, failed))
    return failed


if main():
    sys.exit(1)
