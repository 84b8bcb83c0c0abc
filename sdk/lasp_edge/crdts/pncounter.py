"""PNCounter: a counter that goes up and down, made of two GCounters (P and N).

Value is ``P - N``; join joins each half. Reusing GCounter keeps one merge rule for both
(Shapiro et al., "A comprehensive study of CRDTs", 2011, §3.1.2).
"""

from lasp_edge.crdts.base import Lattice, expect
from lasp_edge.crdts.gcounter import GCounter


class PNCounter(Lattice):
    TAG = 2
    NAME = "pncounter"
    MUTATORS = ("increment", "decrement")

    def __init__(self):
        self._p = GCounter()
        self._n = GCounter()

    def _with(self, p, n):
        c = PNCounter()
        c._p = p
        c._n = n
        return c

    def increment(self, replica, n=1):
        return self._with(self._p.increment(replica, n), GCounter())

    def decrement(self, replica, n=1):
        return self._with(GCounter(), self._n.increment(replica, n))

    def replicas(self):
        return self._p.replicas() | self._n.replicas()

    def merge(self, other):
        self._check(other)
        a = self._p.merge(other._p)
        b = self._n.merge(other._n)
        return a or b

    def leq(self, other):
        return self._p.leq(other._p) and self._n.leq(other._n)

    def _eq(self, other):
        return self._p._eq(other._p) and self._n._eq(other._n)

    def copy(self):
        return self._with(self._p.copy(), self._n.copy())

    def is_bottom(self):
        return self._p.is_bottom() and self._n.is_bottom()

    def value(self):
        return self._p.value() - self._n.value()

    def to_wire(self):
        return [self._p.to_wire(), self._n.to_wire()]

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 2, "pncounter wants [P, N]")
        c = cls()
        c._p = GCounter.from_wire(w[0])
        c._n = GCounter.from_wire(w[1])
        return c
