"""The loop shared by the gateway and the aggregator: bytes in, durable, acks and deltas out.

Theory of operation. A service owns one sans-IO ``Node``, one ``NodeDB`` and one or more
``MqttLink``s, driven by one thread (``LinkLoop``): it reads every MQTT packet that
arrived (paho's callbacks only *enqueue* messages and connection changes), then, per batch:

1. ``receive`` every queued message (up to ``max_batch``), with the sender taken from the
   topic (``peer=``: a message claiming another sender is rejected by the node);
2. ``absorb``: the subclass moves merged data where it belongs (the aggregator binds it
   into its Lasp ``Store``) and brings local changes into the node;
3. ``NodeDB.save``: *one* SQLite transaction with everything the batch changed;
4. only then ``commit`` the batch's tokens, which queues the ACKs (ack after durable): one
   ACK per sender and session per batch, however many of its messages the batch held,
   because an ACK is cumulative (it names the sender's ``recv_to`` at commit time, so the
   ACKs of two messages of one batch would be the same bytes);
5. ``tick`` (deltas due, resends, hellos) and publish what the node wants sent.

Because step 3 precedes step 5, nothing leaves that is not on disk: a ``kill -9`` at any
point loses only unacknowledged data, which its senders still hold and resend. Batching is
what makes durability cheap: one fsync covers every message that arrived meanwhile.
Then the loop writes what the batch published (paho queued it) and waits for the sockets
again. Reading, processing and publishing on one thread is what keeps the CPU per message
low: no queue hand-off and thread wake-up per message, no wake-up byte per publish (what
paho's own network thread needs), and a batch is whatever arrived, up to ``max_batch``
packets per link and turn (``mqtt_link.py``). With group commit (``commit_delay_s``, the
gateway's ``--commit-delay-ms``) a batch that is still small waits a few milliseconds after
its first message for more, because each commit costs an fsync and flash writes however
little it holds; it never waits once 64 messages are queued. ACKs that a finished fsync
releases leave at once, in a turn of their own that does not cut the gathering short
(``_on_synced``).

The fsync off the loop (``NodeDB(fsync_apart=True)``, what the gateway uses with
``synchronous="full"``). The COMMIT of step 3 then survives ``kill -9`` but not yet a
power loss; a ``WalSyncer`` thread fsyncs the WAL after it and reports back through the
inbox. Everything a turn would send (its ACKs, births, deltas: all name marks as of its
save) is *held*, tagged with that save's number, and leaves only once a sync that began
after that save returned: the ACKs still follow the fsync, exactly as with FULL. What
changes is that the service thread merges and commits the next batch while the disk
syncs, instead of waiting (on a 2-core box that was a quarter of the ingest rate), and
one fsync covers every commit made while the previous one ran.

Bad input never stops the loop: the node rejects what does not parse or is not allowed
(``rejected`` event), the service counts it per sender, logs the reason (rate-limited) and
drops it. An exception escaping a step (a bug, a full disk) stops the service rather than
letting memory drift from disk: restart it and the node resumes from its last commit.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from lasp_edge.sync import EV_ACKED, EV_BIRTH, EV_DEATH, EV_MERGED, EV_REJECTED, Node
from lasp_gateway.mqtt_link import LinkLoop
from lasp_gateway.nodedb import NodeDB

log = logging.getLogger("lasp_gateway")

MAX_WAIT_S = 0.1  # the loop wakes at least this often (link changes, periodic work)
MAX_SENDERS = 10_000  # counters kept for at most this many distinct senders
STATS_SAVE_MS = 10_000  # last-seen times are persisted this often (rejects at once)
# Under load, the node's timers run at most this often: ``tick`` walks every peer (for a
# device that wants nothing that changed, a few dict lookups). Acks and births never wait
# for it; only deltas and resends do, and their periods are in seconds.
TICK_MS = 50
# A batch that only merged device DELTAs may be persisted as the messages themselves
# (``NodeDB.journal_inputs``) for at most this long and this many messages since the last
# full save: what a restart replays is bounded by them.
JOURNAL_MS = 2000
JOURNAL_MAX = 10_000
# _LAZY_LOG. What only moves the log without adding to it, segments sealed by a send and
# segments released by an ACK (with the peer's ``acked`` mark), reaches the disk with the
# next full save, not at once: a batch is journaled all the same (ACKs are not journaled,
# their effect is not replayed). A restart in between finds those segments open or still
# there and a peer's mark older, so it resends data the peer may hold already, which join
# makes harmless, and the peer's BIRTH on reconnecting moves the mark up again. Nothing
# received is affected: that is in the variables, the journal and the devices' marks. It
# saves a full save (hundreds of rows with a fleet) at every forward and every ACK of it.

# Group commit (``commit_delay_s``) waits for company only until this many messages are
# queued: under load batches fill at once and nothing waits; at a moderate rate the delay
# decides.
GROUP_COMMIT_BATCH = 64
DELTA_KIND = 3  # byte 2 of a (canonical) DELTA message: [1, 3, ...]


class WalSyncer:
    """The thread that makes commits durable (``NodeDB.sync_wal``) behind the service loop.

    ``request(n)`` says save ``n`` is committed; the thread fsyncs (once for every request
    made while it was busy) and calls ``on_synced(n)`` with the highest save the fsync
    covers, or ``on_error(exc)`` if it failed (the service then stops: fail-stop).
    """

    def __init__(
        self,
        db: NodeDB,
        on_synced: Callable[[int], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.db = db
        self.on_synced = on_synced
        self.on_error = on_error
        self._cond = threading.Condition()
        self._wanted = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lasp-fsync", daemon=True)
        self._thread.start()

    def request(self, n: int) -> None:
        with self._cond:
            self._wanted = n
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(10)

    def _run(self) -> None:
        done = 0
        while True:
            with self._cond:
                while self._wanted == done and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                n = self._wanted  # read before the fsync: it covers this save and earlier
            try:
                self.db.sync_wal()
            except BaseException as exc:
                self.on_error(exc)
                return
            done = n
            self.on_synced(n)


class SenderStats:
    """Per-sender counters for the HTTP API: survives restarts through ``NodeDB``."""

    __slots__ = ("messages", "rejected", "last_reason", "seen_ms", "logged")

    def __init__(self, rejected: int = 0, last_reason: str | None = None, seen_ms: Any = None):
        self.messages = 0
        self.rejected = rejected
        self.last_reason = last_reason
        self.seen_ms = seen_ms  # wall clock, ms since the Unix epoch
        self.logged = 0

    def row(self) -> tuple[Any, ...]:
        return (self.rejected, self.last_reason, self.seen_ms)


def _join_into(acc: dict[str, Any], deltas: dict[str, Any]) -> None:
    """Join ``deltas`` (var -> delta, not to be modified) into ``acc`` (var -> own copy)."""
    for name, d in deltas.items():
        mine = acc.get(name)
        if mine is None:
            acc[name] = d.copy()
        else:
            mine.merge(d)


def wall_ms() -> int:
    return int(time.time() * 1000)


class SyncService:
    """Base of ``Gateway`` and ``Aggregator``: see the module header for the loop."""

    # True when the node's log is appended to only by ``receive`` (origin: the sender)
    # and by local updates (origin None), so a save need compare only those origins'
    # open segments (``NodeDB.save(log_origins=...)``). A subclass binding data with
    # other origins (the aggregator's program) leaves it False.
    log_origins_are_senders = False

    def __init__(self, node: Node, db: NodeDB, max_batch: int = 1000) -> None:
        self.node = node
        self.db = db
        self.max_batch = max_batch
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.lock = threading.RLock()  # the node and counters; readers: the HTTP API
        self.stats: dict[Any, SenderStats] = {
            pid: SenderStats(*row) for pid, row in db.stored_stats().items()
        }
        self._dirty_stats: set[Any] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._stats_saved = 0
        self._last_tick = -TICK_MS
        self._log_moved = True  # the first save compares the whole log
        self.failed: BaseException | None = None
        self.batches = 0
        self.received = 0
        self.bytes_in = 0  # payload bytes received (topic and MQTT framing not counted)
        self.bytes_out = 0
        self.deltas = 0  # delta messages merged (a split message counts once per part)
        self.rejected_total = 0
        self.acks_sent = 0
        # Saves counted, and the last one known durable (fsync_apart): what a turn sends
        # waits in ``_held`` until the save it follows is durable.
        self._saved = 0
        self._synced = 0
        self._durable = 0  # the last save the fsync thread reported (that thread writes it)
        self._held: collections.deque[tuple[int, list[tuple[Any, bytes]]]] = collections.deque()
        self._syncer: Any = None  # a WalSyncer (or a test's stand-in)
        self._loop: LinkLoop | None = None  # drives the links' sockets (start)
        self.on_batch: Callable[[], None] | None = None  # tests: called after each batch
        self._full_saved_ms = 0
        self.journaled_batches = 0
        # Group commit: a batch waits up to this long after its first message (0: none).
        self.commit_delay_s = 0.0
        self._first_msg_at: float | None = None
        self._release_now = False  # a sync returned: held ACKs may leave (release_durable)
        if db.inputs_held:
            self._replay_inputs()

    # -- to override -----------------------------------------------------------------------

    def sender_of(self, link: str, topic: str) -> Any:
        """The replica a message on ``topic`` of ``link`` comes from; ValueError if none."""
        raise NotImplementedError

    def route(self, peer: Any, data: bytes) -> None:
        """Publish ``data`` to ``peer`` on the right link and topic."""
        raise NotImplementedError

    def on_link(self, link: str, connected: bool) -> None:
        """A link (re)connected or dropped (service thread)."""

    def receive(self, payload: bytes, now_ms: int, peer: Any) -> list[Any]:
        """``node.receive`` (a subclass may check around it)."""
        return self.node.receive(payload, now_ms, peer)

    def on_event(self, ev: tuple[Any, ...]) -> None:
        """Every node event, after the service's own bookkeeping (service thread)."""

    def journaled(self, peer: Any) -> bool:
        """May a batch of DELTAs from ``peer`` be persisted as the messages themselves
        (``NodeDB.journal_inputs``)? Only where replaying them through ``receive`` alone
        redoes all they did: not where ``absorb`` acts on what they bring."""
        return False

    def absorb(self, changed: dict[str, Any], now_ms: int) -> dict[str, Any]:
        """Once per turn, before the save: place merged data, bring local changes in.

        ``changed`` maps each variable the batch grew to the join of its deltas; a
        subclass that changes node variables itself adds them there (so they are saved).
        Returns extra ``meta`` values to persist in the same transaction.
        """
        return {}

    def links(self) -> list[Any]:
        return []

    # -- time and inputs -------------------------------------------------------------------

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def deliver(self, link: str, topic: str, payload: bytes) -> None:
        """Called from paho threads: enqueue a message (never blocks)."""
        if self._first_msg_at is None:
            self._first_msg_at = time.monotonic()
        self.inbox.put(("msg", link, topic, payload))

    def link_state(self, link: str, connected: bool) -> None:
        self.inbox.put(("link", link, connected))

    # -- lifecycle -------------------------------------------------------------------------

    def start_syncer(self, syncer: Any = None) -> None:
        """Start the fsync thread (``start`` does, with ``fsync_apart``). Without it each
        save is synced in line. A test driving ``step`` by hand may pass its own object
        with ``request(n)`` and ``close()`` and report syncs with ``inbox.put(("synced",
        n))``, to choose when the disk "finishes"."""
        if syncer is None:
            syncer = WalSyncer(
                self.db,
                self._on_synced,
                lambda exc: self._post(("sync_failed", exc)),
            )
        self._syncer = syncer

    def _on_synced(self, n: int) -> None:
        """The fsync thread made save ``n`` durable: what it holds may leave at once (ACKs
        are what the devices wait for), in a turn of its own (``release_durable``). The
        batch still gathering keeps gathering: committing it early would start the next
        fsync at once, whose return would commit the next few messages, and so on, and a
        steady fleet would commit a few messages per fsync instead of a batch per
        ``commit_delay_s``. The ``synced`` item tells a loop without sockets (``step``)."""
        self._durable = n
        self._release_now = True
        self._post(("synced", n))

    def release_durable(self) -> None:
        """Send what the saves reported durable were holding back, taking no batch."""
        self._synced = max(self._synced, self._durable)
        self._emit(self._release([]))

    def _post(self, item: tuple[Any, ...]) -> None:
        """Enqueue from another thread, and wake the loop if it waits on its sockets."""
        self.inbox.put(item)
        if self._loop is not None:
            self._loop.wake()

    def start(self) -> SyncService:
        if self.db.fsync_apart:
            self.start_syncer()
        links = self.links()
        if links:
            self._loop = LinkLoop(links, max_packets=self.max_batch)
        self._thread = threading.Thread(target=self.run, name="lasp-service", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        if self._loop is not None:
            self._loop.close()  # stops the links: the loop thread is gone
        else:
            for link in self.links():
                link.stop()
        if self._syncer is not None:
            self._syncer.close()
        alive = self._thread is not None and self._thread.is_alive()
        if self.db.inputs_held and self.failed is None and not alive:
            # A clean stop folds the journaled messages into the tables: nothing to replay
            # at the next start, and the file alone holds the node. If the disk refuses,
            # they stay journaled, and the next start replays them.
            try:
                with self.lock:
                    self.db.save(self.node, {})
                    if self.db.fsync_apart:
                        self.db.sync_wal()
            except Exception as exc:
                log.warning("journaled messages left for the next start to replay: %s", exc)
        self.db.close()

    def run(self) -> None:
        try:
            if self._loop is None:
                while not self._stop.is_set():
                    self.step()
            else:
                self._run_looped(self._loop)
        except BaseException as exc:  # fail-stop: memory may be ahead of disk now
            self.failed = exc
            log.exception("service stopped by an unexpected error; restart it")
            raise

    def _run_looped(self, loop: LinkLoop) -> None:
        """Sockets and service on this thread: read all that arrived, process it as one
        batch, write what it published; wait only when nothing is queued, or while a
        group commit gathers its batch (``commit_delay_s``)."""
        loop.start()
        busy = False
        while not self._stop.is_set():
            hold = self._hold_s()
            if hold > 0:
                wait = hold
            elif not self.inbox.empty():
                wait = 0.0
            elif busy:
                # Under load the node's deadline (a walk over every peer) is not worth
                # computing each turn: tick() runs every TICK_MS anyway (see _process).
                wait = TICK_MS / 1000.0
            else:
                wait = self._wait_s()
            loop.poll(wait)
            if self._release_now:
                self._release_now = False  # before reading _durable: a later sync sets it anew
                self.release_durable()
                loop.flush()
            if self._hold_s() > 0:
                continue  # the batch is still gathering
            self._first_msg_at = None
            busy = self.step(wait=0.0)
            loop.flush()

    def _hold_s(self) -> float:
        """How much longer the queued messages wait for company before they are committed
        (group commit): each commit costs an fsync and at least a page of flash writes
        however few messages it holds, so at a moderate rate, where every message would
        otherwise be a batch of its own, a few milliseconds of ACK latency buy a large cut
        in writes (docs/GATEWAY.md, Durability)."""
        first = self._first_msg_at
        if (
            not self.commit_delay_s
            or first is None
            or self.inbox.qsize() >= min(self.max_batch, GROUP_COMMIT_BATCH)
        ):
            return 0.0
        return first + self.commit_delay_s - time.monotonic()

    # -- the loop --------------------------------------------------------------------------

    def _wait_s(self) -> float:
        with self.lock:
            deadline = self.node.next_deadline_ms()
        if deadline is None:
            return MAX_WAIT_S
        return min(MAX_WAIT_S, max(0.0, (deadline - self.now_ms()) / 1000.0))

    def step(self, wait: float | None = None) -> bool:
        """One turn: take a batch, persist it, acknowledge, tick, publish. True if the
        batch held anything."""
        batch: list[tuple[Any, ...]] = []
        if wait is None:
            # the node's next deadline walks every peer: only worth it when idle
            wait = 0.0 if not self.inbox.empty() else self._wait_s()
        try:
            batch.append(self.inbox.get(timeout=wait))
            while len(batch) < self.max_batch:
                batch.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        with self.lock:
            out = self._release(self._process(batch))
        self._emit(out)
        if batch and self.on_batch is not None:
            self.on_batch()
        return bool(batch)

    def _replay_inputs(self) -> None:
        """Redo the batches journaled since the last full save (``NodeDB`` header): the
        same messages, in order, through the same ``receive``; then one full save folds
        them into the tables. What they made the node send left before the restart or is
        resent by the protocol (ACKs are cumulative, births are sent at startup).

        They were authorized, merged and acknowledged under the configuration they arrived
        with, so neither the policy nor the size limit of this run may refuse them now: an
        operator who narrows ``--open-vars`` across a restart must not lose acked data."""
        node = self.node
        messages = self.db.inputs()
        changed: dict[str, Any] = {}
        now = self.now_ms()
        saved = node.authorize, node.max_message
        node.authorize, node.max_message = None, max(node.max_message, 1 << 30)
        try:
            for peer, payload in messages:
                for ev in self.receive(payload, now, peer):
                    if ev[0] == EV_MERGED:
                        _join_into(changed, ev[2])
        finally:
            node.authorize, node.max_message = saved
        node.take()
        self.db.save(node, changed)
        log.info("replayed %d messages journaled before the restart", len(messages))

    def _process(self, batch: list[tuple[Any, ...]]) -> list[tuple[Any, bytes]]:
        node = self.node
        now = self.now_ms()
        changed: dict[str, Any] = {}
        tokens: dict[Any, None] = {}  # distinct tokens, in arrival order: one ACK each
        seen_ms = wall_ms()  # one clock read per batch, not per message
        touched = False
        senders: set[Any] = set()
        # The messages, while every one of them only merged (journal_inputs), else None;
        # and what that must have done to the log and the variables.
        journal: list[tuple[Any, bytes]] | None = []
        seq0, nvars0, appended = node.log.last_seq, len(node.vars), 0
        for item in batch:
            if item[0] != "msg":
                self._control(item)
                continue
            _, link, topic, payload = item
            self.received += 1
            self.bytes_in += len(payload)
            try:
                peer = self.sender_of(link, topic)
            except ValueError as exc:
                self._count_reject(topic.rsplit("/", 1)[-1], str(exc))
                continue
            senders.add(peer)
            st = self._stats_for(peer)
            if st is not None:
                st.messages += 1
                st.seen_ms = seen_ms  # saved with the next reject or every STATS_SAVE_MS
            events = self.receive(payload, now, peer)
            if journal is not None and events:
                if all(ev[0] == EV_MERGED for ev in events) and self.journaled(peer):
                    journal.append((peer, payload))
                elif not all(ev[0] == EV_ACKED for ev in events):
                    journal = None  # (an ACK needs no replay: _LAZY_LOG, at the top)
            for ev in events:
                kind = ev[0]
                if kind == EV_MERGED:
                    _join_into(changed, ev[2])
                    appended += len(ev[2])
                    tokens[ev[3]] = None
                    touched = True
                    self.deltas += 1
                elif kind == EV_REJECTED:
                    self._count_reject(peer, ev[2])
                elif kind == EV_ACKED:
                    self._log_moved = True  # released segments: saved lazily (_LAZY_LOG)
                elif kind in (EV_BIRTH, EV_DEATH):
                    touched = True
                self.on_event(ev)
        meta = self.absorb(changed, now)
        if now - self._stats_saved >= STATS_SAVE_MS:
            self._stats_saved = now
            self._dirty_stats.update(pid for pid, st in self.stats.items() if st.messages)
        log_due = self._log_moved and now - self._full_saved_ms >= JOURNAL_MS
        if touched or changed or meta or self._dirty_stats or log_due:
            if (
                journal
                and not (meta or self._dirty_stats)
                and node.log.last_seq - seq0 == appended  # no local update joined in
                and len(node.vars) == nvars0
                and now - self._full_saved_ms < JOURNAL_MS
                and self.db.inputs_held + len(journal) <= JOURNAL_MAX
            ):
                self.db.journal_inputs(journal, changed)
                self.journaled_batches += 1
            else:
                stats = {
                    pid: self.stats[pid].row() for pid in self._dirty_stats if pid in self.stats
                }
                log_vars = None if self._log_moved else list(changed)
                origins = None
                if self.log_origins_are_senders:
                    origins = list(senders)
                    origins.append(None)
                self.db.save(node, changed, meta, stats, senders, log_vars, origins)
                self._dirty_stats.clear()
                self._log_moved = False
                self._full_saved_ms = now
            self._saved += 1
            if self._syncer is not None:
                self._syncer.request(self._saved)
            elif self.db.fsync_apart:  # driven without start() (tests): sync in line
                self.db.sync_wal()
                self._synced = self._saved
        for tok in tokens:
            node.commit(tok)  # durable now: acknowledge
        now = self.now_ms()
        if now - self._last_tick >= TICK_MS or not batch:
            # tick() walks every peer: at most every TICK_MS under load (acks and births
            # do not wait for it; only deltas and resends do, within their period)
            self._last_tick = now
            node.tick(now)
        if batch:
            self.batches += 1
        out = node.take()
        for _peer, data in out:
            if len(data) > 2 and data[2] == DELTA_KIND:
                self._log_moved = True  # sending sealed segments: compare them all next save
                break
        return out

    def _emit(self, out: list[tuple[Any, bytes]]) -> None:
        for peer, data in out:
            self.bytes_out += len(data)
            self.route(peer, data)

    def _control(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "link":
            self.on_link(item[1], item[2])
        elif kind == "synced":
            self._synced = max(self._synced, item[1])
        elif kind == "sync_failed":
            raise item[1]  # the disk failed: stop (fail-stop), nothing held ever leaves

    def _release(self, out: list[tuple[Any, bytes]]) -> list[tuple[Any, bytes]]:
        """What may leave now: with ``fsync_apart``, only what follows a durable save."""
        if not self.db.fsync_apart:
            return out
        if out:
            self._held.append((self._saved, out))
        ready: list[tuple[Any, bytes]] = []
        while self._held and self._held[0][0] <= self._synced:
            ready += self._held.popleft()[1]
        return ready

    def _stats_for(self, sender: Any) -> SenderStats | None:
        st = self.stats.get(sender)
        if st is None and len(self.stats) < MAX_SENDERS:
            st = self.stats[sender] = SenderStats()
        return st

    def _count_reject(self, sender: Any, reason: str) -> None:
        self.rejected_total += 1
        st = self._stats_for(sender)
        if st is None:
            log.warning("rejected from %r: %s", sender, reason)
            return
        st.rejected += 1
        st.last_reason = reason
        self._dirty_stats.add(sender)
        # Log the first few per sender, then every 100th: a flood must not flood the log.
        if st.logged < 5 or st.rejected % 100 == 0:
            st.logged += 1
            log.warning("rejected from %r (%d so far): %s", sender, st.rejected, reason)

    # -- reports ---------------------------------------------------------------------------

    def backlog(self, peer: Any) -> int:
        """Log segments still to be delivered to ``peer`` (0 when it is up to date)."""
        node = self.node
        p = node.peers.get(peer)
        if p is None:
            return 0
        pend = node.log.pending(p.acked, node.log.last_seq, p.id, p.interests)
        return sum(len(v) for v in pend.values())

    def peer_report(self, peer: Any) -> dict[str, Any]:
        """One peer as plain data (call under ``self.lock``)."""
        p = self.node.peers.get(peer)
        st = self.stats.get(peer)
        out: dict[str, Any] = {
            "id": peer,
            "online": bool(p is not None and p.online),
            "epoch": None if p is None else p.epoch,
            "acked": None if p is None else p.acked,
            "recv_to": None if p is None else p.recv_to,
            "backlog": self.backlog(peer),
            "messages": 0 if st is None else st.messages,
            "rejected": 0 if st is None else st.rejected,
            "last_reason": None if st is None else st.last_reason,
            "last_seen_ms": None if st is None else st.seen_ms,
        }
        return out

    def counters(self) -> dict[str, Any]:
        return {
            "replica": self.node.replica,
            "epoch": self.node.epoch,
            "received": self.received,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "deltas": self.deltas,
            "batches": self.batches,
            "saves": self.db.saves,
            "wal_syncs": self.db.wal_syncs,
            "rejected": self.rejected_total,
            "log_segments": self.node.log.size(),
            "last_seq": self.node.log.last_seq,
        }
