"""Overshoot against sync period: how far past its threshold an ad is counted before it stops.

The scenario is Lasp's advertisement counter (issue 5; issue 7 §5). The aggregator bills an
ad once its merged impressions reach the threshold and removes it from ``ads``. The removal
then flows down to the devices, which stop showing the ad. Until a device hears of it, the
device keeps counting impressions. Meanwhile impressions already counted but not yet synced
keep arriving. The final count past the threshold is the *overshoot*. In the Lasp paper's
words, "divergence is a factor of the synchronization period".

The model. The real parts are used, wired back to back on a virtual clock:

* N devices, each a sans-IO ``lasp_edge.sync.Node`` with the variables of
  ``firmware_examples/ad_counter``: ``impressions`` (AWMap ad -> GCounter, its own slot)
  and ``ads`` (AWSet, its one interest). A device shows ad-1 while its ``ads`` holds ad-1.
  While it does, it counts impressions as a Poisson process of ``--rate`` per second.
* a gateway ``Node`` (``auto_declare``, as ``lasp-edge gateway``) that forwards one joined
  delta group upward per sync period;
* an aggregator ``Node`` bridged to a ``lasp_edge.Store`` that runs
  ``lasp_gateway.demo_program.program``, the program ``lasp-edge demo`` runs. Its
  ``enforce_once`` per ad bills the ad and removes it. The bridge is the aggregator's: merged
  deltas are bound into the store, and the program's own changes go back into the node's log.

Every hop delivers after ``--latency-ms`` and loses nothing. Every node uses the same sync
period P. Each device boots at a random moment within the first period, so the devices' sync
phases are spread as in a real fleet. Time exists only as the ``now_ms`` handed to
``tick``/``receive``, so a 10 s period costs no wall-clock time. A run is deterministic for
its seed, and every figure is the median over ``--runs`` seeds.

Expectation. Let the fleet rate be R = N x rate. The gateway forwards one delta group per
period, about R x P impressions, and the group that crosses the threshold passes it by half
of that on average: R x P/2. At that moment the devices still hold about half a period of
impressions they have not synced: another R x P/2. They keep counting while that group
travels up and the disable comes back down. That takes four hops of latency L
(device -> gateway is already in flight; gateway -> aggregator; aggregator -> gateway;
gateway -> device). The disable is not held back by a period, because a node sends a peer a
change at once when it has sent that peer nothing for a period. So the overshoot is about
R x (P + 4L), and the table puts the measurement next to it. The fleet starts all at once,
which would pin the gateway's groups to a grid, so each seed draws the threshold within one
group. The crossing then lands at a random point of the cycle, as in a fleet that has been
running for a long time.

    .venv/bin/python bench/bench_overshoot.py [--runs 25] [--devices 20] [--rate 5]
                                              [--quick] [--json F] [--md F]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from typing import Any

import _common as C

from lasp_edge import AWMap, AWSet
from lasp_edge.store import Store
from lasp_edge.sync import EV_MERGED, Node
from lasp_gateway import demo_program
from lasp_gateway.aggregator import travels

PERIODS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HEADLINE_S = (0.1, 1.0, 10.0)  # the periods issue 7 names
AD = "ad-1"
GW, AGG = "gw", "agg"


@contextlib.contextmanager
def demo_scenario(ad: str, threshold: int) -> Iterator[None]:
    """``demo_program`` takes its ads from ``LASP_DEMO_ADS`` (the demo starts it as a
    subprocess); set it for the one call that declares the program, then restore it."""
    saved = os.environ.get("LASP_DEMO_ADS")
    os.environ["LASP_DEMO_ADS"] = "%s:%d" % (ad, threshold)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["LASP_DEMO_ADS"]
        else:
            os.environ["LASP_DEMO_ADS"] = saved


class Aggregator:
    """An aggregator ``Node`` and the program's ``Store``, bridged as in
    ``lasp_gateway.aggregator`` (merged deltas bound in; local changes logged out)."""

    def __init__(self, period_ms: int, threshold: int) -> None:
        self.node = Node(AGG, 1, auto_declare=True, sync_period_ms=period_ms)
        self.store = Store(AGG)
        with demo_scenario(AD, threshold):
            demo_program.program(self.store)
        self.cursor = 0
        self.absorb({})

    def absorb(self, changed: dict[str, Any]) -> None:
        for name in sorted(changed):
            self.store.bind(name, changed[name], origin=AGG)
        for p in self.store.pending(self.cursor):
            self.cursor = p.seq
            if p.origin is None and travels(p.delta):
                self.node.bind(p.name, p.delta)

    def billed_at(self) -> int | None:
        """The merged impressions the bill saw (``bills`` holds ``(ad, impressions)``)."""
        for ad, n in self.store.query("bills"):
            if ad == AD:
                return int(n)
        return None


class Fleet:
    """One deterministic run: devices -> gateway -> aggregator on a virtual clock (ms)."""

    def __init__(
        self,
        devices: int,
        rate: float,
        period_ms: int,
        latency_ms: int,
        threshold: int,
        seed: int,
    ) -> None:
        self.rng = random.Random(seed)
        self.rate_per_ms = rate / 1000.0
        self.latency = latency_ms
        self.threshold = threshold
        self.agg = Aggregator(period_ms, threshold)
        self.gw = Node(GW, 1, auto_declare=True, sync_period_ms=period_ms)
        self.nodes: dict[str, Node] = {GW: self.gw, AGG: self.agg.node}
        self.devices: list[str] = []
        self.counted: dict[str, int] = {}
        self.showing: dict[str, bool] = {}
        self.next_view: dict[str, float] = {}
        self.boot_at: dict[str, int] = {}
        for i in range(devices):
            dev = "d%d" % i
            n = Node(dev, 1, interests=["ads"], sync_period_ms=period_ms)
            n.declare("impressions", AWMap("gcounter"))
            n.declare("ads", AWSet())
            self.nodes[dev] = n
            self.devices.append(dev)
            self.counted[dev] = 0
            self.showing[dev] = False
            self.boot_at[dev] = self.rng.randrange(period_ms + 1)
        self.wire: list[tuple[int, int, str, str, bytes]] = []  # (at, n, src, dst, data)
        self.sent = 0
        self.deadline: dict[str, int | None] = {rid: None for rid in self.nodes}
        self.now = 0
        self.gw.hello(AGG)
        self._send(GW)

    # -- plumbing ----------------------------------------------------------------------

    def _send(self, rid: str) -> None:
        node = self.nodes[rid]
        for dst, data in node.take():
            self.sent += 1
            heapq.heappush(self.wire, (self.now + self.latency, self.sent, rid, dst, data))
        d = node.next_deadline_ms()
        # a deadline already due was just ticked (or has nothing to do): look again later
        self.deadline[rid] = None if d is None else max(d, self.now + 1)

    def _deliver(self, src: str, dst: str, data: bytes) -> None:
        node = self.nodes[dst]
        changed: dict[str, Any] = {}
        tokens = []
        for ev in node.receive(data, self.now, peer=src):
            if ev[0] == EV_MERGED:
                for name, d in ev[2].items():
                    changed[name] = d if name not in changed else changed[name].join(d)
                tokens.append(ev[3])
        if dst == AGG:
            self.agg.absorb(changed)
        for tok in tokens:
            node.commit(tok)  # in memory: merged is durable
        if dst in self.showing and "ads" in changed:
            self.showing[dst] = AD in node.vars["ads"].value()
            if self.showing[dst] and dst not in self.next_view:
                self.next_view[dst] = self.now + self._gap()
            elif not self.showing[dst]:
                self.next_view.pop(dst, None)
        self._send(dst)

    def _gap(self) -> float:
        return self.rng.expovariate(self.rate_per_ms)

    def _view(self, dev: str) -> None:
        node = self.nodes[dev]
        node.update("impressions", "update", AD, "increment", dev)
        self.counted[dev] += 1
        self.next_view[dev] += self._gap()
        self._send(dev)

    # -- the run -----------------------------------------------------------------------

    def run(self, horizon_ms: int) -> dict[str, Any]:
        booted: set[str] = set()
        while self.now <= horizon_ms:
            times = [self.boot_at[d] for d in self.devices if d not in booted]
            if self.wire:
                times.append(self.wire[0][0])
            times += [math.ceil(t) for t in self.next_view.values()]
            times += [t for t in self.deadline.values() if t is not None]
            if not times:
                break  # nothing in flight, nobody counting, nothing due: quiescent
            self.now = max(self.now, min(times))
            for d in self.devices:
                if d not in booted and self.boot_at[d] <= self.now:
                    booted.add(d)
                    self.nodes[d].hello(GW)
                    self._send(d)
            while self.wire and self.wire[0][0] <= self.now:
                _, _, src, dst, data = heapq.heappop(self.wire)
                self._deliver(src, dst, data)
            for d in list(self.next_view):
                while d in self.next_view and self.next_view[d] <= self.now:
                    self._view(d)
            for rid, due in list(self.deadline.items()):
                if due is not None and due <= self.now:
                    self.nodes[rid].tick(self.now)
                    self._send(rid)
        total = sum(self.counted.values())
        final = self.agg.store.query("impressions").get(AD, 0)
        assert final == total, "the aggregator must converge to the oracle: %d != %d" % (
            final,
            total,
        )
        billed = self.agg.billed_at()
        self.agg.store.close()
        assert billed is not None, "the threshold was never reached"
        return {
            "threshold": self.threshold,
            "counted": total,
            "overshoot": total - self.threshold,
            "billed_at": billed,
            "still_showing": sum(self.showing.values()),
            "messages": self.sent,
        }


# -- the measurement -------------------------------------------------------------------------


def expected_overshoot(fleet_rate: float, period_s: float, latency_ms: int) -> float:
    """R x (P/2 past it in the crossing group + P/2 unsynced on the devices + 4L); see the
    module header."""
    return fleet_rate * (period_s + 4 * latency_ms / 1000.0)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    fleet_rate = args.devices * args.rate
    rows = []
    t0 = time.perf_counter()
    for period_s in args.periods:
        period_ms = int(round(period_s * 1000))
        # long enough to reach the threshold (plus a group) and bring the disable down
        horizon = int(1000 * (args.threshold / fleet_rate + 10 * period_s + 30))
        runs = []
        for seed in range(1, args.runs + 1):
            # The fleet starts together, so the gateway's delta groups (R x P impressions
            # each) land on a grid fixed by the start; a threshold drawn within one group
            # puts the crossing at a random point of the cycle, as in a long-running fleet.
            threshold = args.threshold + random.Random("threshold-%d" % seed).randrange(
                int(fleet_rate * period_s)
            )
            fleet = Fleet(args.devices, args.rate, period_ms, args.latency_ms, threshold, seed)
            r = fleet.run(horizon)
            assert r["still_showing"] == 0, "a device never heard of the disable: %r" % r
            runs.append(r)
        over = [r["overshoot"] for r in runs]
        exp = expected_overshoot(fleet_rate, period_s, args.latency_ms)
        med = C.median(over)
        rows.append(
            {
                "period_s": period_s,
                "overshoot_runs": over,
                "overshoot_median": med,
                "overshoot_min": min(over),
                "overshoot_max": max(over),
                "at_billing_median": C.median(r["billed_at"] - r["threshold"] for r in runs),
                "after_billing_median": C.median(r["counted"] - r["billed_at"] for r in runs),
                "expected": exp,
                "measured_over_expected": med / exp,
                "overshoot_pct_of_threshold": 100.0 * med / args.threshold,
                "messages_median": C.median(r["messages"] for r in runs),
            }
        )
        print(
            "P=%5.2fs  overshoot median %6.0f (min %d, max %d)  expected %6.0f  ratio %.2f"
            % (period_s, med, min(over), max(over), exp, med / exp),
            flush=True,
        )
    return {
        "devices": args.devices,
        "rate_per_device": args.rate,
        "fleet_rate": fleet_rate,
        "threshold": args.threshold,
        "latency_ms": args.latency_ms,
        "runs": args.runs,
        "periods": rows,
        "compute_seconds": round(time.perf_counter() - t0, 1),
    }


def plot(res: dict[str, Any]) -> str | None:
    plt = C.pyplot()
    if plt is None:
        return None
    rows = res["periods"]
    xs = [r["period_s"] for r in rows]
    med = [r["overshoot_median"] for r in rows]
    lo = [r["overshoot_median"] - r["overshoot_min"] for r in rows]
    hi = [r["overshoot_max"] - r["overshoot_median"] for r in rows]
    fine = [xs[0] * (xs[-1] / xs[0]) ** (i / 100) for i in range(101)]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.errorbar(xs, med, yerr=[lo, hi], fmt="o-", capsize=3, label="measured (median, min-max)")
    ax.plot(
        fine,
        [expected_overshoot(res["fleet_rate"], p, res["latency_ms"]) for p in fine],
        "--",
        label="expected R x (P + 4L)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sync period P (s), every hop")
    ax.set_ylabel("impressions past the threshold")
    ax.set_title(
        "Overshoot vs sync period: %d devices, R = %g impressions/s, threshold >= %d"
        % (res["devices"], res["fleet_rate"], res["threshold"]),
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    link = C.save_plot(fig, "overshoot")
    plt.close(fig)
    return link


def markdown(res: dict[str, Any], link: str | None) -> str:
    rows = res["periods"]
    table = C.md_table(
        [
            "sync period P",
            "overshoot (median)",
            "min - max",
            "expected R x (P + 4L)",
            "measured / expected",
            "vs threshold",
            "at billing",
            "after billing",
        ],
        [
            (
                ("**%g s**" if r["period_s"] in HEADLINE_S else "%g s") % r["period_s"],
                ("**%s**" if r["period_s"] in HEADLINE_S else "%s")
                % C.fmt_int(r["overshoot_median"]),
                "%d - %d" % (r["overshoot_min"], r["overshoot_max"]),
                C.fmt_int(r["expected"]),
                C.fmt_ratio(r["measured_over_expected"]),
                "%.1f %%" % r["overshoot_pct_of_threshold"],
                C.fmt_int(r["at_billing_median"]),
                C.fmt_int(r["after_billing_median"]),
            )
            for r in rows
        ],
    )
    ratios = [r["measured_over_expected"] for r in rows]
    lines = [
        "## Overshoot against sync period",
        "",
        "Command: `%s`" % C.command_line(),
        "",
        "The ad counter of `lasp-edge demo` on a virtual clock. %d devices each count "
        "impressions of one ad at %g/s (Poisson), so the fleet rate is R = %g/s. The "
        "aggregator's program (`lasp_gateway.demo_program`) bills the ad when it reaches its "
        "threshold (%d plus a draw within one delta group, see below) and removes it. The "
        "removal travels back to the devices. Every hop (device -> gateway "
        "-> aggregator and back) is a real `lasp_edge.sync.Node` with sync period P and a "
        "one-way latency L = %d ms. The overshoot is every impression counted past the "
        "threshold: those already counted but not yet synced when it was crossed, and those "
        "counted before the disable arrived. Each figure is the median of %d seeds. The "
        "clock is virtual, so the figures do not depend on the machine."
        % (
            res["devices"],
            res["rate_per_device"],
            res["fleet_rate"],
            res["threshold"],
            res["latency_ms"],
            res["runs"],
        ),
        "",
        table,
        "",
        "*At billing* is how far past the threshold the aggregator's merged count already was "
        "when the bill ran (the last delta group brought a period's worth of impressions). "
        "*After billing* is what arrived later: impressions counted before the removal "
        "reached each device, plus the ones still in transit.",
        "",
        'The overshoot grows linearly with the sync period, as Lasp says ("divergence is a '
        'factor of the synchronization period"). The measured medians are %.2f to %.2f '
        "times R x (P + 4L). The P is two halves. The delta group that crosses the "
        "threshold holds R x P impressions, so on average it passes the threshold by half of "
        "that. At the same moment the devices hold half a period of impressions not yet "
        "synced. The 4L is the latency up and back down. The disable itself is not held back "
        "by the period, because a node sends a peer a change at once when it has sent that "
        "peer nothing for a period. Each threshold is drawn within one delta group, so the "
        "crossing falls at a random point of the sync cycle. That is also why min - max "
        "spans about R x P. There is no goal: the figure is the price of a sync period. "
        "Choose P from it (about R x P impressions of slack), or set the billing threshold "
        "lower by that much." % (min(ratios), max(ratios)),
    ]
    if link:
        lines += ["", "![overshoot against sync period](%s)" % link]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25, help="seeds per period (median)")
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--rate", type=float, default=5.0, help="impressions/s per device")
    ap.add_argument(
        "--threshold", type=int, default=2000, help="the ad's threshold, before the draw"
    )
    ap.add_argument("--latency-ms", type=int, default=20, help="one-way latency of every hop")
    ap.add_argument(
        "--periods",
        type=lambda s: tuple(float(x) for x in s.split(",")),
        default=PERIODS_S,
        help="sync periods in seconds, comma-separated",
    )
    C.add_contract_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = min(args.runs, 3)
        args.devices = min(args.devices, 10)
    res = measure(args)
    link = plot(res) if args.md else None
    C.write_outputs(args, res, markdown(res, link))
    return 0


if __name__ == "__main__":
    sys.exit(main())
