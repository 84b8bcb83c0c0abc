"""enforce_once: a durable outbox that runs a side effect once when a threshold is met.

Theory of operation
-------------------
An effect (bill an advertiser, open a valve) lives outside the store, so "exactly once"
needs a record of how far it got, kept in the same SQLite file as the state:

``armed``      no row yet; the threshold is tested after every change of the variable.
``triggered``  written *in the same transaction* as the change that met the threshold, so
               a state that meets it and a missing trigger can never both be on disk.
``running``    committed just before the callback is called.
``done``       committed as soon as the callback returns.
``unknown``    a crash happened while ``running`` and the policy was ``on_crash="skip"``.

When the program re-registers the effect after a restart (same key), the row decides:

* ``done``: never run again.
* ``triggered``: the callback never started; run it now. Still exactly once.
* ``running``: the process died *during* the callback, so nobody can know whether the
  effect happened. This window cannot be closed by the store alone; the caller chooses:

  - ``on_crash="retry"`` (default): run it again. The effect is then at-least-once in this
    window, and exactly-once end to end if the receiver deduplicates by the effect's key
    (an idempotency key: pass ``effect.key`` as the invoice id).
  - ``on_crash="skip"``: mark ``unknown`` and do not run (at-most-once); the row stays
    visible in ``Store.effects()`` for a human or a reconciliation job.

A callback that *raises* is not a crash: the row goes back to ``triggered`` with the error
kept, and ``Store.retry_effects()`` (or the next restart) runs it again.

Without a path everything above holds within the process (an in-memory outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lasp_edge.crdts.base import Lattice

ARMED = "armed"
TRIGGERED = "triggered"
RUNNING = "running"
DONE = "done"
UNKNOWN = "unknown"

ON_CRASH = ("retry", "skip")


class Effect:
    """Handle returned by ``Store.enforce_once``; ``status`` follows the table above."""

    def __init__(
        self,
        key: str,
        name: str,
        check: Callable[[Lattice], bool],
        callback: Callable[[Any], Any],
        on_crash: str,
    ) -> None:
        self.key = key
        self.name = name
        self.check = check
        self.callback = callback
        self.on_crash = on_crash
        self.status = ARMED
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        return "Effect(key=%r, name=%r, status=%r)" % (self.key, self.name, self.status)
