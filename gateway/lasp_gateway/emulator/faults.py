"""Fault specifications and the seeded schedule they expand to (sans-IO: no time, no sockets).

``--faults loss:0.2,dup:0.1,partition:0.3`` names each fault with one parameter. Two kinds:

* **Message faults** apply to every MQTT PUBLISH crossing a device's link, decided one
  message at a time: ``loss:p`` drops it, ``dup:p`` delivers it twice, ``reorder:p`` holds
  it back so later messages overtake it, ``delay:ms`` delays every message (with jitter).
  The sync protocol sends QoS 0 PUBLISHes, so dropping or repeating one whole packet is
  exactly what a lossy network and a retrying broker do to it.
* **Episodes** are windows on the run's timeline, drawn once from the seed before the run
  starts, so the same seed gives the same schedule: ``offline:f`` (a fraction f of the
  devices each lose their link once), ``partition:f`` (one group, a fraction f of the
  fleet, is cut off at the same time), ``crash:n`` (n device crashes, each restarted from
  its flash store), ``gateway-kill:n`` (kill -9 of the gateway, restarted on its
  database), ``broker-restart:n`` and ``aggregator-down:n`` (the aggregator's link cut).

Every episode ends before the counting stops (``HEAL_BY`` of the duration), and so do the
message faults (a ``messages`` window from 0 to ``HEAL_BY``), so the run then measures how
long the fleet takes to converge after the last fault healed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MESSAGE_FAULTS = ("loss", "dup", "reorder", "delay")
EPISODES = ("offline", "partition", "crash", "gateway-kill", "broker-restart", "aggregator-down")
FAULTS = MESSAGE_FAULTS + EPISODES
PROBABILITIES = ("loss", "dup", "reorder", "offline", "partition")  # parameter in [0, 1]
HEAL_BY = 0.8  # every episode is over by this fraction of the counting time
BROKER_WIDE = ("gateway-kill", "broker-restart", "aggregator-down")


class FaultSpecError(ValueError):
    """A ``--faults`` item that is not ``name:parameter`` with a known name and range."""


@dataclass(frozen=True)
class FaultSpec:
    """The parsed ``--faults`` list: one parameter per named fault (absent: 0)."""

    params: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> float:
        return self.params.get(name, 0.0)

    def __contains__(self, name: object) -> bool:
        return bool(self.params.get(str(name)))

    def names(self) -> list[str]:
        return [n for n in FAULTS if n in self]

    def text(self) -> str:
        return ",".join("%s:%g" % (n, self.params[n]) for n in self.names())


def parse_faults(items: str | list[str] | tuple[str, ...] | None) -> FaultSpec:
    """``"loss:0.2,dup:0.1"`` or ``["loss:0.2", "crash:1"]`` as a ``FaultSpec``.

    Underscores are accepted for dashes (``gateway_kill:1``); a name without a parameter
    means 1 (``crash`` = one crash). Unknown names and out-of-range values raise
    ``FaultSpecError`` naming the item, so a typo never silently runs a fault-free test.
    """
    if items is None:
        return FaultSpec()
    if isinstance(items, str):
        items = [items]
    params: dict[str, float] = {}
    for chunk in items:
        for item in chunk.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, arg = item.partition(":")
            name = name.strip().replace("_", "-")
            if name not in FAULTS:
                raise FaultSpecError(
                    "unknown fault %r in %r; known: %s" % (name, item, ", ".join(FAULTS))
                )
            try:
                value = float(arg) if arg.strip() else 1.0
            except ValueError:
                raise FaultSpecError("fault %r needs a number, got %r" % (name, arg)) from None
            if value < 0 or (name in PROBABILITIES and value > 1):
                raise FaultSpecError(
                    "fault %r: %g is out of range (%s)"
                    % (name, value, "0..1" if name in PROBABILITIES else ">= 0")
                )
            params[name] = value
    return FaultSpec(params)


@dataclass(frozen=True)
class Episode:
    """One fault window: ``kind`` from ``start`` to ``end`` seconds, on ``targets``.

    ``targets`` are device indices for offline/partition/crash, empty for the services.
    For a crash, ``end`` is when the device restarts.
    """

    kind: str
    start: float
    end: float
    targets: tuple[int, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "start_s": round(self.start, 3),
            "end_s": round(self.end, 3),
            "targets": list(self.targets),
        }


def plan_episodes(
    spec: FaultSpec,
    devices: int,
    duration: float,
    seed: int,
    real: list[int] | tuple[int, ...] = (),
) -> list[Episode]:
    """The run's episodes, sorted by start; the same arguments always give the same list.

    ``real`` are the indices of real (MicroPython) devices: crashes alternate between a
    real and a virtual device when there are both, so that one run exercises both kinds of
    crash (kill -9 of a process, abrupt stop of an in-process device).
    """
    rng = random.Random("episodes/%d" % seed)
    heal = duration * HEAL_BY
    out: list[Episode] = []

    def window(min_f: float, max_f: float) -> tuple[float, float]:
        length = rng.uniform(min_f, max_f) * duration
        start = rng.uniform(0.05 * duration, max(0.05 * duration, heal - length))
        return start, min(heal, start + length)

    n_off = _count(spec.get("offline"), devices)
    for i in sorted(rng.sample(range(devices), n_off)):
        s, e = window(0.1, 0.3)
        out.append(Episode("offline", s, e, (i,)))
    n_part = _count(spec.get("partition"), devices)
    if n_part:
        s, e = window(0.2, 0.35)
        out.append(Episode("partition", s, e, tuple(sorted(rng.sample(range(devices), n_part)))))
    virtual = [i for i in range(devices) if i not in set(real)]
    for k in range(int(spec.get("crash"))):
        pool = list(real) if (k % 2 == 0 and real) or not virtual else virtual
        s = rng.uniform(0.1, 0.7) * heal
        out.append(Episode("crash", s, s + rng.uniform(0.5, 2.0), (rng.choice(pool),)))
    for kind in BROKER_WIDE:
        n = int(spec.get(kind))
        for k in range(n):  # spread over the run so the windows never overlap
            lo, hi = heal * k / n, heal * (k + 1) / n
            length = min(rng.uniform(1.0, 3.0), 0.5 * (hi - lo))
            s = rng.uniform(lo + 0.05 * (hi - lo), hi - length)
            out.append(Episode(kind, s, s + length))
    if any(spec.get(n) for n in MESSAGE_FAULTS):
        out.append(Episode("messages", 0.0, heal))
    out.sort(key=lambda e: (e.start, e.kind, e.targets))
    return out


def _count(fraction: float, devices: int) -> int:
    """Devices affected by a fraction: at least one when the fault is on at all."""
    if fraction <= 0 or devices <= 0:
        return 0
    return min(devices, max(1, round(fraction * devices)))


class MessageFaults:
    """Per-message decisions for one link: how many copies to deliver, and after how long.

    ``decide()`` returns a list of delays in seconds, one per copy to deliver: ``[]`` is a
    loss, two entries a duplicate. Each link has its own generator seeded from the run's
    seed and the link's name, so one link's traffic does not shift another's choices.
    """

    def __init__(self, spec: FaultSpec, seed: int, link: str) -> None:
        self.loss = spec.get("loss")
        self.dup = spec.get("dup")
        self.reorder = spec.get("reorder")
        self.delay_s = spec.get("delay") / 1000.0
        self.active = bool(self.loss or self.dup or self.reorder or self.delay_s)
        self.healed = False  # set when the run's message-fault window ends
        self.rng = random.Random("messages/%d/%s" % (seed, link))
        self.dropped = 0
        self.duplicated = 0
        self.reordered = 0

    def decide(self) -> list[float]:
        if not self.active or self.healed:
            return [0.0]
        r = self.rng.random
        if self.loss and r() < self.loss:
            self.dropped += 1
            return []
        base = self.delay_s * (0.5 + r()) if self.delay_s else 0.0
        if self.reorder and r() < self.reorder:
            self.reordered += 1
            base += 0.05 + 0.25 * r()  # held back: messages sent after it overtake it
        if self.dup and r() < self.dup:
            self.duplicated += 1
            return [base, base + 0.02 * r()]
        return [base]
