"""The portable CRDT core: one module per type, all with the shape defined in ``base``.

Names resolve lazily (PEP 562 ``__getattr__``, which MicroPython supports too): importing
the package costs nothing until a type is used. See ``registry`` for why.
"""

import sys

try:
    from micropython import const
except ImportError:  # CPython: the identity (no lasp_edge._compat module on a device)
    from lasp_edge._compat import const
from lasp_edge.crdts.registry import all_types, by_name, by_tag, type_for

# Type checkers treat this name as True (there is no `typing` on devices). As a const() the
# MicroPython compiler drops the blocks it guards: no bytecode, and none of the names they
# mention interned in the device heap.
TYPE_CHECKING = const(0)

if TYPE_CHECKING:  # for type checkers and editors only; nothing is imported at run time
    from lasp_edge.crdts.awmap import AWMap
    from lasp_edge.crdts.awset import AWSet
    from lasp_edge.crdts.base import Lattice
    from lasp_edge.crdts.ewflag import EWFlag
    from lasp_edge.crdts.gcounter import GCounter
    from lasp_edge.crdts.gset import GSet
    from lasp_edge.crdts.lwwregister import LWWRegister
    from lasp_edge.crdts.maxregister import MaxRegister
    from lasp_edge.crdts.mvregister import MVRegister
    from lasp_edge.crdts.pncounter import PNCounter
    from lasp_edge.crdts.registry import BY_NAME, BY_TAG, TYPES
    from lasp_edge.crdts.topk import TopK
    from lasp_edge.crdts.twopset import TwoPSet


def submodule(package, name):
    """Import ``package.name``. MicroPython resolves ``from package import name`` through
    the package's ``__getattr__`` before it tries the submodule, so ours must do it."""
    full = package + "." + name
    try:
        __import__(full)
    except ImportError:
        raise AttributeError(name) from None
    return sys.modules[full]


def __getattr__(name):
    if name == "Lattice":
        from lasp_edge.crdts.base import Lattice

        return Lattice
    cls = by_name(name)
    if cls is not None:
        return cls
    if name in ("TYPES", "BY_TAG", "BY_NAME"):
        from lasp_edge.crdts import registry

        return getattr(registry, name)
    return submodule("lasp_edge.crdts", name)


# For star-imports, documentation and linters on CPython. A device never star-imports,
# and there the list would be a few hundred bytes of heap for as long as it runs.
if sys.implementation.name != "micropython":
    __all__ = [
        "AWMap",
        "AWSet",
        "BY_NAME",
        "BY_TAG",
        "EWFlag",
        "GCounter",
        "GSet",
        "LWWRegister",
        "Lattice",
        "MVRegister",
        "MaxRegister",
        "PNCounter",
        "TYPES",
        "TopK",
        "TwoPSet",
        "all_types",
        "by_name",
        "by_tag",
        "submodule",
        "type_for",
    ]
