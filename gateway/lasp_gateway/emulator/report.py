"""The run's verdict in three forms: a table for people, JSON for machines, a PNG plot.

The plot shows divergence over time: for the gateway and the aggregator, how many of the
updates the devices had made so far each replica did not hold yet (the oracle's running
total minus the replica's), with each fault window shaded in its own colour. A healthy
run shows the lines rise during partitions and outages and fall to zero after the last
window; a broken run ends above zero.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import IO, Any


@dataclass
class Sample:
    t: float
    made: int  # the app's measure (AppSpec.measure_made) of all the fleet made so far
    gateway: int | None  # updates the gateway holds (None: not reachable)
    aggregator: int | None
    pending: int  # virtual devices with something unacknowledged
    cut: int  # devices whose link is cut (offline or partitioned)


@dataclass
class Report:
    app: str
    devices: int
    real: int
    duration_s: float
    seed: int
    faults: str
    broken: str | None
    broker: str
    episodes: list[dict[str, Any]]
    converged: bool
    converged_at_s: float | None
    last_fault_healed_s: float
    oracle_match: bool
    mismatches: dict[str, list[str]]
    replica_gaps: list[str]
    waiting_for: list[str]  # why it had not converged when the drain timeout passed
    unsynced_real: list[str]
    values: dict[str, Any]
    updates: int
    lost_at_crash: int
    crashes: int
    messages_dropped: int
    messages_duplicated: int
    messages_reordered: int
    emulator_cpu_s: float  # this process (virtual devices, proxies, checks), whole run
    state_bytes: int  # wire size of the converged written variables
    gateway_db_bytes: int  # the gateway's SQLite files at the end
    emulator_peak_rss_mb: float
    gateway_usage: dict[str, float] | None
    samples: list[Sample] = field(default_factory=list)
    workdir: str | None = None
    unit: str = "updates"  # what the samples count (impressions, readings, top-k points)

    @property
    def ok(self) -> bool:
        return self.converged and self.oracle_match

    @property
    def converge_after_heal_s(self) -> float | None:
        if self.converged_at_s is None:
            return None
        return round(self.converged_at_s - self.last_fault_healed_s, 3)

    @property
    def converge_after_stop_s(self) -> float | None:
        if self.converged_at_s is None:
            return None
        return round(self.converged_at_s - self.duration_s, 3)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["converge_after_heal_s"] = self.converge_after_heal_s
        d["converge_after_stop_s"] = self.converge_after_stop_s
        d["updates_per_s"] = round(self.updates / self.duration_s, 1)
        return d

    def write_json(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.as_json(), f, indent=1, sort_keys=True)
            f.write("\n")

    def table(self) -> str:
        """The final table: per variable and key, the oracle against each service.

        When the aggregator's program shows something else than the gateway holds (the
        leaderboard's global top-k, the sensor averages), its rows come apart, marked
        "(program)", and the column a row does not compare shows a dot.
        """
        exp = self.values.get("expected", {})
        program = self.values.get("expected_aggregator")
        gw, agg = self.values.get("gateway", {}), self.values.get("aggregator", {})
        rows: list[tuple[str, ...]] = [("variable", "key", "oracle", "gateway", "aggregator", "")]
        same = {v for v in exp if program is None or program.get(v, _NA) == exp[v]}
        for var, want in sorted(exp.items()):
            rows += _rows(var, want, gw.get(var), agg.get(var) if var in same else _NA)
        for var, want in sorted((program or {}).items()):
            if var not in same:
                rows += _rows(var + " (program)", want, _NA, agg.get(var))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        lines = [line.rstrip() for line in lines]
        heal = self.converge_after_heal_s
        lines += [
            "",
            "devices %d (%d real MicroPython, %d virtual), %s broker, seed %d, faults %s%s"
            % (self.devices, self.real, self.devices - self.real, self.broker, self.seed,
               self.faults or "none", "" if not self.broken else ", BROKEN: " + self.broken),
            "updates %d (%.0f/s), %d crashes (%d unflushed updates lost, allowed by the flush "
            "policy), messages dropped %d, duplicated %d, reordered %d"
            % (self.updates, self.updates / self.duration_s, self.crashes, self.lost_at_crash,
               self.messages_dropped, self.messages_duplicated, self.messages_reordered),
            "converged: %s%s"
            % ("yes" if self.converged else "NO",
               "" if heal is None else ", %.1fs after the last fault healed (%.1fs after the "
               "counting stopped)" % (heal, self.converge_after_stop_s or 0.0)),
            "oracle: %s" % ("matches exactly" if self.oracle_match else "MISMATCH"),
        ]  # fmt: skip
        for what, diffs in sorted(self.mismatches.items()):
            for d in diffs[:10]:
                lines.append("  %s: %s" % (what, d))
        for w in self.waiting_for:
            lines.append("  still waiting for: %s" % w)
        for g in self.replica_gaps[:5]:
            lines.append("  replica not converged: %s" % g)
        if self.unsynced_real:
            lines.append("  real devices that did not drain: %s" % ", ".join(self.unsynced_real))
        lines.append("RESULT: %s" % ("OK" if self.ok else "FAILED"))
        return "\n".join(lines) + "\n"

    def write_table(self, out: IO[str]) -> None:
        out.write(self.table())


_NA = object()  # a column this row does not compare
SHOWN_OK = 12  # matching keys listed per variable; more are summed up in one row


def _rows(var: str, want: Any, gw: Any, agg: Any) -> list[tuple[str, ...]]:
    """Table rows of one variable: a row per map key or top-k rank (or one row)."""
    if isinstance(want, dict):
        keys: list[Any] = sorted(want, key=str)
    elif isinstance(want, list):
        keys = list(range(len(want)))
    else:
        keys = [None]
    rows: list[tuple[str, ...]] = []
    hidden = 0
    for k in keys:
        e, g, a = _pick(want, k), _pick(gw, k), _pick(agg, k)
        ok = all(v is _NA or v == e for v in (g, a))
        if ok and len(rows) >= SHOWN_OK:
            hidden += 1
            continue
        label = "-" if k is None else ("#%d" % (k + 1) if isinstance(want, list) else str(k))
        rows.append((var, label, str(e), _cell(g), _cell(a), "ok" if ok else "MISMATCH"))
    for name, value in (("gateway", gw), ("aggregator", agg)):
        extra = _extra_keys(want, value)
        if extra:
            rows.append((var, "(extra)", "-", _cell(extra) if name == "gateway" else ".",
                         _cell(extra) if name == "aggregator" else ".", "MISMATCH"))  # fmt: skip
    if hidden:
        rows.append((var, "(%d more)" % hidden, "", "", "", "ok"))
    return rows


def _cell(v: Any) -> str:
    return "." if v is _NA else str(v)


def _pick(value: Any, key: Any) -> Any:
    if key is None or value is _NA:
        return value
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int):
        return value[key] if key < len(value) else None
    return None


def _extra_keys(want: Any, got: Any) -> Any:
    """What a service holds beyond the oracle's keys (or ranks)."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: v for k, v in got.items() if k not in want} or None
    if isinstance(want, list) and isinstance(got, list) and len(got) > len(want):
        return got[len(want) :]
    return None


def _behind(s: Sample, attr: str) -> float:
    held = getattr(s, attr)
    return float("nan") if held is None else float(s.made - held)


class PlotError(RuntimeError):
    """matplotlib is missing: the message says how to install it."""


COLOURS = {
    "offline": "#9ecae1",
    "partition": "#fdae6b",
    "crash": "#d62728",
    "gateway-kill": "#9467bd",
    "broker-restart": "#8c564b",
    "aggregator-down": "#e377c2",
}


def plot(report: Report, path: str) -> None:
    """Divergence over time with the fault windows shaded, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("--plot needs matplotlib: pip install 'lasp-edge[plot]'") from None
    fig, ax = plt.subplots(figsize=(10, 4.5))
    seen: set[str] = set()
    for ep in report.episodes:
        kind = ep["kind"]
        if kind == "messages":  # the whole first part of the run: a line, not a shade
            ax.axvline(ep["end_s"], color="grey", ls="-.", lw=1, label="message faults end")
            continue
        ax.axvspan(
            ep["start_s"], ep["end_s"], color=COLOURS.get(kind, "#cccccc"), alpha=0.25,
            label=None if kind in seen else kind, lw=0,
        )  # fmt: skip
        seen.add(kind)
    ts = [s.t for s in report.samples]
    for attr, colour in (("gateway", "#1f77b4"), ("aggregator", "#2ca02c")):
        ys = [_behind(s, attr) for s in report.samples]
        ax.plot(ts, ys, color=colour, label="%s behind (%s)" % (attr, report.unit))
    ax.axvline(report.duration_s, color="black", ls="--", lw=1, label="counting stops")
    if report.converged_at_s is not None:
        ax.axvline(report.converged_at_s, color="green", ls=":", lw=1.5, label="converged")
    ax.set_xlabel("seconds")
    ax.set_ylabel("%s not yet held" % report.unit)
    ax.set_title(
        "%s: %d devices (%d real), seed %d: %s\nfaults %s"
        % (report.app, report.devices, report.real, report.seed,
           "converged, oracle matches" if report.ok else "FAILED", report.faults or "none"),
        fontsize=10,
    )  # fmt: skip
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
