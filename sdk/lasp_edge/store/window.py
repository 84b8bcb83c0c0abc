"""SlidingWindow(size): per-window mergeable aggregates (count, sum, min, max) for sensors.

Theory of operation
-------------------
Time enters only as a *logical epoch* chosen by the caller (e.g. ``ts_ms // 300_000`` for
5-minute windows); nothing here reads a clock.

State: ``top`` (the greatest epoch seen, or None) and, for every epoch in the last ``size``
epochs, one *slot* per replica: that replica's own ``(count, sum, min, max)`` for the
window. Only the owner writes its slot, and every observation increments ``count``, so
``count`` is a version number: of two slots of the same replica the one with the greater
count is the newer one and supersedes the other (ties between different slots can only come
from a replica that lost its storage; they are broken by the canonical bytes so that join
stays a total function). Summing and min/max'ing happens *across* slots at read time, never
during a merge, so merging is a pure pick: idempotent, commutative, associative, and
bit-exact with floats (the global sum adds slots in one canonical order).

Pruning: windows below ``floor = top - size + 1`` are dropped. The state is then the full
(unpruned) lattice seen through the map "forget everything below the floor". Because the
floor only grows under join, forgetting commutes with join
(``prune(a) ⊔ prune(b) == prune(a ⊔ b)``), so the pruned states still form a lattice and
replicas converge. An observation for a window already below the floor is ignored: its
delta is bottom (late data is dropped, not resurrected).

Per-device and global figures come from the same state: ``aggregate(epoch, replica)`` is
one device's window, ``aggregate(epoch)`` combines all devices (global mean = sum of sums /
sum of counts, not a mean of means).

This type is CPython-only and store-local: it has no registered wire tag, so it persists
and travels as ``[version, "window", payload]`` (see ``codec.py``). Wire payload:
``[size, top, {epoch: {replica: [count, sum, min, max]}}]``.
"""

from __future__ import annotations

from typing import Any

from lasp_edge import cbor
from lasp_edge.crdts.base import (
    MAX_UINT,
    Lattice,
    check_replica,
    expect,
    replica_rank,
)

MAX_SIZE = 1024

Slot = tuple  # (count, sum, min, max)


def _check_number(v: Any) -> Any:
    t = type(v)
    if t is not int and t is not float:
        raise TypeError("observation must be an int or float, not %s" % t.__name__)
    if v != v:
        raise ValueError("observation must not be NaN")
    if t is int and not -MAX_UINT - 1 <= v <= MAX_UINT:
        raise ValueError("integer observation out of CBOR range")
    return v


def _check_epoch(epoch: Any) -> int:
    if type(epoch) is not int or not 0 <= epoch <= MAX_UINT:
        raise ValueError("epoch must be an int in [0, 2**64), got %r" % (epoch,))
    return int(epoch)


def _rank(slot: Slot) -> tuple[Any, ...]:
    b = cbor.dumps(list(slot[1:]))
    return (slot[0], len(b), b)


def _summary(count: int, total: Any, lo: Any, hi: Any) -> dict[str, Any]:
    return {"count": count, "sum": total, "min": lo, "max": hi, "mean": total / count}


class SlidingWindow(Lattice):
    TAG = 0  # not registered: store-local type, travels by NAME
    NAME = "window"
    MUTATORS = ("observe",)

    def __init__(self, size: int = 12) -> None:
        if type(size) is not int or not 1 <= size <= MAX_SIZE:
            raise ValueError("size must be an int in [1, %d]" % MAX_SIZE)
        self.size = size
        self._top: int | None = None
        self._win: dict[int, dict[Any, Slot]] = {}

    def params(self) -> dict[str, Any]:
        return {"size": self.size}

    def floor(self) -> int | None:
        """The oldest epoch still kept (None for bottom)."""
        return None if self._top is None else max(0, self._top - self.size + 1)

    def _prune(self) -> None:
        f = self.floor()
        if f is not None:
            for e in [e for e in self._win if e < f]:
                del self._win[e]

    def observe(self, replica: Any, epoch: int, value: Any) -> SlidingWindow:
        """Fold one reading of ``replica`` into window ``epoch``; return the delta (one slot)."""
        check_replica(replica)
        _check_epoch(epoch)
        _check_number(value)
        delta = SlidingWindow(self.size)
        f = self.floor()
        if f is not None and epoch < f:
            return delta  # too old: the window was already pruned
        slots = self._win.get(epoch)
        old = None if slots is None else slots.get(replica)
        if old is None:
            new: Slot = (1, value, value, value)
        else:
            total = old[1] + value
            if type(total) is int:
                _check_number(total)
            new = (old[0] + 1, total, min(old[2], value), max(old[3], value))
        if slots is None:
            slots = self._win[epoch] = {}
        slots[replica] = new
        if self._top is None or epoch > self._top:
            self._top = epoch
            self._prune()
        delta._top = epoch
        delta._win[epoch] = {replica: new}
        return delta

    def _check(self, other: Any) -> None:
        Lattice._check(self, other)
        if other.size != self.size:
            raise ValueError("cannot join windows of size %d and %d" % (self.size, other.size))

    def merge(self, other: Any) -> bool:
        self._check(other)
        grew = False
        if other._top is not None and (self._top is None or other._top > self._top):
            self._top = other._top
            self._prune()
            grew = True
        f = self.floor()
        for e, slots in other._win.items():
            if f is None or e < f:
                continue
            mine = self._win.get(e)
            for r, s in slots.items():
                cur = None if mine is None else mine.get(r)
                if cur is None or _rank(s) > _rank(cur):
                    if mine is None:
                        mine = self._win[e] = {}
                    mine[r] = s
                    grew = True
        return grew

    def leq(self, other: Any) -> bool:
        if self._top is None:
            return True
        if other._top is None or self._top > other._top:
            return False
        f = other.floor()
        for e, slots in self._win.items():
            if e < f:
                continue  # forgotten by the other side: below it in the pruned lattice
            theirs = other._win.get(e, {})
            for r, s in slots.items():
                o = theirs.get(r)
                if o is None or _rank(s) > _rank(o):
                    return False
        return True

    def _eq(self, other: Any) -> bool:
        return self.size == other.size and self._top == other._top and self._win == other._win

    def copy(self) -> SlidingWindow:
        c = SlidingWindow(self.size)
        c._top = self._top
        c._win = {e: dict(s) for e, s in self._win.items()}
        return c

    def is_bottom(self) -> bool:
        return self._top is None and not self._win

    def replicas(self) -> set[Any]:
        out: set[Any] = set()
        for slots in self._win.values():
            out.update(slots)
        return out

    def epochs(self) -> list[int]:
        """The kept windows, oldest first."""
        return sorted(self._win)

    def aggregate(self, epoch: int, replica: Any = None) -> dict[str, Any] | None:
        """``{count, sum, min, max, mean}`` of one window, for one replica or for all."""
        slots = self._win.get(epoch)
        if not slots:
            return None
        if replica is not None:
            s = slots.get(replica)
            return None if s is None else _summary(*s)
        count = 0
        total: Any = 0
        lo: Any = None
        hi: Any = None
        for r in sorted(slots, key=replica_rank):  # one order everywhere: bit-exact float sums
            c, t, mn, mx = slots[r]
            count += c
            total += t
            lo = mn if lo is None or mn < lo else lo
            hi = mx if hi is None or mx > hi else hi
        return _summary(count, total, lo, hi)

    def value(self) -> dict[int, dict[str, Any]]:
        """``{epoch: {count, sum, min, max, mean, by_replica: {replica: {...}}}}``."""
        out = {}
        for e in self.epochs():
            agg = self.aggregate(e)
            assert agg is not None
            agg["by_replica"] = {r: _summary(*s) for r, s in self._win[e].items()}
            out[e] = agg
        return out

    def to_wire(self) -> list[Any]:
        return [
            self.size,
            self._top,
            {e: {r: list(s) for r, s in slots.items()} for e, slots in self._win.items()},
        ]

    @classmethod
    def from_wire(cls, w: Any) -> SlidingWindow:
        expect(type(w) is list and len(w) == 3, "window wants [size, top, windows]")
        expect(type(w[0]) is int and 1 <= w[0] <= MAX_SIZE, "window size")
        expect(type(w[2]) is dict, "window map")
        s = cls(w[0])
        top = w[1]
        expect(top is None or (type(top) is int and 0 <= top <= MAX_UINT), "window top")
        s._top = top
        f = s.floor()
        for e, slots in w[2].items():
            expect(f is not None and type(e) is int and f <= e <= top, "window epoch")
            expect(type(slots) is dict and slots, "window slots")
            kept = s._win[e] = {}
            for r, slot in slots.items():
                check_replica(r)
                expect(type(slot) is list and len(slot) == 4, "window slot")
                c, total, lo, hi = slot
                expect(type(c) is int and 1 <= c <= MAX_UINT, "window count")
                try:
                    for x in (total, lo, hi):
                        _check_number(x)
                except (TypeError, ValueError):
                    raise ValueError("malformed wire form: window number") from None
                expect(lo <= hi, "window min <= max")
                kept[r] = (c, total, lo, hi)
        return s
