"""Dynamic variables and fold_dynamic: local values of every replica, combined globally.

Semantics
---------
A *dynamic* variable (``declare_dynamic``) has a value local to each replica: it is
updated only by its own store, never shipped and never merged (Lasp's dynamic variables).
``fold_dynamic(name, fn, dst)`` maintains a *global* variable ``dst`` such that, at every
replica, once the replicas have exchanged deltas::

    query(dst) == ⊔ { fn(local value of r) | r a replica with a live slot }

where ⊔ is the join of the contribution type (``fn=None`` means the local value itself; for
a TopK that is "the global top-k of everyone's top-k", which is exact because TopK
truncation commutes with join).

Replicated state. ``dst`` is an AWMap keyed by replica id whose values are LWWRegisters
holding the replica's current contribution (its typed wire form) with a per-replica
version as timestamp. Only replica ``r`` writes key ``r``, so its versions are totally
ordered and the register always holds r's latest contribution. Being composed of
registered types, deltas of ``dst`` travel through any sync layer as ordinary AWMap deltas.
What queries see is the *view*: the join of the live slots, recomputed on change.

When a local value grows, the replica publishes its new contribution; the view grows.
When a local value *shrinks* (``Store.reset(name)`` starts it over from bottom), the new,
smaller contribution replaces the old one: the view drops what only that replica
contributed. This is the difference from folding into a plain lattice, where nothing can
ever be taken back; it is also why the view, unlike the replicated state, may go down.
A replica whose contribution becomes bottom removes its slot (observed-remove).

When a replica *disappears* nothing happens by itself: without clocks a silent replica is
indistinguishable from a slow one, so its last contribution stays. Two explicit exits:
``reset`` before leaving (the replica withdraws its slot), or ``Store.evict(dst, r)`` by an
operator (an observed remove of r's slot: add-wins, so if r publishes again it is back).
A live replica re-announces its contribution when the program re-registers fold_dynamic.

A replica that loses its storage must come back under a new replica id (as for every CRDT):
its old slot's version would otherwise outrank its fresh writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lasp_edge.crdts import AWMap, LWWRegister
from lasp_edge.crdts.base import Lattice
from lasp_edge.store import codec
from lasp_edge.store.errors import DataflowError
from lasp_edge.store.variables import Var


def slot_map() -> AWMap:
    """The replicated state of a fold_dynamic global: replica -> LWW(contribution)."""
    return AWMap(vtype=LWWRegister.NAME)


def is_slot_map(state: Lattice) -> bool:
    return isinstance(state, AWMap) and state.vtype is LWWRegister


def keys_of(delta: Any) -> set[Any]:
    """Slots a delta of the slot map touches (its entries and its removals)."""
    w = delta.to_wire()
    return set(w[2]) | set(w[3])


class GlobalView:
    """The join of the live slots of a global variable, kept up to date incrementally."""

    def __init__(self, var: Var, proto: Lattice) -> None:
        self.var = var
        self.proto = proto.bottom()
        self.slots: dict[Any, Lattice] = {}
        self.invalid: dict[Any, str] = {}  # slots whose contents do not fit the proto
        self.state = self.proto.bottom()
        self.refresh(var.state.keys())

    def _decode(self, key: Any) -> Lattice | None:
        reg = self.var.state.get(key)
        self.invalid.pop(key, None)
        if reg is None:
            return None
        try:
            c = codec.from_typed(reg.value())
        except ValueError as exc:
            self.invalid[key] = str(exc)
            return None
        if type(c) is not type(self.proto) or c.params() != self.proto.params():
            self.invalid[key] = "contribution is a %s %r, expected %s %r" % (
                c.NAME,
                c.params(),
                self.proto.NAME,
                self.proto.params(),
            )
            return None
        return c

    def refresh(self, keys: Iterable[Any]) -> bool:
        """Re-read ``keys`` from the replicated state; True iff the view changed.

        Growth of a slot is joined in (cost of the contribution); a slot that shrank or
        vanished forces a re-join of all slots (cost: replicas x contribution size).
        """
        rebuild = False
        grow = []
        for k in keys:
            new = self._decode(k)
            old = self.slots.get(k)
            if new is None:
                if old is not None:
                    del self.slots[k]
                    rebuild = True
                continue
            self.slots[k] = new
            if old is None or old.leq(new):
                grow.append(new)
            else:
                rebuild = True
        if rebuild:
            fresh = self.proto.bottom()
            for c in self.slots.values():
                fresh.merge(c)
            changed = fresh != self.state
            self.state = fresh
            return changed
        changed = False
        for c in grow:
            changed = self.state.merge(c) or changed
        return changed


class DynamicPublisher:
    """Turns this replica's local value into its slot of the global variable."""

    def __init__(
        self,
        dyn: Var,
        fn: Callable[[Lattice], Any] | None,
        glob: Var,
        view: GlobalView,
        replica: Any,
    ) -> None:
        self.dyn = dyn
        self.fn = fn
        self.glob = glob
        self.view = view
        self.replica = replica
        self.version = self._last_version()

    def _last_version(self) -> int:
        """The highest version this replica ever wrote, removed slots included."""
        _, _, entries, tombs = self.glob.state.to_wire()
        v = 0
        for part in (entries, tombs):
            w = part.get(self.replica)
            if w is not None:
                v = max(v, w[0])
        return v

    def contribution(self) -> Lattice:
        local = self.dyn.state
        c = local.copy() if self.fn is None else self.fn(local.copy())
        if c is None:
            return self.view.proto.bottom()
        proto = self.view.proto
        if type(c) is not type(proto) or c.params() != proto.params():
            raise DataflowError(
                "fold_dynamic(%s -> %s): fn must return a %s state with %r, got %r"
                % (self.dyn.name, self.glob.name, proto.NAME, proto.params(), c)
            )
        return c

    def publish(self) -> AWMap | None:
        """The slot-map delta announcing the current contribution, or None if unchanged."""
        c = self.contribution()
        g = self.glob.state
        if c.is_bottom():
            if self.replica in g:
                return g.remove(self.replica)
            return None
        if self.view.slots.get(self.replica) == c:
            return None
        self.version += 1
        return g.update(self.replica, "set", codec.to_typed(c), self.version, self.replica)
