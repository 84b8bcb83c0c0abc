"""Sync protocol messages: the four kinds, their exact CBOR shape, and bounded decoding.

Every message is one canonical CBOR array whose first two items are the protocol version
and the kind (docs/PROTOCOL.md §4 gives the bytes):

    BIRTH  [1, 1, sender, epoch, holds, interests, recv_to, ask]
    DEATH  [1, 2, sender, epoch]
    DELTA  [1, 3, sender, epoch, seq_from, seq_to, part, nparts, full, {var: [tag, payload]}]
    ACK    [1, 4, sender, epoch, acked_epoch, recv_to]

``epoch`` is always the *sender's* boot epoch: a receiver drops anything from an older
session of that sender. An ACK also names the epoch of the session it acknowledges
(``acked_epoch``, the receiver's own), so a node ignores acks meant for its previous boot.

Decoding validates every field and raises ``ProtocolError`` (a ``ValueError``) for anything
else, so adapters need one ``except`` to count, log and drop bad input.
"""

from lasp_edge import cbor, wire
from lasp_edge.crdts.base import check_replica
from lasp_edge.crdts.registry import is_tag

VERSION = 1
BIRTH = 1
DEATH = 2
DELTA = 3
ACK = 4

MAX_VARS = 256
MAX_VAR_NAME = 64
MAX_SEQ = (1 << 53) - 1  # sequence numbers and epochs stay exact everywhere
KIND_NAMES = {BIRTH: "birth", DEATH: "death", DELTA: "delta", ACK: "ack"}


class ProtocolError(ValueError):
    """A message that is not exactly what docs/PROTOCOL.md allows."""


def _need(cond, what, *args):
    """Raise ProtocolError(``what % args``) unless ``cond``. The text is formatted only on
    failure: every field of every message passes here, and an eagerly built string is an
    allocation per field (heap churn on a device)."""
    if not cond:
        raise ProtocolError(what % args if args else what)


def _uint(x, what):
    _need(type(x) is int and 0 <= x <= MAX_SEQ, "%s must be an unsigned int < 2**53", what)
    return x


def check_var(name):
    _need(
        type(name) is str and 0 < len(name) <= MAX_VAR_NAME,
        "variable names are str of 1..%d chars",
        MAX_VAR_NAME,
    )
    return name


class Message:
    """A decoded message; which attributes are set depends on ``kind``.

    The immutable defaults are class attributes: an instance stores only what its kind
    sets, so its attribute table stays small (a device decodes one per received message,
    and growing a table of 14 slots is an allocation a nearly full heap may not have).
    """

    interests = None  # BIRTH: list of var names, or None for "everything"
    recv_to = 0  # BIRTH, ACK
    acked_epoch = 0  # ACK
    ask = False  # BIRTH: please answer with your own birth
    seq_from = 0  # DELTA
    seq_to = 0
    part = 0
    nparts = 1
    full = False

    def __init__(self, kind, sender, epoch):
        self.kind = kind
        self.sender = sender
        self.epoch = epoch
        self.holds = {}  # BIRTH: var -> tag
        self.deltas = {}  # DELTA: var -> CRDT state

    def __repr__(self):
        return "<%s from %r epoch %d>" % (KIND_NAMES.get(self.kind, "?"), self.sender, self.epoch)


def birth(sender, epoch, holds, interests, recv_to, ask):
    """``holds``: {var: tag}; ``interests``: var names wanted, or None for all."""
    return cbor.dumps(
        [
            VERSION,
            BIRTH,
            sender,
            epoch,
            holds,
            None if interests is None else sorted(interests),
            recv_to,
            bool(ask),
        ]
    )


def death(sender, epoch):
    return cbor.dumps([VERSION, DEATH, sender, epoch])


def delta(sender, epoch, seq_from, seq_to, part, nparts, full, typed):
    """``typed``: {var: [tag, payload]} already in wire form (see ``wire.to_typed``)."""
    return cbor.dumps(
        [VERSION, DELTA, sender, epoch, seq_from, seq_to, part, nparts, bool(full), typed]
    )


def ack(sender, epoch, acked_epoch, recv_to):
    return cbor.dumps([VERSION, ACK, sender, epoch, acked_epoch, recv_to])


_LENGTHS = {BIRTH: 8, DEATH: 4, DELTA: 10, ACK: 6}


def decode(data, max_bytes=1 << 20):
    """Bytes -> ``Message``; raises ``ProtocolError`` for anything not in the spec."""
    _need(
        len(data) <= max_bytes,
        "message of %d bytes exceeds the %d-byte limit",
        len(data),
        max_bytes,
    )
    try:
        obj = cbor.loads(data)
    except ValueError as e:
        raise ProtocolError("not canonical-subset CBOR: %s" % e) from None
    _need(type(obj) is list and len(obj) >= 4, "a message is an array [version, kind, ...]")
    _need(obj[0] == VERSION, "unsupported protocol version %r", obj[0])
    kind = obj[1]
    _need(_LENGTHS.get(kind) == len(obj), "unknown kind or wrong length")
    try:
        check_replica(obj[2])
    except ValueError as e:
        raise ProtocolError(str(e)) from None
    m = Message(kind, obj[2], _uint(obj[3], "epoch"))
    if kind == BIRTH:
        holds, interests = obj[4], obj[5]
        _need(type(holds) is dict and len(holds) <= MAX_VARS, "holds is a map var -> tag")
        for name, tag in holds.items():
            check_var(name)
            _need(is_tag(tag), "unknown type tag in holds")  # known, not imported
        if interests is not None:
            _need(type(interests) is list and len(interests) <= MAX_VARS, "interests is a list")
            for name in interests:
                check_var(name)
        _need(type(obj[7]) is bool, "ask is a bool")
        m.holds, m.interests = holds, interests
        m.recv_to, m.ask = _uint(obj[6], "recv_to"), obj[7]
    elif kind == DELTA:
        m.seq_from = _uint(obj[4], "seq_from")
        m.seq_to = _uint(obj[5], "seq_to")
        m.part = _uint(obj[6], "part")
        m.nparts = _uint(obj[7], "nparts")
        _need(1 <= m.seq_from <= m.seq_to, "seq_from <= seq_to, both >= 1")
        _need(m.part < m.nparts <= 65535, "part < nparts <= 65535")
        _need(type(obj[8]) is bool, "full is a bool")
        m.full = obj[8]
        _need(type(obj[9]) is dict and len(obj[9]) <= MAX_VARS, "deltas is a map var -> state")
        for name, typed in obj[9].items():
            check_var(name)
            try:
                m.deltas[name] = wire.from_typed(typed)
            except ValueError as e:
                raise ProtocolError("variable %r: %s" % (name, e)) from None
    elif kind == ACK:
        m.acked_epoch = _uint(obj[4], "acked_epoch")
        m.recv_to = _uint(obj[5], "recv_to")
    return m
