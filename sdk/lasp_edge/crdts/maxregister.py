"""MaxRegister: a non-negative integer that only grows; join is ``max``.

Bottom is 0. Useful for high-water marks (peak reading, last sequence seen). For signed
quantities store an offset value. Wire form: the integer.
"""

from lasp_edge.crdts.base import MAX_UINT, Lattice, check_count, expect


class MaxRegister(Lattice):
    TAG = 8
    NAME = "maxregister"
    MUTATORS = ("set",)

    def __init__(self):
        self._v = 0

    @classmethod
    def _of(cls, v):
        m = cls()
        m._v = v
        return m

    def set(self, n):
        check_count(n)
        if n > MAX_UINT:
            raise ValueError("value must be < 2**64")
        if n <= self._v:
            return MaxRegister()
        self._v = n
        return self._of(n)

    def replicas(self):
        return set()

    def merge(self, other):
        self._check(other)
        if other._v > self._v:
            self._v = other._v
            return True
        return False

    def leq(self, other):
        return self._v <= other._v

    def _eq(self, other):
        return self._v == other._v

    def copy(self):
        return self._of(self._v)

    def is_bottom(self):
        return self._v == 0

    def value(self):
        return self._v

    def to_wire(self):
        return self._v

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is int and 0 <= w <= MAX_UINT, "maxregister wants an unsigned int")
        return cls._of(w)
