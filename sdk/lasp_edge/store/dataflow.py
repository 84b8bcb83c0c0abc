"""Lasp combinators maintained incrementally: map, filter, union, intersection, product, fold.

Theory of operation
-------------------
Every combinator *node* keeps one invariant: ``dst == f(inputs)``, where ``f`` is the
from-scratch definition (``{fn(x) | x in src}``, ``a ∩ b``, ...). It never recomputes ``f``:
it receives element-level changes of its inputs (:class:`~lasp_edge.store.sets.SetChange`,
elements that appeared or disappeared) and turns each into the matching change of ``dst``,
so the cost of one update is proportional to the size of the change, not of the input.

Provenance. A derived element must disappear exactly when the input elements that produced
it are all gone. Each node keeps what it needs to know that, and no more:

* map keeps ``image[x] = fn(x)`` and a support count per output (several inputs can map to
  one output; removing one of them must not remove the output while another remains);
* filter's output element *is* its input element, so ``x in dst`` is the provenance;
* union/intersection ask the other input whether it still holds the element;
* product removes the pairs ``(x, y)`` built from the removed element;
* fold keeps each element's contribution (see below).

Derived sets are AWSets written by this store's own replica id. They are local views (never
shipped; each replica derives its own from its replicated inputs), so their dots never meet
another replica's and the observed-remove semantics are exact.

Fold under removal. ``fold(src, fn, dst)`` combines ``fn(x)`` over the live elements:

* into a PNCounter: ``fn(x)`` is an int; an added element increments by it, a removed one
  applies the inverse. Integers under ``+`` form an abelian group, so every contribution can
  be taken back exactly, and the PNCounter's state still only inflates (P and N grow) while
  its value falls: a sum of scores drops when an element is removed. A GCounter has no
  inverse, so it is accepted only over a grow-only input (a GSet).
* into any other lattice L: ``fn(x)`` is an L state (or an ``(op, *args)`` applied to
  bottom by the store's update rule) and the result is their join. Join has no inverse, so
  the node keeps contributions in a :class:`~lasp_edge.store.jointree.JoinTree` and
  recomputes only the log2(n) partial joins above a changed leaf. The view is exact after
  removals, which means it can go *down*: a fold into a lattice is the one derived variable
  whose state may shrink (it is local and never merged, so that is safe).

Functions must be pure and deterministic (the same element gives the same result on every
replica and after a restart, when the program is re-declared). Results are cached per
element, so a removal takes back exactly what the addition contributed.

Glitch freedom across diamonds. When one change reaches a node through two paths (``T =
map(S)``, then ``product(S, T)``), the node may run while one input already holds a change
the node has not processed yet. Each node therefore reads its inputs *as it has seen them*:
the current state rolled back by the changes still waiting in its inbox. With that, the
invariant holds after every single step, whatever order the engine picks, and when all
inboxes are empty the outputs equal the from-scratch definition.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from lasp_edge.crdts import GCounter, GSet, PNCounter
from lasp_edge.crdts.base import Lattice
from lasp_edge.store.errors import DataflowError
from lasp_edge.store.jointree import JoinTree
from lasp_edge.store.mutators import full_args
from lasp_edge.store.sets import SetChange, elements
from lasp_edge.store.variables import Var

_MISSING = object()


class SetOut:
    """Applies adds/removes to a derived AWSet and reports the net element change."""

    __slots__ = ("state", "replica", "touched")

    def __init__(self, var: Var, replica: Any) -> None:
        self.state = var.state
        self.replica = replica
        self.touched: dict[Any, bool] = {}  # element -> present before the step

    def add(self, e: Any) -> None:
        s = self.state
        if e not in s:
            self.touched.setdefault(e, False)
            s.add(self.replica, e)

    def remove(self, e: Any) -> None:
        s = self.state
        if e in s:
            self.touched.setdefault(e, True)
            s.remove(e)

    def change(self) -> SetChange:
        ch = SetChange()
        s = self.state
        for e, was in self.touched.items():
            now = e in s
            if now and not was:
                ch.added.append(e)
            elif was and not now:
                ch.removed.append(e)
        return ch


class Node:
    """A combinator: inputs, one derived output, and an inbox of unprocessed input changes."""

    op = "node"

    def __init__(self, inputs: tuple[Var, ...], dst: Var, replica: Any) -> None:
        self.inputs = inputs
        self.dst = dst
        self.replica = replica
        self.inbox: deque[tuple[Var, SetChange]] = deque()
        self.scheduled = False
        self.broken: Exception | None = None

    def label(self) -> str:
        return "%s(%s -> %s)" % (self.op, ", ".join(v.name for v in self.inputs), self.dst.name)

    def distinct_inputs(self) -> list[Var]:
        out: list[Var] = []
        for v in self.inputs:
            if v not in out:
                out.append(v)
        return out

    def initialize(self) -> Any:
        """Compute ``dst`` from scratch (it is bottom): every input element counts as added."""
        out: Any = None
        for v in self.distinct_inputs():
            ch = self.step(v, SetChange(added=list(elements(v.state))))
            out = _combine(out, ch)
        return out

    def step(self, src: Var, change: SetChange) -> Any:
        """Turn one input change into the output change (a SetChange, or True/False)."""
        raise NotImplementedError

    # -- inputs as this node has seen them (see the module docstring) ---------------------

    def _pending(self, var: Var) -> list[SetChange]:
        if not self.inbox:
            return []
        return [ch for v, ch in self.inbox if v is var]

    def seen_contains(self, var: Var, e: Any) -> bool:
        present = e in var.state
        for ch in reversed(self._pending(var)):  # undo later changes, newest first
            if e in ch.added:
                present = False
            elif e in ch.removed:
                present = True
        return present

    def seen_elements(self, var: Var) -> Iterable[Any]:
        pending = self._pending(var)
        if not pending:
            return list(elements(var.state))
        touched = set()
        for ch in pending:
            touched.update(ch.added)
            touched.update(ch.removed)
        out = [e for e in elements(var.state) if e not in touched]
        out.extend(e for e in touched if self.seen_contains(var, e))
        return out


def _combine(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if isinstance(a, SetChange) and isinstance(b, SetChange):
        return SetChange(a.added + b.added, a.removed + b.removed)
    return bool(a) or bool(b)


class MapNode(Node):
    op = "map"

    def __init__(self, src: Var, fn: Callable[[Any], Any], dst: Var, replica: Any) -> None:
        super().__init__((src,), dst, replica)
        self.fn = fn
        self.image: dict[Any, Any] = {}
        self.support: dict[Any, int] = {}

    def step(self, src: Var, change: SetChange) -> SetChange:
        out = SetOut(self.dst, self.replica)
        image, support = self.image, self.support
        for x in change.removed:
            y = image.pop(x, _MISSING)
            if y is _MISSING:
                continue
            n = support[y] - 1
            if n:
                support[y] = n
            else:
                del support[y]
                out.remove(y)
        fn = self.fn
        for x, y in [(x, fn(x)) for x in change.added]:
            image[x] = y
            n = support.get(y, 0) + 1
            support[y] = n
            if n == 1:
                out.add(y)
        return out.change()


class FilterNode(Node):
    op = "filter"

    def __init__(self, src: Var, pred: Callable[[Any], Any], dst: Var, replica: Any) -> None:
        super().__init__((src,), dst, replica)
        self.pred = pred

    def step(self, src: Var, change: SetChange) -> SetChange:
        out = SetOut(self.dst, self.replica)
        for x in change.removed:
            out.remove(x)
        pred = self.pred
        for x in [x for x in change.added if pred(x)]:
            out.add(x)
        return out.change()


class UnionNode(Node):
    op = "union"

    def __init__(self, a: Var, b: Var, dst: Var, replica: Any) -> None:
        super().__init__((a, b), dst, replica)

    def step(self, src: Var, change: SetChange) -> SetChange:
        a, b = self.inputs
        other = b if src is a else a
        out = SetOut(self.dst, self.replica)
        for e in change.removed:
            if not self.seen_contains(other, e):
                out.remove(e)
        for e in change.added:
            out.add(e)
        return out.change()


class IntersectionNode(Node):
    op = "intersection"

    def __init__(self, a: Var, b: Var, dst: Var, replica: Any) -> None:
        super().__init__((a, b), dst, replica)

    def step(self, src: Var, change: SetChange) -> SetChange:
        a, b = self.inputs
        other = b if src is a else a
        out = SetOut(self.dst, self.replica)
        for e in change.removed:
            out.remove(e)
        for e in change.added:
            if self.seen_contains(other, e):
                out.add(e)
        return out.change()


class ProductNode(Node):
    """``dst = {(x, y) | x in a, y in b}``; a change costs the size of the other input."""

    op = "product"

    def __init__(self, a: Var, b: Var, dst: Var, replica: Any) -> None:
        super().__init__((a, b), dst, replica)

    def initialize(self) -> Any:
        a = self.inputs[0]
        return self.step(a, SetChange(added=list(elements(a.state))))

    def step(self, src: Var, change: SetChange) -> SetChange:
        a, b = self.inputs
        out = SetOut(self.dst, self.replica)
        if a is b:
            cur = list(self.seen_elements(a))
            for x in change.removed:
                for y in cur + change.removed:
                    out.remove((x, y))
                    out.remove((y, x))
            for x in change.added:
                for y in cur:
                    out.add((x, y))
                    out.add((y, x))
        elif src is a:
            others = self.seen_elements(b) if change else ()
            for x in change.removed:
                for y in others:
                    out.remove((x, y))
            for x in change.added:
                for y in others:
                    out.add((x, y))
        else:
            others = self.seen_elements(a) if change else ()
            for y in change.removed:
                for x in others:
                    out.remove((x, y))
            for y in change.added:
                for x in others:
                    out.add((x, y))
        return out.change()


class FoldCounterNode(Node):
    """Sum of int contributions into a PNCounter (group: removal is the inverse) or GCounter."""

    op = "fold"

    def __init__(self, src: Var, fn: Callable[[Any], Any], dst: Var, replica: Any) -> None:
        super().__init__((src,), dst, replica)
        self.fn = fn
        self.contrib: dict[Any, int] = {}

    def _apply(self, n: int) -> bool:
        state = self.dst.state
        if n > 0:
            state.increment(self.replica, n)
        elif n < 0:
            if not isinstance(state, PNCounter):
                raise DataflowError(
                    "fold into a gcounter got a negative contribution %d; use a pncounter" % n
                )
            state.decrement(self.replica, -n)
        return n != 0

    def step(self, src: Var, change: SetChange) -> bool:
        changed = False
        contrib = self.contrib
        for x in change.removed:
            c = contrib.pop(x, 0)
            if c and isinstance(self.dst.state, GCounter):
                raise DataflowError("fold into a gcounter cannot take back a removed element")
            changed = self._apply(-c) or changed
        fn = self.fn
        for x, c in [(x, fn(x)) for x in change.added]:
            if type(c) is not int:
                raise DataflowError(
                    "fold into a counter: fn must return an int, got %r for %r" % (c, x)
                )
            contrib[x] = c
            changed = self._apply(c) or changed
        return changed


class FoldJoinNode(Node):
    """Join of lattice contributions, exact under removal through a JoinTree."""

    op = "fold"

    def __init__(self, src: Var, fn: Callable[[Any], Any], dst: Var, replica: Any) -> None:
        super().__init__((src,), dst, replica)
        self.fn = fn
        self.tree = JoinTree()
        self.bottom = dst.state.bottom()

    def contribution(self, x: Any) -> Lattice:
        c = self.fn(x)
        b = self.bottom
        if isinstance(c, tuple) and c and isinstance(c[0], str):
            state = b.bottom()
            getattr(state, c[0])(*full_args(state, c[0], c[1:], self.replica))
            return state
        if type(c) is not type(b) or c.params() != b.params():
            raise DataflowError(
                "fold into %s: fn must return a %s state with %r or an (op, *args) tuple, "
                "got %r for %r" % (b.NAME, b.NAME, b.params(), c, x)
            )
        return c

    def step(self, src: Var, change: SetChange) -> bool:
        tree = self.tree
        for x in change.removed:
            tree.discard(x)
        for x, c in [(x, self.contribution(x)) for x in change.added]:
            tree.set(x, c)
        root = tree.root()
        new = self.bottom.copy() if root is None else root.copy()
        if new == self.dst.state:
            return False
        self.dst.state = new
        return True


def fold_node(src: Var, fn: Callable[[Any], Any], dst: Var, replica: Any) -> Node:
    """Pick the fold rule from the destination type (see the module docstring)."""
    if isinstance(dst.state, PNCounter):
        return FoldCounterNode(src, fn, dst, replica)
    if isinstance(dst.state, GCounter):
        if not isinstance(src.state, GSet):
            raise TypeError(
                "fold of %s (a %s, which can remove) into gcounter %s: a G-Counter cannot "
                "take a removed element back; declare %s as a pncounter"
                % (src.name, src.cls.NAME, dst.name, dst.name)
            )
        return FoldCounterNode(src, fn, dst, replica)
    return FoldJoinNode(src, fn, dst, replica)


class Engine:
    """Delivers input changes to nodes until every inbox is empty.

    ``on_changed(var)`` is called for every derived variable whose state changed, so the
    store can notify readers and streams once the whole update has been applied.
    """

    def __init__(self, on_changed: Callable[[Var], None]) -> None:
        self.on_changed = on_changed
        self.queue: deque[Node] = deque()
        self.errors: list[DataflowError] = []

    def push(self, var: Var, change: SetChange) -> None:
        """``var``'s state already reflects ``change``; queue it for every dependent node."""
        if not change:
            return
        for node in var.dependents:
            if node.broken is None:
                node.inbox.append((var, change))
                if not node.scheduled:
                    node.scheduled = True
                    self.queue.append(node)

    def run(self) -> list[DataflowError]:
        queue = self.queue
        while queue:
            node = queue.popleft()
            node.scheduled = False
            while node.inbox and node.broken is None:
                src, ch = node.inbox.popleft()
                try:
                    out = node.step(src, ch)
                except Exception as exc:  # a user function failed: isolate, keep going
                    self.break_node(node, exc)
                    break
                if out:
                    self.on_changed(node.dst)
                    if isinstance(out, SetChange):
                        self.push(node.dst, out)
        errors, self.errors = self.errors, []
        return errors

    def break_node(self, node: Node, exc: Exception) -> None:
        err = DataflowError("%s failed: %s: %s" % (node.label(), type(exc).__name__, exc))
        err.__cause__ = exc
        self.errors.append(err)
        stack = [node]
        while stack:
            n = stack.pop()
            if n.broken is not None and n is not node:
                continue
            n.broken = err
            n.inbox.clear()
            n.dst.broken = err
            self.on_changed(n.dst)  # wake its readers: they must see the error
            stack.extend(n.dst.dependents)
