"""TwoPSet: add and remove, where a removal is final (two GSets: added, removed).

Value is ``added - removed``. Once removed an element can never come back: use AWSet when
re-adding must work. ``remove(e)`` is allowed for an element not yet seen, which pre-empts a
later add (the tombstone set is what makes concurrent add/remove converge).
"""

from lasp_edge.crdts.base import Lattice, expect
from lasp_edge.crdts.gset import GSet


class TwoPSet(Lattice):
    TAG = 4
    NAME = "twopset"
    MUTATORS = ("add", "remove")

    def __init__(self):
        self._added = GSet()
        self._removed = GSet()

    def _with(self, added, removed):
        c = TwoPSet()
        c._added = added
        c._removed = removed
        return c

    def add(self, e):
        return self._with(self._added.add(e), GSet())

    def remove(self, e):
        return self._with(GSet(), self._removed.add(e))

    def __contains__(self, e):
        return e in self._added and e not in self._removed

    def merge(self, other):
        self._check(other)
        a = self._added.merge(other._added)
        b = self._removed.merge(other._removed)
        return a or b

    def leq(self, other):
        return self._added.leq(other._added) and self._removed.leq(other._removed)

    def _eq(self, other):
        return self._added._eq(other._added) and self._removed._eq(other._removed)

    def copy(self):
        return self._with(self._added.copy(), self._removed.copy())

    def is_bottom(self):
        return self._added.is_bottom() and self._removed.is_bottom()

    def value(self):
        return self._added.value() - self._removed.value()

    def to_wire(self):
        return [self._added.to_wire(), self._removed.to_wire()]

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 2, "twopset wants [added, removed]")
        return cls()._with(GSet.from_wire(w[0]), GSet.from_wire(w[1]))
