"""JoinTree: the join of a changing bag of lattice states, updated in O(log n) joins.

Join has no inverse: once ``a ⊔ b`` is computed, ``b`` cannot be taken out again. A fold
that must survive removals therefore keeps every element's contribution at a leaf of a
complete binary tree whose inner nodes hold the join of their children (a segment tree
over the join semilattice, which only needs associativity and commutativity). Replacing or
removing one leaf recomputes the log2(n) nodes on its path; the root is the join of
everything present. Freed leaves are reused; the tree doubles (O(n) once) when full.

A removal costs O(log n) joins, each costing what a join of that lattice costs: cheap for
bounded states (max, min, top-k, registers). For unbounded states (a set of everything) the
upper joins grow with the data: use the set combinators for those instead.
"""

from __future__ import annotations

from typing import Any

from lasp_edge.crdts.base import Lattice


def _join(a: Lattice | None, b: Lattice | None) -> Lattice | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.join(b)


class JoinTree:
    def __init__(self) -> None:
        self._cap = 1
        self._nodes: list[Lattice | None] = [None, None]  # 1-based heap; leaves at [cap, 2cap)
        self._slot: dict[Any, int] = {}
        self._free: list[int] = []
        self._next = 0

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, key: Any) -> bool:
        return key in self._slot

    def root(self) -> Lattice | None:
        """The join of every present contribution (None when empty)."""
        return self._nodes[1]

    def set(self, key: Any, value: Lattice) -> None:
        i = self._slot.get(key)
        if i is None:
            if self._free:
                i = self._free.pop()
            else:
                if self._next == self._cap:
                    self._grow()
                i = self._next
                self._next += 1
            self._slot[key] = i
        self._nodes[self._cap + i] = value
        self._fix(i)

    def discard(self, key: Any) -> None:
        i = self._slot.pop(key, None)
        if i is None:
            return
        self._nodes[self._cap + i] = None
        self._free.append(i)
        self._fix(i)

    def _fix(self, i: int) -> None:
        n = self._nodes
        j = (self._cap + i) >> 1
        while j:
            n[j] = _join(n[2 * j], n[2 * j + 1])
            j >>= 1

    def _grow(self) -> None:
        old_cap = self._cap
        leaves = self._nodes[old_cap : 2 * old_cap]
        self._cap = cap = old_cap * 2
        n: list[Lattice | None] = [None] * (2 * cap)
        n[cap : cap + old_cap] = leaves
        for j in range(cap - 1, 0, -1):
            n[j] = _join(n[2 * j], n[2 * j + 1])
        self._nodes = n
