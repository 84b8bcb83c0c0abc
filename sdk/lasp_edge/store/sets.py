"""Element-level changes of set variables, found from a delta in time proportional to it.

Combinators react to *which elements appeared or disappeared*, not to raw deltas. For a
local update the element is the mutator's argument. For a delta bound from elsewhere it
must be found from the delta alone:

* GSet/TwoPSet deltas list their elements, so the candidates are those elements.
* An AWSet delta lists the elements it adds, but a removal travels as *context only*: the
  dots it observed, with no element attached (see ``crdts/causal.py``). To turn a removed
  dot back into the element it kept alive, a tracker keeps an index ``dot -> element`` for
  every AWSet that feeds a combinator. The candidates are then the delta's elements plus
  the elements of the dots its context covers; the context is walked or the index is
  scanned, whichever is smaller, so a small delta costs little against a large set (the
  same trick as ``DotKernel.merge``).

For each candidate the tracker compares presence before and after the merge; elements whose
presence flipped make the :class:`SetChange` that flows through the dataflow graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lasp_edge.crdts import AWSet, GSet, TwoPSet

SET_TYPES = (AWSet, GSet, TwoPSet)


class SetChange:
    """Elements that became present (``added``) and absent (``removed``) in one step."""

    __slots__ = ("added", "removed")

    def __init__(self, added: Iterable[Any] = (), removed: Iterable[Any] = ()) -> None:
        self.added = list(added)
        self.removed = list(removed)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def __repr__(self) -> str:
        return "SetChange(added=%r, removed=%r)" % (self.added, self.removed)


def is_set(state: Any) -> bool:
    return isinstance(state, SET_TYPES)


def elements(state: Any) -> Iterable[Any]:
    """The live elements of a set state (a view for AWSet, a copy otherwise)."""
    if isinstance(state, AWSet):
        return state.elements()
    return state.value()


class Tracker:
    """Finds the element-level change of one set variable (GSet/TwoPSet flavour)."""

    def __init__(self, state: Any) -> None:
        pass

    def delta_candidates(self, delta: Any) -> Iterable[Any]:
        if isinstance(delta, GSet):
            return delta.value()
        w = delta.to_wire()  # TwoPSet: [added, removed]
        return list(w[0]) + list(w[1])

    def before(self, state: Any, candidates: Iterable[Any]) -> dict[Any, Any]:
        return {e: e in state for e in candidates}

    def after(self, state: Any, before: dict[Any, Any]) -> SetChange:
        ch = SetChange()
        for e, was in before.items():
            now = e in state
            if now and not was:
                ch.added.append(e)
            elif was and not now:
                ch.removed.append(e)
        return ch


class AWSetTracker(Tracker):
    """Adds the ``dot -> element`` index that resolves context-only removals."""

    def __init__(self, state: Any) -> None:
        self.index: dict[tuple[Any, int], Any] = {}
        for e in state.elements():
            for d in state.dots_of(e):
                self.index[d] = e

    def delta_candidates(self, delta: Any) -> Iterable[Any]:
        entries, vv, cloud = delta.to_wire()
        out = {entry[0] for entry in entries}
        cloud_dots = {(cloud[i], cloud[i + 1]) for i in range(0, len(cloud), 2)}
        index = self.index
        if sum(vv.values()) + len(cloud_dots) <= len(index):
            for r, n in vv.items():
                for i in range(1, n + 1):
                    if (r, i) in index:
                        out.add(index[(r, i)])
            for d in cloud_dots:
                if d in index:
                    out.add(index[d])
        else:
            for d, e in index.items():
                if d[1] <= vv.get(d[0], 0) or d in cloud_dots:
                    out.add(e)
        return out

    def before(self, state: Any, candidates: Iterable[Any]) -> dict[Any, Any]:
        return {e: state.dots_of(e) for e in candidates}

    def after(self, state: Any, before: dict[Any, Any]) -> SetChange:
        ch = SetChange()
        index = self.index
        for e, old in before.items():
            new = state.dots_of(e)
            if old != new:
                for d in old - new:
                    index.pop(d, None)
                for d in new - old:
                    index[d] = e
            if new and not old:
                ch.added.append(e)
            elif old and not new:
                ch.removed.append(e)
        return ch


def tracker_for(state: Any) -> Tracker:
    return AWSetTracker(state) if isinstance(state, AWSet) else Tracker(state)


def diff(old_elements: set[Any], state: Any) -> SetChange:
    """The change between a remembered element set and a state (for resets: O(n) anyway)."""
    now = set(elements(state))
    return SetChange(now - old_elements, old_elements - now)
