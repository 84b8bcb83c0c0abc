"""The one shape every lasp-edge CRDT has, and the checks shared by all of them.

Every type is a join-semilattice in the delta-state style of Almeida, Shoker and Baquero,
"Delta State Replicated Data Types" (JPDC 2018):

* ``T()`` is bottom (TopK and AWMap take parameters with defaults).
* A mutator changes the state in place and returns the *delta*: a ``T`` small enough to
  ship, such that ``old.join(delta) == new``. A mutator that changes nothing returns bottom.
* ``a.join(b)`` is the least upper bound as a new object; ``a.merge(b)`` joins in place and
  returns ``True`` iff ``a`` strictly grew (sync uses that to decide whether to forward).
* ``a <= b`` is the lattice order (``a.join(b) == b``); ``a == b`` compares states.
* ``to_wire()`` gives plain CBOR-able data in a canonical form (sorted, no empty entries), so
  equal states give equal bytes; ``T.from_wire(x)`` validates and raises ``ValueError``.

This module is portable: it runs unchanged on MicroPython, so it uses no ``abc``, ``typing``
or ``dataclasses``, and checks exact types with ``type(x) is int`` because MicroPython's
``bool`` is not an ``int`` subclass.
"""

from lasp_edge import cbor

try:
    from micropython import const
except ImportError:  # CPython: the identity (no lasp_edge._compat module on a device)
    from lasp_edge._compat import const

# Type checkers treat this name as True (there is no `typing` on devices). As a const() the
# MicroPython compiler drops the blocks it guards: no bytecode, and none of the names they
# mention interned in the device heap.
TYPE_CHECKING = const(0)

MAX_REPLICA_INT = 0x3FFFFFFF  # 2**30 - 1: stays a heap-free small int on 32-bit MicroPython
MAX_REPLICA_LEN = 32
MAX_UINT = 0xFFFFFFFFFFFFFFFF  # the largest count CBOR carries in one head


class Lattice:
    """Base class: shared operators on top of five per-type primitives.

    Subclasses implement ``copy``, ``merge``, ``leq``, ``_eq``, ``is_bottom``, ``value``,
    ``to_wire`` and ``from_wire``; everything else is derived here so the semantics of
    ``join``/``<=``/``==`` are identical across types.
    """

    TAG = 0
    NAME = ""
    MUTATORS: tuple = ()  # names of the methods that change state and return a delta

    if TYPE_CHECKING:
        # The per-type primitives (documented in the module header), declared for type
        # checkers only: every subclass defines them, and on a device each stub would be
        # a function object in the heap that nothing ever calls.
        def copy(self):
            raise NotImplementedError

        def merge(self, other) -> bool:
            raise NotImplementedError

        def leq(self, other) -> bool:
            raise NotImplementedError

        def _eq(self, other) -> bool:
            raise NotImplementedError

        def is_bottom(self) -> bool:
            raise NotImplementedError

        def value(self):
            raise NotImplementedError

        def to_wire(self):
            raise NotImplementedError

    def params(self):
        """Constructor keyword arguments that make a bottom compatible with this state."""
        return {}

    def bottom(self):
        """A fresh bottom with the same parameters (same k, same value type)."""
        return type(self)(**self.params())

    def join(self, other):
        self._check(other)
        out = self.copy()
        out.merge(other)
        return out

    def _check(self, other):
        if type(other) is not type(self):
            raise TypeError("cannot join %s with %s" % (type(self).__name__, type(other).__name__))

    def __le__(self, other):
        self._check(other)
        return self.leq(other)

    def __ge__(self, other):
        self._check(other)
        return other.leq(self)

    def __lt__(self, other):
        return self <= other and not self._eq(other)

    def __gt__(self, other):
        return self >= other and not self._eq(other)

    def __eq__(self, other):  # ``!=`` is its negation, on CPython and MicroPython alike
        return type(other) is type(self) and self._eq(other)

    __hash__ = None  # type: ignore[assignment]  # mutable: never a dict key

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.value())


def check_replica(r):
    """A replica id is a small non-negative int or a short non-empty str.

    Small ints keep dots and counters heap-free on MicroPython; short strs keep topics and
    wire entries small. Anything else is refused early, before it reaches the wire.
    """
    t = type(r)
    if (t is int and 0 <= r <= MAX_REPLICA_INT) or (t is str and 0 < len(r) <= MAX_REPLICA_LEN):
        return r
    raise ValueError("replica id must be an int in [0, 2**30) or a str of 1..32 chars: %r" % (r,))


def check_count(n):
    """Counter amounts are non-negative ints (a decrement is a separate G-Counter)."""
    if type(n) is not int:
        raise TypeError("amount must be an int, not %s" % type(n).__name__)
    if n < 0:
        raise ValueError("amount must be >= 0, got %d" % n)
    return n


def replica_rank(r):
    """Total order over replica ids of mixed kinds: every int before every str."""
    return (0, r) if type(r) is int else (1, r)


def canonical_key(x):
    """Sort key giving canonical CBOR order (length-first, then bytewise) for any value.

    Used wherever a collection is written out, so that equal states encode to equal bytes
    regardless of insertion order or of MicroPython's unordered dicts.
    """
    b = cbor.dumps(x)
    return (len(b), b)


def check_element(e):
    """Set elements and map keys must be hashable, CBOR-encodable and canonical.

    Allowed: None, int, str, bytes, and tuples of those (a tuple travels as a CBOR array and
    comes back as a tuple via ``element_from_wire``). Not bool or float: Python treats
    ``1 == True == 1.0`` (and ``0.0 == -0.0``) as one set element but CBOR encodes them
    differently, so the bytes of a set would depend on which spelling arrived first; and a
    NaN is never equal to itself, so it could never be found or removed again.
    """
    t = type(e)
    if t is tuple:
        for x in e:
            check_element(x)
    elif e is not None and t not in (int, str, bytes):
        raise ValueError("element must be None, int, str, bytes or a tuple of them: %r" % (e,))
    elif t is int and not -MAX_UINT - 1 <= e <= MAX_UINT:
        raise ValueError("integer element out of CBOR range: %r" % (e,))
    return e


def element_from_wire(x):
    """Decode an element: arrays become tuples again (lists are not hashable)."""
    if type(x) is list or type(x) is tuple:
        return tuple(element_from_wire(y) for y in x)
    return check_element(x)


def expect(cond, what):
    """Raise the one error ``from_wire`` promises, with a message naming what was wrong."""
    if not cond:
        raise ValueError("malformed wire form: " + what)


def sorted_elements(items):
    """Elements in canonical order (see ``canonical_key``)."""
    return sorted(items, key=canonical_key)
