"""Flash writes per hour of the device runtime at its default flush policy.

Runs the real ``lasp_device.Device`` (CPython; the runtime is portable) for simulated hours,
with a simulated ``ticks_ms`` (wrapping at 2**30 like a 32-bit board) compressed in time,
a real flash store in a temp directory, and a gateway ``Node`` wired back to back (it acks
every delta at once). Each workload is also run with ``flush_every=1`` (a flush per update),
the baseline the default is compared with in the same run.

Workloads:
  kiosk     the ad counter: one impression every 0..6 s (mean 3 s, ~1200/h), online, the
            ad list changes twice an hour, and the network is down for 10 minutes
  busy      one impression every 0..1 s (mean 0.5 s, ~7200/h), online
  quiet     one impression every 0..120 s (mean 1 min), online

    .venv/bin/python bench/bench_device_flash.py [--hours 1] [--json build/device_flash.json]

A "write" is one snapshot saved: a temp file written and renamed over the old one
(littlefs: one small file program plus metadata commits).
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))
sys.path.insert(0, str(ROOT / "micropython"))

from lasp_device import ticks  # noqa: E402
from lasp_device.device import Device  # noqa: E402

from lasp_edge.crdts import AWMap, AWSet  # noqa: E402
from lasp_edge.sync import Node  # noqa: E402

STEP_MS = 50
HOUR_MS = 3600 * 1000


class Clock:
    def __init__(self, start):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = ticks.ticks_add(self.t, ms)


class Loopback:
    """Transport stand-in: the device's uplink goes into the gateway Node, which commits."""

    def __init__(self, gw, clock):
        self.gw = gw
        self.clock = clock
        self.online = True
        self.on_message = None
        self.inbox = []

    def poll(self, now):
        if self.online:
            self.gw.tick(self.clock())
            self.inbox.extend(d for _, d in self.gw.take())
        inbox, self.inbox = self.inbox, []
        for data in inbox:
            self.on_message(b"le/d/kiosk", data)
        return self.online

    def publish(self, topic, payload):
        if not self.online:
            return False
        for ev in self.gw.receive(payload, self.clock(), "kiosk"):
            if ev[0] == "merged":
                self.gw.commit(ev[3])
        self.inbox.extend(d for _, d in self.gw.take())
        return True

    def close(self):
        self.online = False


WORKLOADS = {
    # name: (max gap between impressions ms, ad changes per hour, offline minutes per hour)
    "kiosk": (6000, 2, 10),
    "busy": (1000, 0, 0),
    "quiet": (120000, 0, 0),
}


def run(workload, hours, seed, **policy):
    max_gap, ad_changes, offline_min = WORKLOADS[workload]
    rng = random.Random(seed)
    clock = Clock(ticks.PERIOD - 60000)  # the run crosses the ticks_ms wrap after 1 min
    gw = Node("gw", auto_declare=True, sync_period_ms=1000)
    gw.declare("ads", AWSet())
    for ad in ("ad-1", "ad-2", "ad-3"):
        gw.update("ads", "add", "gw", ad)
    with tempfile.TemporaryDirectory() as tmp:
        dev = Device("kiosk", path=tmp, interests=("ads",), clock=clock, **policy)
        dev.declare("ads", AWSet())
        dev.declare("impressions", AWMap("gcounter"))
        dev.start()
        link = Loopback(gw, clock)
        dev.attach(link)
        total_ms = int(hours * HOUR_MS)
        next_view = rng.randrange(max_gap + 1)
        change_every = HOUR_MS // ad_changes if ad_changes else None
        off_from = HOUR_MS // 2
        off_to = off_from + offline_min * 60000
        counted = 0
        n_ad = 3
        t = 0
        while t < total_ms:
            clock.advance(STEP_MS)
            t += STEP_MS
            link.online = not (offline_min and off_from <= t % HOUR_MS < off_to)
            if change_every and t % change_every == 0:
                n_ad += 1
                gw.update("ads", "add", "gw", "ad-%d" % n_ad)
                gw.update("ads", "remove", "ad-%d" % (n_ad - 3))
            while t >= next_view:
                ads = sorted(dev.var("ads").elements())
                if ads:
                    dev.update(
                        "impressions", "update", ads[counted % len(ads)], "increment", "kiosk"
                    )
                    counted += 1
                next_view += rng.randrange(max_gap + 1)
            dev.poll()
        for _ in range(200):  # drain: everything reaches the gateway
            clock.advance(STEP_MS)
            dev.poll()
        imps = gw.vars["impressions"]
        at_gw = sum(imps.get(k).get("kiosk") for k in imps.keys())  # noqa: SIM118 (an AWMap)
        assert at_gw == counted, (at_gw, counted)
        return {
            "writes_per_hour": round(dev.store.writes / hours, 1),
            "bytes_per_hour": int(dev.store.bytes_written / hours),
            "snapshot_bytes": dev.store.bytes_written // max(1, dev.store.writes),
            "updates_per_hour": round(counted / hours),
        }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    results = {}
    print(
        "%-7s %-22s %10s %12s %9s %9s"
        % ("load", "policy", "writes/h", "bytes/h", "snap B", "updates/h")
    )
    for name in WORKLOADS:
        for label, policy in (
            ("default", {}),
            ("every update (base)", {"flush_every": 1}),
        ):
            r = run(name, args.hours, args.seed, **policy)
            results["%s/%s" % (name, label.split()[0])] = r
            print(
                "%-7s %-22s %10.1f %12d %9d %9d"
                % (
                    name,
                    label,
                    r["writes_per_hour"],
                    r["bytes_per_hour"],
                    r["snapshot_bytes"],
                    r["updates_per_hour"],
                )
            )
        d, b = results[name + "/default"], results[name + "/every"]
        print(
            "%-7s default / baseline writes: %.3f"
            % (name, d["writes_per_hour"] / b["writes_per_hour"])
        )
    print(
        "defaults: sync_period_ms=10000 flush_every=100 flush_ms=10000; %.1f s wall"
        % (time.monotonic() - t0)
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
