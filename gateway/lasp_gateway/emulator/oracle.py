"""The oracle: every update every device made, and what the fleet must converge to.

For each device the oracle applies each update the app makes to its own copy of the
variable (the same mutator with the same arguments), so it knows the exact state the
device produced, independently of the device's store, the network and the services.

Durability is the one thing it takes from the device: the runtime's flush policy may lose
the updates made since the last flush when the power goes (micropython/README.md bounds
it). So the oracle keeps two states per device: ``made`` (everything) and ``durable``
(as of the last completed flush). A crash rolls ``made`` back to ``durable`` and counts
the difference as ``lost_at_crash``: allowed by the policy, reported, never hidden.

Real devices (MicroPython processes) report through their oracle file and, at the end,
their flash store: the final state is read from the store the device wrote, and its
own total is checked against the ``F`` line the app printed.

``expected()`` is the join of every device's durable state: what the gateway must hold
exactly when the fleet has converged. Nothing lost (the gateway is not below it), nothing
double-counted (not above it).

Next to the CRDT copies the oracle keeps *facts*, plain records of what the app did (a
score, a reading; the app's ``AppSpec`` says which), made and durable alike. From the
durable facts of every device the app's spec recomputes, with no CRDT at all, what the
aggregator's program must show (``AppSpec.program_expected``): the global top-k of every
score, the average of every reading per window.
"""

from __future__ import annotations

from typing import Any


class DeviceOracle:
    def __init__(self, bottoms: dict[str, Any]) -> None:
        self.made = {n: s.copy() for n, s in bottoms.items()}
        self.durable = {n: s.copy() for n, s in bottoms.items()}
        self.made_n = 0
        self.durable_n = 0
        self.facts: list[Any] = []  # made; the first ``durable_facts`` of them are durable
        self.durable_facts = 0
        self.lost_at_crash = 0
        self.crashes = 0

    def update(self, name: str, op: str, args: tuple[Any, ...]) -> None:
        state = self.made.get(name)
        if state is not None:
            getattr(state, op)(*args)
            self.made_n += 1

    def fact(self, fact: Any) -> None:
        self.facts.append(fact)

    def flushed(self) -> None:
        self.durable_facts = len(self.facts)
        if self.durable_n != self.made_n:
            self.durable = {n: s.copy() for n, s in self.made.items()}
            self.durable_n = self.made_n

    def crashed(self) -> None:
        self.crashes += 1
        self.lost_at_crash += self.made_n - self.durable_n
        self.made = {n: s.copy() for n, s in self.durable.items()}
        self.made_n = self.durable_n
        del self.facts[self.durable_facts :]

    def set_final(self, states: dict[str, Any], total: int, facts: Any = ()) -> None:
        """A real device's end state and facts (from its store), own total (``F`` line)."""
        for n, s in states.items():
            if n in self.made:
                self.made[n] = s.copy()
                self.durable[n] = s.copy()
        self.made_n = self.durable_n = total
        self.facts = list(facts)
        self.durable_facts = len(self.facts)


class Oracle:
    def __init__(self, bottoms: dict[str, Any]) -> None:
        self.bottoms = bottoms
        self.devices: dict[Any, DeviceOracle] = {}

    def device(self, dev_id: Any) -> DeviceOracle:
        d = self.devices.get(dev_id)
        if d is None:
            d = self.devices[dev_id] = DeviceOracle(self.bottoms)
        return d

    def expected(self) -> dict[str, Any]:
        out = {n: s.copy() for n, s in self.bottoms.items()}
        for d in self.devices.values():
            for n, s in d.durable.items():
                out[n].merge(s)
        return out

    def facts(self, durable: bool = True) -> list[Any]:
        """Every device's facts: the durable ones (the verdict) or all made (the plot)."""
        out: list[Any] = []
        for d in list(self.devices.values()):
            out += d.facts[: d.durable_facts] if durable else d.facts
        return out

    @property
    def made(self) -> int:
        return sum(d.made_n for d in self.devices.values())

    @property
    def lost_at_crash(self) -> int:
        return sum(d.lost_at_crash for d in self.devices.values())


def plain(value: Any) -> Any:
    """A CRDT value as the JSON the HTTP API serves (sets as sorted lists), to compare."""
    from lasp_gateway.http_api import jsonable

    return jsonable(value)


def total(value: Any) -> int:
    """The sum of a counter or a map of counters (the divergence plot's one number)."""
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return sum(total(v) for v in value.values())
    return 0


def diff(expected: Any, got: Any) -> list[str]:
    """Human lines for what differs between two plain values (map keys one by one)."""
    if expected == got:
        return []
    if isinstance(expected, dict) and isinstance(got, dict):
        out = []
        for k in sorted(set(expected) | set(got), key=str):
            e, g = expected.get(k), got.get(k)
            if e != g:
                what = ""
                if isinstance(e, int) and isinstance(g, int):
                    what = " (%s %d)" % ("lost" if g < e else "extra", abs(e - g))
                out.append("%s: expected %r, got %r%s" % (k, e, g, what))
        return out
    return ["expected %r, got %r" % (expected, got)]
