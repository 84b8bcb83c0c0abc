"""EWFlag: enable-wins flag. ``enable`` writes a fresh dot; ``disable`` drops observed dots.

The flag is on while any dot is alive, so an enable concurrent with a disable wins. It is
the dot kernel with no payload (Almeida et al. 2018, §7.1).

Wire form: ``[[r, n, ...], vv, cloud]``.
"""

from lasp_edge.crdts.base import expect
from lasp_edge.crdts.causal import (
    CausalLattice,
    DotKernel,
    check_replica,
    dots_from_flat,
    flat_dots,
)


class EWFlag(CausalLattice):
    TAG = 9
    NAME = "ewflag"
    MUTATORS = ("enable", "disable")

    def enable(self, replica):
        check_replica(replica)
        return self._wrap(self._k.add(replica, True, self._k.dots))

    def disable(self):
        return self._wrap(self._k.remove(self._k.dots))

    def value(self):
        return bool(self._k.dots)

    def to_wire(self):
        return [flat_dots(self._k.dots)] + self._k.cc.to_wire()

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 3, "ewflag wants 3 parts")
        pairs = [(d, True) for d in dots_from_flat(w[0])]
        return cls._wrap(DotKernel().load(pairs, w[1], w[2]))
