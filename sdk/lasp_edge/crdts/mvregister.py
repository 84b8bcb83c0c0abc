"""MVRegister: multi-value register. Concurrent writes are all kept until overwritten.

``set(replica, v)`` writes ``v`` under a fresh dot and supersedes every value it observed;
``value()`` lists the surviving concurrent values (deduplicated, canonical order). Values
are any CBOR-encodable data and are treated as immutable.

Wire form: ``[[r, n, v, r, n, v, ...], vv, cloud]``.
"""

from lasp_edge import cbor
from lasp_edge.crdts.base import expect
from lasp_edge.crdts.causal import CausalLattice, DotKernel, check_replica, dot_key, dots_from_flat


class MVRegister(CausalLattice):
    TAG = 7
    NAME = "mvregister"
    MUTATORS = ("set",)

    def set(self, replica, value):
        check_replica(replica)
        cbor.dumps(value)  # refuse what cannot travel, at the write, not at sync time
        return self._wrap(self._k.add(replica, value, self._k.dots))

    def _eq(self, other):
        # Payloads compare by their bytes: a value that went over the wire comes back as an
        # equal-encoding value of another Python type (a tuple as a list), and NaN != NaN.
        a, b = self._k, other._k
        if a.cc != b.cc or len(a.dots) != len(b.dots):
            return False
        for d, v in a.dots.items():
            if d not in b.dots or cbor.dumps(v) != cbor.dumps(b.dots[d]):
                return False
        return True

    def value(self):
        seen = {}
        for v in self._k.dots.values():
            seen[cbor.dumps(v)] = v
        return [seen[b] for b in sorted(seen, key=lambda b: (len(b), b))]

    def to_wire(self):
        out = []
        for d in sorted(self._k.dots, key=dot_key):
            out.append(d[0])
            out.append(d[1])
            out.append(self._k.dots[d])
        return [out] + self._k.cc.to_wire()

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 3, "mvregister wants 3 parts")
        return cls._wrap(DotKernel().load(dots_from_flat(w[0], 3), w[1], w[2]))
