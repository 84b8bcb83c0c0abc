"""GCounter: grow-only counter, one monotonic slot per replica.

State: ``{replica: count}``; join is the pointwise maximum; value is the sum. The delta of an
increment is the single slot that changed, so on the wire it costs a few bytes whatever the
fleet size (Almeida et al. 2018, §4: the delta-mutator of GCounter).
"""

from lasp_edge.crdts.base import MAX_UINT, Lattice, check_count, check_replica, expect


class GCounter(Lattice):
    TAG = 1
    NAME = "gcounter"
    MUTATORS = ("increment",)

    def __init__(self):
        self._slots = {}  # replica -> count > 0; zero slots are never stored (canonical form)

    def increment(self, replica, n=1):
        check_replica(replica)
        check_count(n)
        delta = GCounter()
        if n:
            v = self._slots.get(replica, 0) + n
            if v > MAX_UINT:
                raise ValueError("counter slot would exceed 2**64-1")
            self._slots[replica] = v
            delta._slots[replica] = v
        return delta

    def get(self, replica):
        """The slot of one replica (what that replica alone counted)."""
        return self._slots.get(replica, 0)

    def replicas(self):
        """The replica ids that have a slot: what a delta touches, for authorization."""
        return set(self._slots)

    def merge(self, other):
        self._check(other)
        mine = self._slots
        grew = False
        for r, v in other._slots.items():
            if v > mine.get(r, 0):
                mine[r] = v
                grew = True
        return grew

    def leq(self, other):
        theirs = other._slots
        for r, v in self._slots.items():
            if v > theirs.get(r, 0):
                return False
        return True

    def _eq(self, other):
        return self._slots == other._slots

    def copy(self):
        c = GCounter()
        c._slots = dict(self._slots)
        return c

    def is_bottom(self):
        return not self._slots

    def value(self):
        return sum(self._slots.values())

    def to_wire(self):
        return dict(self._slots)

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is dict, "gcounter wants a map")
        c = cls()
        for r, v in w.items():
            check_replica(r)
            expect(type(v) is int and 0 <= v <= MAX_UINT, "gcounter count")
            if v:
                c._slots[r] = v
        return c
