"""The portable CRDT core: one module per type, all with the shape defined in ``base``."""

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
from lasp_edge.crdts.registry import BY_NAME, BY_TAG, TYPES, type_for
from lasp_edge.crdts.topk import TopK
from lasp_edge.crdts.twopset import TwoPSet

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
    "type_for",
]
