"""EWFlag: enable-wins flag. ``enable`` writes a fresh dot; ``disable`` drops observed dots.

The flag is on while any dot is alive, so an enable concurrent with a disable wins. It is
the dot kernel with no payload (Almeida et al. 2018, §7.1).

Wire form: ``[[r, n, ...], vv, cloud]``.
"""

from lasp_edge.crdts.base import Lattice, expect
from lasp_edge.crdts.causal import DotKernel, check_replica, dots_from_flat, flat_dots


class EWFlag(Lattice):
    TAG = 9
    NAME = "ewflag"
    MUTATORS = ("enable", "disable")

    def __init__(self):
        self._k = DotKernel()

    @classmethod
    def _wrap(cls, kernel):
        f = cls()
        f._k = kernel
        return f

    def enable(self, replica):
        check_replica(replica)
        return self._wrap(self._k.add(replica, True, self._k.dots))

    def disable(self):
        return self._wrap(self._k.remove(self._k.dots))

    def replicas(self):
        return self._k.cc.replicas()

    def merge(self, other):
        self._check(other)
        return self._k.merge(other._k)

    def leq(self, other):
        return self._k.leq(other._k)

    def _eq(self, other):
        return self._k == other._k

    def copy(self):
        return self._wrap(self._k.copy())

    def is_bottom(self):
        return self._k.is_bottom()

    def value(self):
        return bool(self._k.dots)

    def to_wire(self):
        return [flat_dots(self._k.dots)] + self._k.cc.to_wire()

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 3, "ewflag wants 3 parts")
        pairs = [(d, True) for d in dots_from_flat(w[0])]
        return cls._wrap(DotKernel().load(pairs, w[1], w[2]))
