"""LocalNetwork: stores exchanging deltas in memory, with partitions, until sync exists.

It uses only what a real sync layer will use: ``Store.pending(since)`` to read what a store
produced, ``Store.bind(name, delta, origin=...)`` to apply what arrived, ``Store.ack`` to
let a store forget deltas every peer has, and ``Store.replicated()`` to bootstrap a new
peer with full states (deltas already acked are gone from the log, so a latecomer needs
them). Messages cross as bytes (``codec.dumps``), so every delivery is a fresh decoded
object, as on a wire.

A link is two directed queues. ``partition`` stops a link (nothing is taken from the
store or delivered; queued messages wait), ``heal`` restarts it: everything produced in
between is then shipped, which is how a real session resumes from its last ack.
``deliver(rng, duplicate)`` hands out one queued message at random and may keep a copy for
a second delivery, so tests can explore reordering and duplication; ``sync()`` delivers
until quiescent (a relay's forwarded deltas included) and acknowledges.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from lasp_edge.store import codec
from lasp_edge.store.core import Store


class _Link:
    def __init__(self, src: Store, dst: Store) -> None:
        self.src = src
        self.dst = dst
        self.cursor = src.last_seq
        self.up = True
        self.queue: deque[tuple[str, bytes, Any]] = deque()
        for name, state in src.replicated().items():  # bootstrap: full states once
            if not state.is_bottom():
                self.queue.append((name, codec.dumps(state), src.replica))


class LocalNetwork:
    """In-memory links between stores. With ``coalesce`` (default) the deltas a store
    produced since the last collection are joined per variable into one *delta group*
    before they are shipped, as a real sync layer batches them; without it every delta
    travels alone (more reordering for tests to explore)."""

    def __init__(self, *, coalesce: bool = True) -> None:
        self._links: dict[tuple[int, int], _Link] = {}
        self.coalesce = coalesce
        self.delivered = 0

    def connect(self, a: Store, b: Store) -> None:
        """Link two stores both ways (idempotent)."""
        if a is b:
            raise ValueError("cannot connect a store to itself")
        for x, y in ((a, b), (b, a)):
            if (id(x), id(y)) not in self._links:
                self._links[(id(x), id(y))] = _Link(x, y)

    def disconnect(self, a: Store, b: Store | None = None) -> None:
        """Remove the link a-b, or every link of ``a`` (a store that went away)."""
        for key, link in list(self._links.items()):
            ends = (link.src, link.dst)
            if a in ends and (b is None or b in ends):
                del self._links[key]

    def _select(self, a: Store | None, b: Store | None) -> list[_Link]:
        out = []
        for link in self._links.values():
            ends = {id(link.src), id(link.dst)}
            if (a is None or id(a) in ends) and (b is None or id(b) in ends):
                out.append(link)
        return out

    def partition(self, a: Store | None = None, b: Store | None = None) -> None:
        """Cut the link a-b, every link of a (b=None) or every link (no arguments)."""
        for link in self._select(a, b):
            link.up = False

    def heal(self, a: Store | None = None, b: Store | None = None) -> None:
        for link in self._select(a, b):
            link.up = True

    def collect(self) -> int:
        """Move newly produced deltas of every store onto its up links; returns how many."""
        n = 0
        for link in self._links.values():
            if not link.up:
                continue
            groups: dict[str, Any] = {}
            for p in link.src.pending(link.cursor):
                link.cursor = p.seq
                if p.origin == link.dst.replica:
                    continue  # do not echo a delta back to where it came from
                if not self.coalesce:
                    link.queue.append((p.name, codec.dumps(p.delta), link.src.replica))
                    n += 1
                elif p.name in groups:
                    groups[p.name].merge(p.delta)
                else:
                    groups[p.name] = p.delta.copy()
            for name, group in groups.items():
                link.queue.append((name, codec.dumps(group), link.src.replica))
                n += 1
        return n

    def in_flight(self) -> int:
        return sum(len(link.queue) for link in self._links.values() if link.up)

    def deliver(self, rng: random.Random | None = None, duplicate: float = 0.0) -> bool:
        """Deliver one queued message (the oldest, or a random one with ``rng``).

        With probability ``duplicate`` the message stays queued and will arrive again.
        Returns False when nothing can be delivered.
        """
        links = [link for link in self._links.values() if link.up and link.queue]
        if not links:
            return False
        if rng is None:
            link = links[0]
            msg = link.queue.popleft()
        else:
            link = rng.choice(links)
            i = rng.randrange(len(link.queue))
            msg = link.queue[i]
            if rng.random() >= duplicate:
                del link.queue[i]
        name, blob, origin = msg
        link.dst.bind(name, codec.loads(blob), origin=origin)
        self.delivered += 1
        return True

    def sync(self, max_rounds: int = 10_000) -> int:
        """Deliver until no store has anything new for an up link; then acknowledge."""
        total = 0
        for _ in range(max_rounds):
            self.collect()
            n = 0
            while self.deliver():
                n += 1
            total += n
            if n == 0 and self.collect() == 0:
                break
        self._ack()
        return total

    def _ack(self) -> None:
        """A store may forget what every one of its links has taken (queued copies are
        bytes owned by the link). A partitioned link holds its store's log back."""
        low: dict[int, tuple[Store, int]] = {}
        for link in self._links.values():
            store, cur = low.get(id(link.src), (link.src, link.cursor))
            low[id(link.src)] = (store, min(cur, link.cursor))
        for store, upto in low.values():
            if upto > 0:
                store.ack(upto)
