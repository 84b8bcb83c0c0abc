"""Type names and bytes for every state a Store holds, registered or store-local.

The portable registry (``lasp_edge.crdts.registry``) owns the wire tags. The store adds
types that only exist on CPython (today: :class:`SlidingWindow`); those have no tag, so
they travel and persist as ``[version, NAME, payload]`` instead of ``[version, TAG,
payload]``. A decoder tells them apart by the type of the second item (int tag vs. str
name). Registered types keep the canonical bytes of ``lasp_edge.wire`` unchanged.
"""

from __future__ import annotations

from typing import Any

from lasp_edge import cbor, wire
from lasp_edge.crdts.base import Lattice
from lasp_edge.crdts.registry import BY_NAME, type_for
from lasp_edge.store.window import SlidingWindow

LOCAL_TYPES: dict[str, Any] = {SlidingWindow.NAME: SlidingWindow}


def resolve_type(key: Any) -> type[Lattice]:
    """A CRDT class from a class, a registered tag or name, or a store-local name."""
    if isinstance(key, type) and key in LOCAL_TYPES.values():
        return key
    if isinstance(key, str) and key.lower() in LOCAL_TYPES:
        return LOCAL_TYPES[key.lower()]
    try:
        return type_for(key)
    except ValueError:
        valid = sorted(set(BY_NAME) | set(LOCAL_TYPES))
        raise ValueError("unknown CRDT type %r; valid: %s" % (key, ", ".join(valid))) from None


def is_local(cls: type[Lattice]) -> bool:
    return cls.NAME in LOCAL_TYPES and LOCAL_TYPES[cls.NAME] is cls


def to_typed(state: Lattice) -> list[Any]:
    """``[tag_or_name, payload]``: a state as plain data (for nesting inside other states)."""
    if is_local(type(state)):
        return [state.NAME, state.to_wire()]
    return wire.to_typed(state)


def from_typed(obj: Any) -> Lattice:
    if type(obj) is list and len(obj) == 2 and type(obj[0]) is str:
        cls = LOCAL_TYPES.get(obj[0])
        if cls is None:
            raise ValueError("unknown store-local type %r" % (obj[0],))
        return cls.from_wire(obj[1])
    return wire.from_typed(obj)


def dumps(state: Lattice) -> bytes:
    """Bytes of a state or delta (canonical for registered types: ``wire.dumps``)."""
    if is_local(type(state)):
        return cbor.dumps([wire.VERSION, state.NAME, state.to_wire()])
    return wire.dumps(state)


def loads(data: bytes) -> Lattice:
    obj = cbor.loads(data)
    if type(obj) is list and len(obj) == 3 and type(obj[1]) is str:
        if obj[0] != wire.VERSION:
            raise ValueError("unsupported wire version %r" % (obj[0],))
        return from_typed(obj[1:])
    return wire.loads(data)


def dumps_params(params: dict[str, Any]) -> bytes:
    return cbor.dumps(params)


def loads_params(data: bytes) -> dict[str, Any]:
    obj = cbor.loads(data)
    if type(obj) is not dict:
        raise ValueError("malformed parameters")
    return obj
