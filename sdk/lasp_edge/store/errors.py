"""The exceptions a Store raises, each carrying a message that says what would have worked.

They subclass the builtin a caller would naturally catch (``KeyError`` for an unknown
variable, ``ValueError`` for a bad operation or a cycle, ``TypeError`` for a mismatched
state), so code written against plain Python semantics keeps working.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by :mod:`lasp_edge.store`."""


class UnknownVariableError(StoreError, KeyError):
    """``name`` is not declared in this store; the message lists the declared ones."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else "unknown variable"


class UnknownOperationError(StoreError, ValueError):
    """The variable's type has no such mutator; the message lists the valid ones."""


class CycleError(StoreError, ValueError):
    """A combinator would make a variable depend on itself."""


class DerivedVariableError(StoreError, ValueError):
    """A derived variable (or a fold_dynamic global) is written only by its combinator."""


class DataflowError(StoreError, RuntimeError):
    """A user function (map/filter/fold) raised; the variables it feeds are now stale.

    The input change that triggered it *was* applied and committed (it is a CRDT fact that
    other replicas will also see); the derived variable downstream could not follow it, so it
    and everything derived from it raise this error on query/read until the store is
    reopened and the program re-declared with a fixed function.
    """


class StoreClosedError(StoreError, RuntimeError):
    """The store was closed (or poisoned by an I/O failure) and must be reopened."""
