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

    .venv/bin/python bench/bench_device_flash.py [--hours 1] [--quick] [--json F] [--md F]

A "write" is one snapshot saved: a temp file written and renamed over the old one
(littlefs: one small file program plus metadata commits).
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))
sys.path.insert(0, str(ROOT / "micropython"))

from _common import (  # noqa: E402
    add_contract_args,
    command_line,
    fmt_int,
    fmt_num,
    fmt_ratio,
    machine,
    md_table,
    write_outputs,
)
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


POLICIES = (("default", {}), ("every", {"flush_every": 1}))
LOSS_BOUND = "at most the last 10 s or 100 updates lost at a power cut"


def markdown(res):
    lines = ["## Flash writes per hour at the default flush policy", ""]
    lines.append("Command: `%s`" % res["command"])
    lines.append("")
    lines.append(
        "The real `lasp_device.Device` (portable, run on CPython here) for %g simulated hour(s) "
        "per workload, with a real flash store (temp file + rename) and a gateway "
        "node acknowledging every delta; the default policy (flush after 100 updates or 10 s, "
        "and before each sync: %s) against a flush after every update (the baseline, same "
        "run). Each cell is the median over %d seeds (random gaps between updates). The "
        "kiosk workload is one impression every 0 to 6 s with 10 minutes offline per hour; "
        "busy one every 0 to 1 s; quiet one every 0 to 2 min."
        % (res["hours"], LOSS_BOUND, len(res["seeds"]))
    )
    lines.append("")
    rows = []
    for name in WORKLOADS:
        d, b = res["runs"][name + "/default"], res["runs"][name + "/every"]
        rows.append(
            [
                name,
                fmt_int(d["updates_per_hour"]),
                "**%s**" % fmt_num(d["writes_per_hour"], 1),
                fmt_int(d["bytes_per_hour"]),
                fmt_num(b["writes_per_hour"], 1),
                "**%s**" % fmt_ratio(res["ratio"][name]),
            ]
        )
    lines.append(
        md_table(
            [
                "workload",
                "updates/h",
                "writes/h (default)",
                "bytes/h (default)",
                "writes/h (flush every update)",
                "default ÷ baseline",
            ],
            rows,
        )
    )
    lines.append("")
    lines.append(
        "A write is one snapshot saved (littlefs: one small file program plus metadata "
        "commits). The policy bounds writes by time when updates are frequent, and costs "
        "about one write per update when they are rarer than the flush period (quiet)."
    )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--seeds", type=int, default=5, help="runs (seeds) per cell: medians")
    add_contract_args(ap)  # --json, --md, --quick (a quarter of an hour)
    args = ap.parse_args(argv)
    hours = 0.25 if args.quick else args.hours
    seeds = list(range(args.seed, args.seed + (2 if args.quick else args.seeds)))
    t0 = time.monotonic()
    runs = {}
    print(
        "%-7s %-22s %10s %12s %9s %9s"
        % ("load", "policy", "writes/h", "bytes/h", "snap B", "updates/h"),
        file=sys.stderr,
    )
    for name in WORKLOADS:
        for label, policy in POLICIES:
            each = [run(name, hours, seed, **policy) for seed in seeds]
            r = {k: statistics.median(e[k] for e in each) for k in each[0]}
            runs["%s/%s" % (name, label)] = r
            print(
                "%-7s %-22s %10.1f %12d %9d %9d"
                % (
                    name,
                    label,
                    r["writes_per_hour"],
                    r["bytes_per_hour"],
                    r["snapshot_bytes"],
                    r["updates_per_hour"],
                ),
                file=sys.stderr,
            )
    res = {
        "command": command_line(),
        "machine": machine(),
        "hours": hours,
        "seeds": seeds,
        "defaults": {"sync_period_ms": 10000, "flush_every": 100, "flush_ms": 10000},
        "runs": runs,
        "ratio": {
            name: runs[name + "/default"]["writes_per_hour"]
            / runs[name + "/every"]["writes_per_hour"]
            for name in WORKLOADS
        },
        "seconds": round(time.monotonic() - t0, 1),
    }
    md = markdown(res)
    print(md)
    write_outputs(args, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
