"""lasp-edge: Lasp-style lattice processing for offline-first device fleets.

This module is portable (it is flashed to devices): it imports only the CRDT core, so
``from lasp_edge import GCounter, AWSet`` works the same on MicroPython and CPython.
CPython-only parts (the Store, dataflow, persistence, CLI) live in their own modules and
are never imported from here on a device.
"""

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
    type_for,
)

__version__ = "0.1.0"

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
    "TopK",
    "TwoPSet",
    "type_for",
]
