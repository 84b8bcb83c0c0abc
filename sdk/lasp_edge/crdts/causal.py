"""Dots, causal contexts and the dot kernel behind AWSet, MVRegister and EWFlag.

Theory of operation (Almeida, Shoker, Baquero 2018, §6 "causal CRDTs"):

* Every write gets a fresh *dot* ``(replica, n)``: the n-th event of that replica.
* A *causal context* is the set of dots a replica has seen. It is kept compact as a version
  vector ``{replica: n}`` (every dot up to n seen) plus a small *cloud* of dots seen out of
  order. After every change the cloud is compacted back into the vector where contiguous,
  which keeps one canonical representation per set (needed for equal bytes).
* A *dot store* maps the dots still alive to their payload (an element, a register value).
  A dot that is in the context but not in the store was *removed*: that is how removals are
  represented without per-element tombstones.
* Join of ``(s1, c1)`` and ``(s2, c2)`` keeps a dot iff both stores hold it, or one store
  holds it and the other context has never seen it; the contexts are unioned. A concurrent
  add (fresh dot, unseen by the remover) therefore survives a remove: add wins.

Cost follows the change: the dots removed by a merge are found by walking whichever is
smaller, the incoming context or our own store, so merging a small delta into a large
state touches only what the delta mentions.
"""

from lasp_edge.crdts.base import Lattice, check_replica, expect, replica_rank


def dot_key(d):
    return (replica_rank(d[0]), d[1])


def check_dot(r, n):
    check_replica(r)
    expect(type(n) is int and 0 < n <= 0xFFFFFFFFFFFFFFFF, "dot counter")
    return (r, n)


def flat_dots(dots):
    """``[(r, n), ...]`` -> ``[r, n, r, n, ...]`` in canonical order (one array, fewer bytes)."""
    out = []
    for r, n in sorted(dots, key=dot_key):
        out.append(r)
        out.append(n)
    return out


def dots_from_flat(w, width=2):
    """Inverse of ``flat_dots``; with ``width=3`` also yields a payload per dot."""
    expect(type(w) is list and len(w) % width == 0, "flat dot list")
    out = []
    for i in range(0, len(w), width):
        d = check_dot(w[i], w[i + 1])
        out.append((d, w[i + 2]) if width == 3 else d)
    return out


class CausalContext:
    """The set of dots seen, as a version vector plus a compacted cloud."""

    def __init__(self):
        self.vv = {}  # replica -> n: every dot (replica, 1..n) has been seen
        self.cloud = set()  # dots seen beyond the contiguous prefix

    def copy(self):
        c = CausalContext()
        c.vv = dict(self.vv)
        c.cloud = set(self.cloud)
        return c

    def contains(self, d):
        return d[1] <= self.vv.get(d[0], 0) or d in self.cloud

    def next_dot(self, replica):
        n = self.vv.get(replica, 0)
        for r, m in self.cloud:
            if r == replica and m > n:
                n = m
        return (replica, n + 1)

    def add(self, d):
        if self.contains(d):
            return False
        self.cloud.add(d)
        self._compact((d[0],))
        return True

    def merge(self, other):
        touched = set()
        for r, n in other.vv.items():
            if n > self.vv.get(r, 0):
                self.vv[r] = n
                touched.add(r)
        for d in other.cloud:
            if not self.contains(d):
                self.cloud.add(d)
                touched.add(d[0])
        if touched:
            self._compact(touched)
        return bool(touched)

    def _compact(self, replicas):
        # Runs after every change (and per dot while decoding): an explicit loop and an
        # in-place sort allocate one small list, where sorted(<generator>) would also put a
        # generator frame on the device heap each time.
        for r in replicas:
            mine = []
            for q, n in self.cloud:
                if q == r:
                    mine.append(n)
            mine.sort()
            top = self.vv.get(r, 0)
            for n in mine:
                if n <= top + 1:
                    self.cloud.discard((r, n))
                    if n == top + 1:
                        top = n
            if top:
                self.vv[r] = top

    def leq(self, other):
        for r, n in self.vv.items():
            if n > other.vv.get(r, 0):
                return False
        for d in self.cloud:
            if not other.contains(d):
                return False
        return True

    def __eq__(self, other):
        return self.vv == other.vv and self.cloud == other.cloud

    def size(self):
        return sum(self.vv.values()) + len(self.cloud)

    def replicas(self):
        """Replica ids with a dot in the context, without enumerating the dots."""
        out = set(self.vv)
        for d in self.cloud:
            out.add(d[0])
        return out

    def iter_dots(self):
        for r, n in self.vv.items():
            for i in range(1, n + 1):
                yield (r, i)
        yield from self.cloud

    def to_wire(self):
        return [dict(self.vv), flat_dots(self.cloud)]

    @classmethod
    def from_wire(cls, vv, cloud):
        expect(type(vv) is dict, "causal context version vector")
        c = cls()
        for r, n in vv.items():
            check_dot(r, n)
            c.vv[r] = n
        for d in dots_from_flat(cloud):
            c.add(d)
        return c


class DotKernel:
    """A dot store (dot -> payload) with its causal context; optionally indexed by payload.

    The index (payload -> set of dots) lets AWSet remove an element without scanning the
    store; MVRegister and EWFlag hold few dots and go without it (the index stays empty).
    """

    def __init__(self, indexed=False):
        self.dots: dict = {}
        self.cc = CausalContext()
        self.indexed = indexed
        self.index: dict = {}

    def copy(self):
        k = DotKernel(self.indexed)
        k.dots = dict(self.dots)
        k.cc = self.cc.copy()
        k.index = {p: set(ds) for p, ds in self.index.items()}
        return k

    def _empty_like(self):
        return DotKernel(self.indexed)

    def _put(self, d, payload):
        self.dots[d] = payload
        if self.indexed:
            s = self.index.get(payload)
            if s is None:
                self.index[payload] = {d}
            else:
                s.add(d)

    def _drop(self, d):
        payload = self.dots.pop(d)
        if self.indexed:
            s = self.index[payload]
            s.discard(d)
            if not s:
                del self.index[payload]

    def add(self, replica, payload, replaced):
        """Write ``payload`` under a fresh dot of ``replica``, superseding ``replaced`` dots.

        The delta carries the new dot and, in its context only, the superseded ones, so a
        receiver drops exactly what the writer had seen.
        """
        d = self.cc.next_dot(replica)
        delta = self._empty_like()
        for old in list(replaced):
            self._drop(old)
            delta.cc.add(old)
        self._put(d, payload)
        self.cc.add(d)
        delta._put(d, payload)
        delta.cc.add(d)
        return delta

    def remove(self, dots):
        """Drop ``dots``; the delta is context only (the removal is "seen, not alive")."""
        delta = self._empty_like()
        for d in list(dots):
            self._drop(d)
            delta.cc.add(d)
        return delta

    def merge(self, other):
        grew = False
        mine = self.dots
        theirs = other.dots
        for d, payload in theirs.items():
            if d not in mine and not self.cc.contains(d):
                self._put(d, payload)
                grew = True
        # Dots we hold that the other side saw and no longer holds were removed there.
        if other.cc.size() <= len(mine):
            gone = [d for d in other.cc.iter_dots() if d in mine and d not in theirs]
        else:
            gone = [d for d in mine if d not in theirs and other.cc.contains(d)]
        for d in gone:
            self._drop(d)
        if self.cc.merge(other.cc):
            grew = True
        return grew or bool(gone)

    def leq(self, other):
        if not self.cc.leq(other.cc):
            return False
        for d in other.dots:
            if d not in self.dots and self.cc.contains(d):
                return False
        return True

    def __eq__(self, other):
        return self.dots == other.dots and self.cc == other.cc

    def is_bottom(self):
        return not self.dots and not self.cc.vv and not self.cc.cloud

    def load(self, pairs, vv, cloud):
        """Fill from decoded wire parts, checking the invariant store ⊆ context."""
        self.cc = CausalContext.from_wire(vv, cloud)
        for d, payload in pairs:
            expect(d not in self.dots, "duplicate dot")
            expect(self.cc.contains(d), "dot outside its causal context")
            self._put(d, payload)
        return self


class CausalLattice(Lattice):
    """The shell shared by the types whose whole state is one dot kernel.

    AWSet, MVRegister and EWFlag differ only in their mutators, value and wire form; the
    lattice itself (join, order, equality, copy) is the kernel's.
    """

    INDEXED = False

    def __init__(self):
        self._k = DotKernel(self.INDEXED)

    @classmethod
    def _wrap(cls, kernel):
        s = cls()
        s._k = kernel
        return s

    def replicas(self):
        """Replica ids of every dot the state mentions, for write authorization."""
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
