"""The update-argument rule: where a Store puts its own replica id in a mutator call.

The portable types disagree on where the replica goes (``GCounter.increment(replica, n)``,
``LWWRegister.set(value, timestamp, replica)``, ``GSet.add(e)`` takes none). Rather than a
hand-kept table that drifts from the types, the rule is read off the mutator itself:

    The store inserts its replica id at the position of the mutator's parameter named
    ``replica``, if it has one; the caller passes every other argument, in order.
    For a map's ``update(key, op, *args)`` the rule applies again to the nested op.

So ``update("clicks", "increment")`` calls ``increment(me)``; ``update("ads", "add", "ad1")``
calls ``add(me, "ad1")``; ``update("reg", "set", "v", ts)`` calls ``set("v", ts, me)``;
``update("impr", "update", "ad1", "increment")`` calls ``update("ad1", "increment", me)``.
A caller never passes a replica id: a store only ever writes as itself.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from lasp_edge.crdts.awmap import AWMap
from lasp_edge.crdts.base import Lattice
from lasp_edge.store.errors import UnknownOperationError


@cache
def _signature(cls: Any, op: str) -> tuple[tuple[str, ...], int | None, int]:
    """(caller-visible parameter names, replica position, count of required ones)."""
    params = list(inspect.signature(getattr(cls, op)).parameters.values())[1:]  # drop self
    names = []
    pos = None
    required = 0
    for i, p in enumerate(params):
        if p.name == "replica":
            pos = i
            continue
        if p.kind is p.VAR_POSITIONAL:
            names.append("*" + p.name)
            continue
        if p.default is p.empty:
            required += 1
            names.append(p.name)
        else:
            names.append("%s=%r" % (p.name, p.default))
    return tuple(names), pos, required


def usage(cls: Any, op: str) -> str:
    """``increment(n=1)``: how a caller of ``Store.update`` spells this operation."""
    return "%s(%s)" % (op, ", ".join(_signature(cls, op)[0]))


def _check_op(cls: Any, op: Any, what: str) -> None:
    if op not in cls.MUTATORS:
        valid = ", ".join(usage(cls, m) for m in cls.MUTATORS)
        raise UnknownOperationError(
            "%s has no operation %r; valid: %s" % (what, op, valid or "(none)")
        )


def full_args(state: Lattice, op: str, args: tuple[Any, ...], replica: Any) -> tuple[Any, ...]:
    """The arguments for ``getattr(state, op)`` with ``replica`` inserted by the rule above."""
    cls = type(state)
    _check_op(cls, op, "%s (%s)" % (cls.NAME, cls.__name__))
    if isinstance(state, AWMap) and op == "update":
        if len(args) < 2:
            raise TypeError("awmap update takes (key, op, *args); got %d argument(s)" % len(args))
        vtype = state.vtype
        key, nested_op = args[0], args[1]
        _check_op(vtype, nested_op, "awmap value type %s" % vtype.NAME)
        return (key, nested_op) + _insert(vtype, nested_op, args[2:], replica)
    return _insert(cls, op, args, replica)


def _insert(cls: Any, op: str, args: tuple[Any, ...], replica: Any) -> tuple[Any, ...]:
    names, pos, required = _signature(cls, op)
    if len(args) < required or (len(args) > len(names) and not any(n[0] == "*" for n in names)):
        raise TypeError(
            "%s.%s got %d argument(s)%s"
            % (
                cls.NAME,
                usage(cls, op),
                len(args),
                "; the store supplies the replica id itself" if pos is not None else "",
            )
        )
    if pos is None:
        return tuple(args)
    return tuple(args[:pos]) + (replica,) + tuple(args[pos:])
