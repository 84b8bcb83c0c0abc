"""Sliding-window aggregation: average temperature per device per 5-minute window.

Each device store observes readings into ``temp``, a SlidingWindow of the last W windows.
The caller turns its own timestamps into a logical epoch (``ts_ms // 300_000``); the store
reads no clock. Windows hold per-device (count, sum, min, max) slots that merge by pick,
so once the devices have synced, every replica shows the same per-device and global
averages, and windows older than the last W are pruned everywhere.
"""

from __future__ import annotations

import argparse
import random

from lasp_edge.store import LocalNetwork, SlidingWindow, Store

WINDOW_MS = 5 * 60 * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=3)
    p.add_argument("--windows", type=int, default=3, help="W: windows kept")
    p.add_argument("--minutes", type=int, default=30, help="simulated duration")
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)

    devices = [Store("th%d" % (i + 1)) for i in range(args.devices)]
    agg = Store("aggregator")
    net = LocalNetwork()
    for s in (*devices, agg):
        s.declare("temp", "window", size=args.windows)
    for d in devices:
        net.connect(d, agg)

    base = [18.0 + 2.5 * i for i in range(args.devices)]
    t0 = 1_700_000_100_000  # the caller's clock, not the store's
    for minute in range(args.minutes):
        ts = t0 + minute * 60_000
        for i, d in enumerate(devices):
            reading = round(base[i] + minute * 0.1 + rng.uniform(-0.5, 0.5), 2)
            d.update("temp", "observe", ts // WINDOW_MS, reading)
        if minute % 10 == 9:
            net.sync()
    net.sync()

    w = agg.state("temp")
    assert isinstance(w, SlidingWindow)
    kept = w.epochs()
    print(
        "kept windows (last %d): %s; %d older windows pruned"
        % (w.size, kept, kept[0] - t0 // WINDOW_MS)
    )
    for epoch, g in sorted(agg.query("temp").items()):
        per = "  ".join("%s %.2f" % (r, a["mean"]) for r, a in sorted(g["by_replica"].items()))
        print(
            "window %d: %s | global mean %.2f (n=%d, min %.2f, max %.2f)"
            % (epoch, per, g["mean"], g["count"], g["min"], g["max"])
        )
    same = all(d.query("temp") == agg.query("temp") for d in devices)
    print("all replicas agree: %s" % same)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
