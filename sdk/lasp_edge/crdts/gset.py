"""GSet: grow-only set. Join is union; the delta of ``add(e)`` is ``{e}``.

Elements are hashable CBOR values (see ``base.check_element``); on the wire the set is an
array in canonical order so equal sets give equal bytes.
"""

from lasp_edge.crdts.base import Lattice, check_element, element_from_wire, expect, sorted_elements


class GSet(Lattice):
    TAG = 3
    NAME = "gset"
    MUTATORS = ("add",)

    def __init__(self):
        self._items = set()

    def add(self, e):
        check_element(e)
        delta = GSet()
        if e not in self._items:
            self._items.add(e)
            delta._items.add(e)
        return delta

    def __contains__(self, e):
        return e in self._items

    def __len__(self):
        return len(self._items)

    def merge(self, other):
        self._check(other)
        n = len(self._items)
        self._items.update(other._items)
        return len(self._items) > n

    def leq(self, other):
        return self._items.issubset(other._items)

    def _eq(self, other):
        return self._items == other._items

    def copy(self):
        c = GSet()
        c._items = set(self._items)
        return c

    def is_bottom(self):
        return not self._items

    def value(self):
        return set(self._items)

    def to_wire(self):
        return sorted_elements(self._items)

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list, "gset wants an array")
        c = cls()
        for x in w:
            c._items.add(element_from_wire(x))
        return c
