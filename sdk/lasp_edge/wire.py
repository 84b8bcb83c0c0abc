"""The typed-state envelope: how one CRDT state or delta becomes bytes and back.

A standalone state is the CBOR array ``[version, tag, payload]`` where ``payload`` is the
type's ``to_wire()`` form (docs/PROTOCOL.md lists every one). Inside protocol messages the
version travels once in the message header, so states are embedded as ``[tag, payload]``
(``to_typed``/``from_typed``).

Decoding raises only ``ValueError`` (``cbor.CBORDecodeError`` is one), whatever the bytes.
"""

from lasp_edge import cbor
from lasp_edge.crdts.registry import by_tag

VERSION = 1


def to_typed(state):
    return [state.TAG, state.to_wire()]


def from_typed(obj):
    if type(obj) is not list or len(obj) != 2 or type(obj[0]) is not int:
        raise ValueError("malformed typed state: want [tag, payload]")
    t = by_tag(obj[0])
    if t is None:
        raise ValueError("unknown type tag %r" % (obj[0],))
    try:
        return t.from_wire(obj[1])
    except TypeError as e:  # a payload of the wrong shape deep inside a nested type
        raise ValueError("malformed wire form: %s" % e) from None


def dumps(state):
    """Canonical bytes of a state: equal states give equal bytes on every platform."""
    return cbor.dumps([VERSION, state.TAG, state.to_wire()])


def loads(data):
    obj = cbor.loads(data)
    if type(obj) is not list or len(obj) != 3:
        raise ValueError("malformed state: want [version, tag, payload]")
    if obj[0] != VERSION:
        raise ValueError("unsupported wire version %r (this build speaks %d)" % (obj[0], VERSION))
    return from_typed(obj[1:])
