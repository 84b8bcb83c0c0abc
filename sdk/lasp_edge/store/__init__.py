"""The Lasp programming model on CPython: ``Store``, its dataflow, and an in-memory network.

CPython-only (threads, asyncio, sqlite3): never imported by device code. Modules:

``core``         Store: declare/update/query/read/stream/bind, transactions, sync interface
``mutators``     the rule that puts the store's replica id into mutator calls
``thresholds``   inflationary-read thresholds (states, ints, cardinalities, predicates)
``sets``         element-level changes of set variables, found from deltas
``dataflow``     map/filter/union/intersection/product/fold nodes, provenance, the engine
``jointree``     O(log n) join of contributions for folds that must survive removals
``dynamic``      dynamic variables and fold_dynamic (per-replica slots, global view)
``window``       SlidingWindow: per-epoch mergeable count/sum/min/max
``effects``      enforce_once and its durable outbox
``persistence``  SQLite layout, journal and checkpoints, durability argument
``network``      LocalNetwork: connect/partition/heal stores in memory
"""

from lasp_edge.store.core import PendingDelta, Store, Subscription
from lasp_edge.store.effects import Effect
from lasp_edge.store.errors import (
    CycleError,
    DataflowError,
    DerivedVariableError,
    StoreClosedError,
    StoreError,
    UnknownOperationError,
    UnknownVariableError,
)
from lasp_edge.store.network import LocalNetwork
from lasp_edge.store.window import SlidingWindow

__all__ = [
    "CycleError",
    "DataflowError",
    "DerivedVariableError",
    "Effect",
    "LocalNetwork",
    "PendingDelta",
    "SlidingWindow",
    "Store",
    "StoreClosedError",
    "StoreError",
    "Subscription",
    "UnknownOperationError",
    "UnknownVariableError",
]
