"""One variable of a Store: its lattice state plus everything attached to it.

Kinds, and what each means for sync and persistence:

==========  ==========================================  =========  ==========
kind        written by                                  shipped    persisted
==========  ==========================================  =========  ==========
source      ``update`` here, ``bind`` from elsewhere    yes        yes
dynamic     ``update``/``reset`` here only              never      yes
derived     its combinator only                         never      no (rebuilt)
global      fold_dynamic here, ``bind`` from elsewhere  yes        yes
==========  ==========================================  =========  ==========

A derived variable is a pure function of its inputs, so each replica computes its own from
its own inputs and nothing needs to travel; re-declaring the program after a restart
rebuilds it. A global variable's *replicated* state is a map of per-replica slots (see
``dynamic.py``); what queries and reads see is its *view*, the combination of the slots.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lasp_edge.crdts.base import Lattice

if TYPE_CHECKING:
    from lasp_edge.store.dataflow import Node
    from lasp_edge.store.dynamic import DynamicPublisher, GlobalView
    from lasp_edge.store.effects import Effect
    from lasp_edge.store.sets import Tracker

SOURCE = "source"
DYNAMIC = "dynamic"
DERIVED = "derived"
GLOBAL = "global"


class Var:
    def __init__(self, name: str, kind: str, state: Lattice) -> None:
        self.name = name
        self.kind = kind
        # Any: the portable CRDT classes are untyped and their mutators differ per type.
        self.state: Any = state
        self.cls: type[Lattice] = type(state)
        self.params: dict[str, Any] = state.params()
        self.producer: Node | None = None
        self.dependents: list[Node] = []
        self.tracker: Tracker | None = None
        self.view: GlobalView | None = None
        self.publisher: DynamicPublisher | None = None
        self.cond: threading.Condition | None = None
        self.streams: list[Callable[[Any], None]] = []
        self.waiters: list[Any] = []  # async readers (see Store.aread)
        self.effects: list[Effect] = []
        self.broken: Exception | None = None
        # persistence accounting (see Store._maybe_checkpoint)
        self.ck_seq = 0
        self.ck_bytes = 0
        self.jbytes = 0

    def exposed(self) -> Lattice:
        """What queries, reads, streams and effects see: the view of a global, else the state."""
        return self.view.state if self.view is not None else self.state

    @property
    def persisted(self) -> bool:
        return self.kind != DERIVED

    @property
    def shipped(self) -> bool:
        return self.kind in (SOURCE, GLOBAL)

    def describe(self) -> str:
        pairs = ", ".join("%s=%r" % kv for kv in sorted(self.params.items()))
        extra = "(%s)" % pairs if pairs else ""
        return "%s %s%s" % (self.kind, self.cls.NAME, extra)
