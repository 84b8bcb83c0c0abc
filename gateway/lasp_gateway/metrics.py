"""Prometheus text exposition (format 0.0.4) for the gateway's and aggregator's ``/metrics``.

Why a hand-written renderer: the format is a few lines of text, the data already sits in
the services' JSON reports, and a client library would be one more runtime dependency on
a Raspberry Pi. ``render`` turns metric families into text; ``service_families`` and
``device_families`` read what the services already report, so the JSON API and
``/metrics`` can never disagree.

Names: every metric starts with ``lasp_``. Monotonic counts end in ``_total``; backlog and
lag are gauges. Sync lag is "seconds since this peer was last heard from", the figure an
alert on a silent device needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

# Service counters that only grow (the rest of ``counters()`` are gauges).
MONOTONIC = frozenset(
    {"received", "batches", "saves", "wal_syncs", "rejected", "bytes_in", "bytes_out", "deltas"}
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


class Family:
    """One metric: name, help, type and its samples (labels -> value)."""

    __slots__ = ("name", "help", "kind", "samples")

    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.samples: list[Sample] = []

    def add(self, value: Any, **labels: Any) -> Family:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            self.samples.append(({k: str(v) for k, v in labels.items()}, float(value)))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def render(families: Iterable[Family]) -> str:
    """The exposition text; families without samples are left out."""
    lines = []
    for f in families:
        if not f.samples:
            continue
        lines.append("# HELP %s %s" % (f.name, f.help.replace("\\", "\\\\").replace("\n", " ")))
        lines.append("# TYPE %s %s" % (f.name, f.kind))
        for labels, value in f.samples:
            if labels:
                inner = ",".join('%s="%s"' % (k, _escape(v)) for k, v in sorted(labels.items()))
                lines.append("%s{%s} %s" % (f.name, inner, _number(value)))
            else:
                lines.append("%s %s" % (f.name, _number(value)))
    return "".join(line + "\n" for line in lines)


def service_families(role: str, counters: dict[str, Any]) -> list[Family]:
    """One family per numeric service counter (``SyncService.counters()``)."""
    out = []
    for key in sorted(counters):
        value = counters[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        mono = key in MONOTONIC
        name = "lasp_%s%s" % (key, "_total" if mono else "")
        f = Family(name, "%s counter %r" % (role, key), "counter" if mono else "gauge")
        out.append(f.add(value, role=role))
    return out


def device_families(rows: Iterable[dict[str, Any]], now_ms: int | None = None) -> list[Family]:
    """Per-device families from the ``/api/devices`` rows (``id`` and ``gateway`` label them)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    online = Family("lasp_device_online", "1 while the device's session is up")
    backlog = Family("lasp_device_backlog", "log segments not yet delivered to the device")
    rejected = Family("lasp_device_rejected_total", "messages from the device rejected", "counter")
    lag = Family("lasp_device_sync_lag_seconds", "seconds since the device was last heard from")
    for r in rows:
        labels = {"device": r.get("id"), "gateway": r.get("gateway", "")}
        online.add(r.get("online"), **labels)
        backlog.add(r.get("backlog"), **labels)
        rejected.add(r.get("rejected"), **labels)
        seen = r.get("last_seen_ms")
        if isinstance(seen, int | float):
            lag.add(max(0.0, (now_ms - seen) / 1000.0), **labels)
    return [online, backlog, rejected, lag]
