"""Type tags and short names: how a state says what it is, on the wire and in ``declare``.

Tags are small (< 24) so they cost one CBOR byte. They are part of the wire contract
(docs/PROTOCOL.md): never renumber, only append.
"""

from lasp_edge.crdts.awmap import AWMap
from lasp_edge.crdts.awset import AWSet
from lasp_edge.crdts.ewflag import EWFlag
from lasp_edge.crdts.gcounter import GCounter
from lasp_edge.crdts.gset import GSet
from lasp_edge.crdts.lwwregister import LWWRegister
from lasp_edge.crdts.maxregister import MaxRegister
from lasp_edge.crdts.mvregister import MVRegister
from lasp_edge.crdts.pncounter import PNCounter
from lasp_edge.crdts.topk import TopK
from lasp_edge.crdts.twopset import TwoPSet

TYPES = (
    GCounter,
    PNCounter,
    GSet,
    TwoPSet,
    AWSet,
    LWWRegister,
    MVRegister,
    MaxRegister,
    EWFlag,
    TopK,
    AWMap,
)
BY_TAG = {}
BY_NAME = {}
for _t in TYPES:
    BY_TAG[_t.TAG] = _t
    BY_NAME[_t.NAME] = _t


def type_for(key):
    """A CRDT class from a class, a tag (int) or a short name (str, case-insensitive)."""
    if key in TYPES:
        return key
    t = BY_TAG.get(key) if type(key) is int else BY_NAME.get(str(key).lower())
    if t is None:
        raise ValueError("unknown CRDT type %r; valid: %s" % (key, ", ".join(sorted(BY_NAME))))
    return t
