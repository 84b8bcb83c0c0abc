"""Issue 2 figures: bytes of full state vs. bytes of delta, and per-operation cost.

Workloads:
  1. a counter incremented 10,000 times (delta per increment vs. full state of a fleet);
  2. an AWMap of 10,000 ad ids -> GCounter filled by 3 replicas concurrently, then merged.

Baselines run side by side in the same process: full-state sync of the same lasp-edge
state, and, when the optional peers are installed (`pip install -e '.[bench]'`), the
same single increment in pycrdt (Yjs) and Loro. Every timing is the median of --repeat runs.

    .venv/bin/python bench/bench_crdt.py [--repeat 5] [--json build/bench_crdt.json]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

from lasp_edge import AWMap, GCounter, wire

N_OPS = 10_000
N_KEYS = 10_000
REPLICAS = (1, 2, 3)


def median_time(fn, repeat):
    """Median wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def counter_workload(repeat):
    fleet = GCounter()
    for r in range(100):
        fleet.increment(r, 1000)
    sizes = []

    def run():
        g = fleet.copy()
        sizes.clear()
        for _ in range(N_OPS):
            sizes.append(len(wire.dumps(g.increment(7))))
        return g

    t_inc_enc = median_time(run, repeat)

    def inc_only():
        g = GCounter()
        for _ in range(N_OPS):
            g.increment(7)

    t_inc = median_time(inc_only, repeat)
    single = GCounter()
    one_delta = len(wire.dumps(single.increment(1)))
    return {
        "delta_bytes_single_increment_int_replica": one_delta,
        "delta_bytes_median_over_10k_increments_100_replica_fleet": statistics.median(sizes),
        "full_state_bytes_100_replica_fleet": len(wire.dumps(fleet)),
        "full_state_bytes_1_replica": len(wire.dumps(single)),
        "increment_us": t_inc / N_OPS * 1e6,
        "increment_and_encode_delta_us": t_inc_enc / N_OPS * 1e6,
    }


def fill(replica, keys):
    m = AWMap("gcounter")
    delta = AWMap("gcounter")
    for k in keys:
        delta.merge(m.update(k, "increment", replica))
    return m, delta


def map_workload(repeat, keys):
    per_replica = [fill(r, keys) for r in REPLICAS]
    merged = AWMap("gcounter")
    for _, delta in per_replica:
        merged.merge(delta)
    state_bytes = len(wire.dumps(merged))
    delta_bytes = len(wire.dumps(per_replica[0][1]))
    base = per_replica[0][0]
    incoming = per_replica[1][1]

    def merge_into_state():
        target = base.copy()
        t0 = time.perf_counter()
        target.merge(incoming)
        return time.perf_counter() - t0

    merge_s = statistics.median(merge_into_state() for _ in range(repeat))
    update_s = median_time(lambda: fill(9, keys), repeat)
    encode_s = median_time(lambda: wire.dumps(merged), repeat)
    blob = wire.dumps(merged)
    decode_s = median_time(lambda: wire.loads(blob), repeat)
    assert wire.loads(blob) == merged
    assert all(v == len(REPLICAS) for v in merged.value().values())
    return {
        "keys": len(keys),
        "merged_state_bytes": state_bytes,
        "merged_state_bytes_per_key": state_bytes / len(keys),
        "one_replica_delta_bytes_per_key": delta_bytes / len(keys),
        "merge_10k_key_delta_keys_per_s": len(keys) / merge_s,
        "update_us_per_key": update_s / len(keys) * 1e6,
        "encode_state_ms": encode_s * 1e3,
        "decode_state_ms": decode_s * 1e3,
    }


def peer_increment_bytes():
    """Bytes one increment costs in the peers' own update formats, when installed."""
    out = {}
    try:
        import pycrdt

        doc = pycrdt.Doc()
        m = doc.get("m", type=pycrdt.Map)
        empty = doc.get_state()
        with doc.transaction():
            m["c"] = 1
        out["pycrdt_first_map_set_update_bytes"] = len(doc.get_update(empty))
        before = doc.get_state()
        with doc.transaction():
            m["c"] = 2
        out["pycrdt_map_overwrite_update_bytes"] = len(doc.get_update(before))
    except ImportError:
        out["pycrdt_first_map_set_update_bytes"] = None
    try:
        import loro

        doc = loro.LoroDoc()
        c = doc.get_counter("c")
        c.increment(1)
        doc.commit()
        vv = doc.oplog_vv
        c.increment(1)
        doc.commit()
        out["loro_counter_increment_update_bytes"] = len(doc.export(loro.ExportMode.Updates(vv)))
    except ImportError:
        out["loro_counter_increment_update_bytes"] = None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    results = {
        "machine": "%s, %s, %d cores, Python %s"
        % (platform.machine(), platform.system(), os.cpu_count() or 0, platform.python_version()),
        "repeat": args.repeat,
    }
    print("counter: 10,000 increments ...", file=sys.stderr)
    results["counter"] = counter_workload(args.repeat)
    print("awmap: 10,000 int ad ids x 3 replicas ...", file=sys.stderr)
    results["awmap_int_keys"] = map_workload(args.repeat, list(range(N_KEYS)))
    print("awmap: 10,000 str ad ids x 3 replicas ...", file=sys.stderr)
    results["awmap_str_keys"] = map_workload(args.repeat, ["ad%05d" % i for i in range(N_KEYS)])
    results["peers"] = peer_increment_bytes()
    for section, figures in results.items():
        if isinstance(figures, dict):
            print("\n[%s]" % section)
            for k, v in figures.items():
                print("  %-58s %s" % (k, "%.2f" % v if isinstance(v, float) else v))
        else:
            print("%s: %s" % (section, figures))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
