"""lasp-edge: Lasp-style lattice processing for offline-first device fleets.

This module is portable (it is flashed to devices): ``from lasp_edge import GCounter, AWSet``
works the same on MicroPython and CPython. Names resolve lazily, so a device loads only the
CRDT types it uses. CPython-only parts (``Store``, dataflow, persistence, CLI) live in their
own modules; ``Store`` is re-exported here on CPython only.
"""

import sys

try:
    from micropython import const
except ImportError:  # CPython: the identity (no lasp_edge._compat module on a device)
    from lasp_edge._compat import const
from lasp_edge.crdts.registry import type_for

# Type checkers treat this name as True (there is no `typing` on devices). As a const() the
# MicroPython compiler drops the blocks it guards: no bytecode, and none of the names they
# mention interned in the device heap.
TYPE_CHECKING = const(0)

if TYPE_CHECKING:  # for type checkers and editors only; nothing is imported at run time
    from lasp_edge.crdts import (
        TYPES,
        AWMap,
        AWSet,
        EWFlag,
        GCounter,
        GSet,
        Lattice,
        LWWRegister,
        MaxRegister,
        MVRegister,
        PNCounter,
        TopK,
        TwoPSet,
    )
    from lasp_edge.store import Store

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Store" and sys.implementation.name != "micropython":
        from lasp_edge.store import Store

        return Store
    from lasp_edge import crdts

    if name[:1].isupper():
        return getattr(crdts, name)
    return crdts.submodule("lasp_edge", name)


# For star-imports, documentation and linters on CPython. A device never star-imports,
# and there the list would be a few hundred bytes of heap for as long as it runs.
if sys.implementation.name != "micropython":
    __all__ = [
        "TYPES",
        "AWMap",
        "AWSet",
        "EWFlag",
        "GCounter",
        "GSet",
        "LWWRegister",
        "Lattice",
        "MVRegister",
        "MaxRegister",
        "PNCounter",
        "Store",
        "TopK",
        "TwoPSet",
        "type_for",
    ]
