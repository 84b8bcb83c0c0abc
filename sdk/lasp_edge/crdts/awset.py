"""AWSet: add-wins observed-remove set, with a causal context instead of tombstones.

``add(replica, e)`` tags ``e`` with a fresh dot and supersedes the dots ``e`` had;
``remove(e)`` drops the dots it observed. A concurrent add carries a dot the remover never
saw, so it survives: add wins. Removed elements leave nothing behind but their dots in the
compact causal context (see ``causal.py`` for the theory; Almeida et al. 2018, Fig. 6).

Wire form: ``[entries, vv, cloud]`` where ``entries`` is ``[[e, r, n, r, n, ...], ...]`` in
canonical element order, ``vv`` is ``{replica: n}`` and ``cloud`` is ``[r, n, ...]``.
"""

from lasp_edge.crdts.base import (
    canonical_key,
    check_element,
    element_from_wire,
    expect,
)
from lasp_edge.crdts.causal import (
    CausalLattice,
    DotKernel,
    check_replica,
    dots_from_flat,
    flat_dots,
)


class AWSet(CausalLattice):
    TAG = 5
    NAME = "awset"
    MUTATORS = ("add", "remove")

    INDEXED = True

    def add(self, replica, e):
        check_replica(replica)
        check_element(e)
        return self._wrap(self._k.add(replica, e, self._k.index.get(e, ())))

    def remove(self, e):
        check_element(e)
        return self._wrap(self._k.remove(self._k.index.get(e, ())))

    def __contains__(self, e):
        return e in self._k.index

    def __len__(self):
        return len(self._k.index)

    def elements(self):
        """Live elements without copying into a new set (for read-only iteration)."""
        return self._k.index.keys()

    def dots_of(self, e):
        """The dots that keep ``e`` alive: provenance for derived variables."""
        return set(self._k.index.get(e, ()))

    def value(self):
        return set(self._k.index)

    def to_wire(self):
        entries = []
        for e in sorted(self._k.index, key=canonical_key):
            entries.append([e] + flat_dots(self._k.index[e]))
        return [entries] + self._k.cc.to_wire()

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 3 and type(w[0]) is list, "awset wants 3 parts")
        pairs = []
        for entry in w[0]:
            expect(type(entry) is list and len(entry) >= 3, "awset entry")
            e = element_from_wire(entry[0])
            for d in dots_from_flat(entry[1:]):
                pairs.append((d, e))
        return cls._wrap(DotKernel(indexed=True).load(pairs, w[1], w[2]))
