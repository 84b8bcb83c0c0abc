"""Splitting one large delta into several smaller ones whose join is the original.

A device's MQTT payloads should stay under about 1 KB, but a delta after a long offline
period (say, many ad counters) can be larger. Any decomposition ``d = d1 ⊔ d2 ⊔ ...`` is a
valid way to ship ``d``, because the receiver joins whatever arrives. The *keyed* types
split cleanly by key: GCounter by slot, GSet by element, TopK by entry, AWMap by key, and
PN/TwoP by their halves. Causal types (AWSet, MVRegister, EWFlag) are not split: a piece of
their causal context without the matching dots would delete data at the receiver. They are
sent whole, possibly above the soft limit.
"""

from lasp_edge import cbor

try:
    from micropython import const
except ImportError:  # CPython: the identity (no lasp_edge._compat module on a device)
    from lasp_edge._compat import const

# Wire tags (crdts/registry.py), as const()s: MicroPython inlines them and keeps no globals.
_GCOUNTER = const(1)
_PNCOUNTER = const(2)
_GSET = const(3)
_TWOPSET = const(4)
_TOPK = const(10)
_AWMAP = const(11)


def _chunks(items, budget):
    """Greedy packing of (item, size) pairs into lists of at most ``budget`` bytes."""
    out: list = []
    cur: list = []
    used = 0
    for item, size in items:
        if cur and used + size > budget:
            out.append(cur)
            cur, used = [], 0
        cur.append(item)
        used += size
    if cur:
        out.append(cur)
    return out


def _split_map(d, budget):
    items = [((k, v), len(cbor.dumps(k)) + len(cbor.dumps(v))) for k, v in d.items()]
    return [dict(c) for c in _chunks(items, budget)]


def _split_list(xs, budget, width=1):
    groups = [xs[i : i + width] for i in range(0, len(xs), width)]
    items = [(g, len(cbor.dumps(g)) - 1) for g in groups]
    return [[x for g in c for x in g] for c in _chunks(items, budget)]


def split_payload(tag, payload, budget):
    """Pieces of a ``to_wire`` payload, each about ``budget`` bytes or less, as payloads."""
    if tag == _GCOUNTER:
        return _split_map(payload, budget) or [payload]
    if tag == _GSET:
        return _split_list(payload, budget) or [payload]
    if tag in (_PNCOUNTER, _TWOPSET):
        empty: object = {} if tag == _PNCOUNTER else []
        sub = _GCOUNTER if tag == _PNCOUNTER else _GSET
        out = [[p, empty] for p in split_payload(sub, payload[0], budget) if p]
        out += [[empty, n] for n in split_payload(sub, payload[1], budget) if n]
        return out or [payload]
    if tag == _TOPK:
        return [[payload[0], c] for c in _split_list(payload[1], budget, 2)] or [payload]
    if tag == _AWMAP:
        vtag, vparams, entries, tombs = payload
        out = [[vtag, vparams, c, {}] for c in _split_map(entries, budget)]
        out += [[vtag, vparams, {}, c] for c in _split_map(tombs, budget)]
        return out or [payload]
    return [payload]
