"""Threshold tests for inflationary reads, streams and ``enforce_once``.

Lasp's ``read(x, threshold)`` blocks until the state of ``x`` is at or above ``threshold``
in the lattice order. Because states only grow, once such a test passes it passes forever:
that is what makes a threshold read a safe synchronisation point between replicas that
share nothing but the lattice.

Accepted thresholds:

* ``None``: bottom (returns at once; with ``strict=True`` waits for any non-bottom state).
* A state of the variable's own type and parameters: ``threshold <= state`` (``<`` if strict).
* An ``int`` for counters (gcounter, pncounter, maxregister): ``value >= n`` (``>``).
  Lattice order on a GCounter compares per-replica slots, which is rarely what a caller
  means by "50,000 impressions", so the int form compares the *value*. For a GCounter and a
  MaxRegister the value is monotone, so the test is still stable once true. For a PNCounter
  the value can fall again; the read still returns the first time it holds.
* ``{"cardinality": n}`` for collections (awset, gset, twopset, awmap, topk): ``len >= n``.
* A predicate ``f(value) -> bool`` (not with ``strict``): an escape hatch; it is the
  caller's job to make it monotone if they want the stability guarantee.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lasp_edge import cbor
from lasp_edge.crdts import AWMap, AWSet, GCounter, GSet, MaxRegister, PNCounter, TopK, TwoPSet
from lasp_edge.crdts.base import Lattice
from lasp_edge.store import codec

Check = Callable[[Lattice], bool]

COUNTERS = (GCounter, PNCounter, MaxRegister)
COLLECTIONS = (AWSet, GSet, TwoPSet, AWMap, TopK)

FORMS = (
    "None, a state of the same type, an int (counters: value >= n), "
    "{'cardinality': n} (collections) or a predicate f(value) -> bool"
)


def size_of(state: Lattice) -> int:
    if isinstance(state, (AWSet, GSet)):
        return len(state)
    if isinstance(state, AWMap):
        return len(state.keys())
    return len(state.value())


def compile_threshold(state: Lattice, threshold: Any, strict: bool) -> Check:
    """A test ``check(state) -> bool`` for states shaped like ``state``; raises on misuse."""
    cls = type(state)
    if threshold is None:
        if strict:
            return lambda s: not s.is_bottom()
        return lambda s: True
    if isinstance(threshold, Lattice):
        if type(threshold) is not cls:
            raise TypeError(
                "threshold is a %s state but the variable holds %s" % (threshold.NAME, cls.NAME)
            )
        if threshold.params() != state.params():
            raise ValueError(
                "threshold parameters %r differ from the variable's %r"
                % (threshold.params(), state.params())
            )
        t = threshold.copy()
        if strict:
            return lambda s: t.leq(s) and not s.leq(t)
        return lambda s: bool(t.leq(s))
    if type(threshold) is int:
        if cls not in COUNTERS:
            raise ValueError(
                "an int threshold applies to counters (gcounter, pncounter, maxregister), "
                "not %s; use one of: %s" % (cls.NAME, FORMS)
            )
        n = threshold
        if strict:
            return lambda s: bool(s.value() > n)
        return lambda s: bool(s.value() >= n)
    if isinstance(threshold, dict):
        card = threshold.get("cardinality")
        if set(threshold) != {"cardinality"} or type(card) is not int:
            raise ValueError("a dict threshold must be {'cardinality': int}, got %r" % threshold)
        if cls not in COLLECTIONS:
            raise ValueError(
                "{'cardinality': n} applies to collections (awset, gset, twopset, awmap, "
                "topk), not %s" % cls.NAME
            )
        n = card
        if strict:
            return lambda s: size_of(s) > n
        return lambda s: size_of(s) >= n
    if callable(threshold):
        if strict:
            raise ValueError("strict=True needs a lattice threshold, not a predicate")
        pred = threshold
        return lambda s: bool(pred(s.value()))
    raise TypeError("threshold must be %s; got %r" % (FORMS, threshold))


def identity(threshold: Any, strict: bool) -> str | None:
    """A stable text for a threshold (to name an enforce_once effect), or None if it has none.

    Predicates have no stable identity across restarts, so they need an explicit key.
    """
    if threshold is None or type(threshold) is int:
        form: Any = threshold
    elif isinstance(threshold, dict):
        form = {"cardinality": threshold.get("cardinality")}
    elif isinstance(threshold, Lattice):
        form = codec.dumps(threshold)
    else:
        return None
    return cbor.dumps([form, bool(strict)]).hex()
