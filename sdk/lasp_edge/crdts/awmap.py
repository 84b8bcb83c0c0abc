"""AWMap: add-wins map from keys to nested CRDTs of one declared type.

Design. Every key maps to a nested state of the value type (``AWMap("gcounter")``: ad id ->
impressions). ``update(key, op, *args)`` runs the nested mutator ``op`` and returns a map
delta holding just that key's nested delta. ``remove(key)`` is an *observed remove*: it
records, as a tombstone for that key, the nested state it saw. A key is present iff its
nested state is not below its tombstone, that is, iff some update exists that the removal
did not observe. An update concurrent with (or after) a removal therefore brings the key
back: add wins.

Why not dots per key, as in the ORMap of Almeida et al. 2018 (§7.3)? Dots would cost ~5
bytes per key on the wire and would need nested states to share a causal context, which a
GCounter does not have. Because every mutator of every lasp-edge type strictly inflates
the state, "not below the tombstone" already identifies an unobserved update, and a map
nobody removes from carries no overhead at all: ``{key: nested}``.

The price: a removed key keeps its nested state and its tombstone (they are needed to
detect concurrent updates), and when a key comes back its value is the joined state of its
whole history, not a fresh bottom. Use a new key when a fresh counter is wanted.

The state is the product lattice of two pointwise maps (entries, tombstones), so join,
order and convergence follow from those of the value type.

Wire form: ``[value_tag, value_params, {key: nested_wire}, {key: tombstone_wire}]``.
"""

from lasp_edge.crdts.base import Lattice, check_element, element_from_wire, expect


def _resolve(vtype):
    # The module, not ``from lasp_edge.crdts.registry import type_for``: on CPython that form
    # probes the registry module's ``__getattr__`` for ``__path__``, which raises and is
    # caught, once for every map a gateway decodes.
    from lasp_edge.crdts import registry

    return registry.type_for(vtype)


class AWMap(Lattice):
    TAG = 11
    NAME = "awmap"
    MUTATORS = ("update", "remove")

    def __init__(self, vtype="gcounter", vparams=None):
        self.vtype = _resolve(vtype)
        self.vparams = {} if vparams is None else dict(vparams)
        self.vtype(**self.vparams)  # fail early on bad parameters
        self._entries = {}  # key -> nested state (never bottom)
        self._tombs = {}  # key -> nested state observed by a remove

    def params(self):
        return {"vtype": self.vtype.NAME, "vparams": dict(self.vparams)}

    def _new_value(self):
        return self.vtype(**self.vparams)

    def _empty(self):
        return AWMap(self.vtype, self.vparams)

    def _present(self, key):
        v = self._entries.get(key)
        if v is None:
            return False
        t = self._tombs.get(key)
        return t is None or not v.leq(t)

    def update(self, key, op, *args):
        """Apply the nested mutator ``op(*args)`` to ``key``; return the map delta."""
        check_element(key)
        if op not in self.vtype.MUTATORS:
            raise ValueError(
                "%s has no mutator %r; valid: %s"
                % (self.vtype.__name__, op, ", ".join(self.vtype.MUTATORS))
            )
        nested = self._entries.get(key)
        fresh = nested is None
        if fresh:
            nested = self._new_value()
        d = getattr(nested, op)(*args)
        delta = self._empty()
        if not d.is_bottom():
            if fresh:
                self._entries[key] = nested
            delta._entries[key] = d
        return delta

    def remove(self, key):
        """Hide ``key`` as observed now; a later or concurrent update brings it back."""
        check_element(key)
        delta = self._empty()
        if self._present(key):
            seen = self._entries[key].copy()
            delta._tombs[key] = seen
            t = self._tombs.get(key)
            if t is None:
                self._tombs[key] = seen.copy()
            else:
                t.merge(seen)
        return delta

    def __contains__(self, key):
        return self._present(key)

    def keys(self):
        return [k for k in self._entries if self._present(k)]

    def get(self, key):
        """A copy of the nested state of a present key, else None."""
        return self._entries[key].copy() if self._present(key) else None

    def replicas(self):
        out = set()
        for part in (self._entries, self._tombs):
            for v in part.values():
                out |= v.replicas()
        return out

    def _check(self, other):
        Lattice._check(self, other)
        if other.vtype is not self.vtype:
            raise TypeError(
                "cannot join AWMap of %s with AWMap of %s"
                % (self.vtype.__name__, other.vtype.__name__)
            )
        if other.vparams != self.vparams:
            raise ValueError("cannot join AWMaps with different value parameters")

    def merge(self, other):
        self._check(other)
        grew = False
        for mine, theirs in ((self._entries, other._entries), (self._tombs, other._tombs)):
            for k, v in theirs.items():
                cur = mine.get(k)
                if cur is None:
                    mine[k] = v.copy()
                    grew = True
                elif cur.merge(v):
                    grew = True
        return grew

    def leq(self, other):
        for mine, theirs in ((self._entries, other._entries), (self._tombs, other._tombs)):
            for k, v in mine.items():
                t = theirs.get(k)
                if t is None or not v.leq(t):
                    return False
        return True

    def _eq(self, other):
        return (
            other.vtype is self.vtype
            and other.vparams == self.vparams
            and self._entries == other._entries
            and self._tombs == other._tombs
        )

    def copy(self):
        c = self._empty()
        c._entries = {k: v.copy() for k, v in self._entries.items()}
        c._tombs = {k: v.copy() for k, v in self._tombs.items()}
        return c

    def is_bottom(self):
        return not self._entries and not self._tombs

    def value(self):
        return {k: v.value() for k, v in self._entries.items() if self._present(k)}

    def to_wire(self):
        return [
            self.vtype.TAG,
            dict(self.vparams),
            {k: v.to_wire() for k, v in self._entries.items()},
            {k: v.to_wire() for k, v in self._tombs.items()},
        ]

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 4, "awmap wants 4 parts")
        expect(type(w[0]) is int and type(w[1]) is dict, "awmap value type")
        expect(type(w[2]) is dict and type(w[3]) is dict, "awmap entries")
        for name in w[1]:
            expect(type(name) is str, "awmap value parameter name")
        try:
            m = cls(w[0], w[1])
        except (TypeError, KeyError):
            raise ValueError("malformed wire form: awmap value type") from None
        want = m._new_value().params()
        for src, dst in ((w[2], m._entries), (w[3], m._tombs)):
            for k, v in src.items():
                nested = m.vtype.from_wire(v)
                expect(nested.params() == want, "awmap nested parameters")
                if not nested.is_bottom():
                    dst[element_from_wire(k)] = nested
        return m
