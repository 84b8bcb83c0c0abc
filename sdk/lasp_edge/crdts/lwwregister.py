"""LWWRegister: last-writer-wins register.

A write is ``(timestamp, replica, value)``; join keeps the greatest write ordered by
timestamp, then replica id (ints before strs), then the value's canonical CBOR bytes. The
two tie-breaks make join commutative even when two replicas write at the same timestamp.
Timestamps are non-negative ints supplied by the caller (a logical clock or epoch-ms):
nothing here reads a clock.

Wire form: ``null`` for bottom, else ``[timestamp, replica, value]``.
"""

from lasp_edge import cbor
from lasp_edge.crdts.base import MAX_UINT, Lattice, check_replica, expect, replica_rank


def _rank(w):
    b = cbor.dumps(w[2])
    return (w[0], replica_rank(w[1]), len(b), b)


class LWWRegister(Lattice):
    TAG = 6
    NAME = "lwwregister"
    MUTATORS = ("set",)

    def __init__(self):
        self._w = None  # (timestamp, replica, value) or None for bottom

    @classmethod
    def _of(cls, w):
        r = cls()
        r._w = w
        return r

    def set(self, value, timestamp, replica):
        check_replica(replica)
        if type(timestamp) is not int or not 0 <= timestamp <= MAX_UINT:
            raise ValueError("timestamp must be an int in [0, 2**64)")
        w = (timestamp, replica, value)
        cbor.dumps(value)  # refuse what cannot travel, at the write
        if self._w is not None and _rank(w) <= _rank(self._w):
            return LWWRegister()  # an older write changes nothing
        self._w = w
        return self._of(w)

    def replicas(self):
        return set() if self._w is None else {self._w[1]}

    def merge(self, other):
        self._check(other)
        w = other._w
        if w is None or (self._w is not None and _rank(w) <= _rank(self._w)):
            return False
        self._w = w
        return True

    def leq(self, other):
        if self._w is None:
            return True
        return other._w is not None and _rank(self._w) <= _rank(other._w)

    def _eq(self, other):
        a, b = self._w, other._w
        if a is None or b is None:
            return a is b
        return _rank(a) == _rank(b)

    def copy(self):
        return self._of(self._w)

    def is_bottom(self):
        return self._w is None

    def value(self):
        return None if self._w is None else self._w[2]

    def timestamp(self):
        return None if self._w is None else self._w[0]

    def to_wire(self):
        return None if self._w is None else list(self._w)

    @classmethod
    def from_wire(cls, w):
        if w is None:
            return cls()
        expect(type(w) is list and len(w) == 3, "lwwregister wants [ts, replica, value]")
        expect(type(w[0]) is int and 0 <= w[0] <= MAX_UINT, "lwwregister timestamp")
        check_replica(w[1])
        return cls._of((w[0], w[1], w[2]))
