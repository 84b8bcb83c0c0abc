"""Durable state of a sync ``Node`` in SQLite (WAL), written so that cost follows the change.

Why not ``cbor.dumps(node.snapshot())`` per message, as a device does? A gateway's snapshot
holds every variable of every device, the delta log and every peer: rewriting it for each
24-byte counter delta would make ingest cost O(fleet state) per message. Instead one
transaction per *batch* of received messages writes only what moved:

    meta(k, v)                  replica, epoch (boot counter), log last_seq / trimmed_to,
                                and the adapters' own cursors
    vars(name, typed, ck_bytes) checkpoint of each variable ([tag, payload] CBOR)
    var_journal(id, name, typed) deltas merged since the variable's checkpoint
    segments(lo, var, hi, origin, sealed, typed)
                                the delta log: one row per segment; only segments whose
                                (hi, sealed) moved are rewritten, released ones deleted
    peers(id, epoch, acked, recv_to, interests)
                                one row per peer; rewritten only when its marks moved
    stats(id, rejected, last_reason, seen_ms)
                                per-sender counters that survive restarts
    inputs(n, peer, payload)    received messages journaled as they came (see below)

A variable changed by a batch costs one journal row (the join of the batch's deltas for it).
Once the journal written for a variable outgrows its checkpoint (and 64 KiB), the variable
is checkpointed and its journal rows dropped, so checkpoints cost O(1) amortised per journal
byte (the scheme of ``lasp_edge.store.persistence``). The log is bounded by the state size
(``lasp_edge.sync.log``), and so is the segments table.

The input journal (``journal_inputs``, what the gateway uses between full saves). Most of a
gateway's batches only merge device DELTAs, and saving their effect means re-encoding each
sender's grown log segment and rewriting its segment and peer rows: most of a save's cost,
and many scattered page writes (flash wear on a Pi's SD card). Such a batch may instead
append the messages themselves, as received, to ``inputs``: the node's state after it is a
pure function of the state at the last full save and those messages in order (merges are
deterministic, and the marks they move, ``recv_to`` and the log's sequence numbers, follow
from the messages), so a restart replays them through the same ``receive`` and loses
nothing. Every full ``save`` writes what moved since the previous one and empties
``inputs`` in the same transaction, so replay is bounded by what the adapter lets
accumulate between two full saves (``service.py``).

What this reads of the node is exactly what ``Node.snapshot()`` reads, and it restores
through ``Node.restore()``; so the node's invariants are the protocol's, not this file's.

Crash safety: every save is one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); the
adapter acknowledges (``Node.commit``) only after ``save`` returned. ``synchronous="full"``
fsyncs the WAL at each commit (survives power loss); ``"normal"`` survives ``kill -9``.
With ``fsync_apart`` (the gateway) the fsync of "full" is ``sync_wal()``, called by the
adapter after the commit on a thread of its own, and nothing leaves before it returned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import cbor2

from lasp_edge import cbor, wire
from lasp_edge.store.persistence import open_exclusive_wal
from lasp_edge.sync import Node

SCHEMA_VERSION = 1
MIN_CHECKPOINT_BYTES = 64 * 1024
# SQLite pages of a new file (an existing one keeps its own). Most commits of a gateway
# append one small batch to ``inputs``: a page or two of WAL, each a frame of the page size
# plus 24 bytes, so a 4 KiB frame straddles two 4 KiB pages of the file system and every
# commit writes at least 8 KiB to the disk. With 1 KiB pages the steady fleet of
# bench/bench_gateway.py (f) wrote a fifth less per DELTA in each of 3 alternating pairs
# (909-927 B against 1,144-1,212 B), at the same CPU; saturated ingest did not change.
PAGE_SIZE = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS vars (
    name TEXT PRIMARY KEY, typed BLOB NOT NULL, ck_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS var_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, typed BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS var_journal_by_name ON var_journal (name);
CREATE TABLE IF NOT EXISTS segments (
    lo INTEGER PRIMARY KEY, var TEXT NOT NULL, hi INTEGER NOT NULL, origin BLOB NOT NULL,
    sealed INTEGER NOT NULL, typed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (
    id BLOB PRIMARY KEY, epoch INTEGER NOT NULL, acked INTEGER NOT NULL,
    recv_to INTEGER NOT NULL, interests BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS stats (
    id BLOB PRIMARY KEY, rejected INTEGER NOT NULL, last_reason TEXT, seen_ms INTEGER);
CREATE TABLE IF NOT EXISTS inputs (
    n INTEGER PRIMARY KEY, peer BLOB NOT NULL, payload BLOB NOT NULL);
"""


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def state_blob(state: Any) -> bytes:
    """A CRDT state as stored: ``[tag, payload]`` CBOR, by cbor2's C encoder.

    Why not ``cbor.dumps``: a gateway writes every delta it merges (journal and log rows),
    and the portable pure-Python encoder costs 8-20x more per item, which made the encoder
    the largest cost of ingest. The bytes need not be canonical here (no one compares them;
    they are read back by ``cbor.loads``, which accepts any map order and float width) but
    they must decode to the same value: tests/gateway/test_gw_batch_codec.py checks that
    for every CRDT type. cbor2 writes an int beyond 64 bits as a bignum tag (head byte
    0xc2/0xc3), which ``cbor.loads`` refuses: if either byte appears anywhere (a C-speed
    scan; usually data, not a tag), the portable encoder decides, so what cannot be read
    back raises here instead of being written.
    """
    typed = wire.to_typed(state)
    blob = cbor2.dumps(typed)
    if b"\xc2" in blob or b"\xc3" in blob:
        return cbor.dumps(typed)
    return blob


def _open_segments(log: Any, origins: Iterable[Any] | None) -> Any:
    """``var -> [its open segments for origins]``, or None to walk them all.

    Reads the log's index of open segments (``DeltaLog._open``: (var, origin) -> segment,
    the one an append joins into); tests/gateway/test_gw_nodedb.py checks that a save
    narrowed this way leaves nothing for a full comparison to find.
    """
    index = getattr(log, "_open", None)
    if origins is None or not isinstance(index, dict):
        return None
    keys = list(origins)

    def segs(var: str) -> list[Any]:
        return [s for s in (index.get((var, o)) for o in keys) if s is not None]

    return segs


def _interests_wire(interests: Any) -> Any:
    """A peer's declared interests as stored: None (everything) or a sorted list."""
    if interests is None or not isinstance(interests, (set, frozenset, list, tuple)):
        return None  # "everything" (a gateway may hold a predicate in its place)
    return sorted(interests)


class NodeDB:
    """One node's file. ``load()`` -> snapshot for ``Node.restore``; ``save()`` per batch."""

    def __init__(self, path: str, synchronous: str = "full", fsync_apart: bool = False) -> None:
        """``fsync_apart`` (with ``synchronous="full"``): COMMIT does not fsync; the owner
        calls ``sync_wal()`` after each ``save`` (on another thread, see ``service.py``)
        and sends nothing a save produced before that returned. Same durability as FULL,
        but the fsync no longer stalls the thread that merges the next batch."""
        if synchronous not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        self.path = path
        self.fsync_apart = fsync_apart and synchronous == "full"
        self._wal_fd: int | None = None
        self.wal_syncs = 0
        # What is on disk, to diff against (filled by load / save).
        self._vars: dict[str, list[int]] = {}  # name -> [ck_bytes, journal bytes since]
        self._segs: dict[int, tuple[Any, ...]] = {}  # lo -> (var, hi, origin, sealed)
        self._peers: dict[Any, tuple[Any, ...]] = {}  # id -> (epoch, acked, recv_to, interests)
        self._meta: dict[str, Any] = {}
        self._stats: dict[Any, tuple[Any, ...]] = {}
        self.saves = 0
        self.rows_written = 0
        self.bytes_written = 0  # payload bytes (states, deltas) written by saves
        self._ids: dict[Any, bytes] = {}  # replica id -> its CBOR (peer keys, origins)
        self.inputs_held = 0  # rows in ``inputs``: replayed at restart, emptied by save
        self._unsaved: dict[str, Any] = {}  # var -> join of the journaled batches' deltas
        self.conn = open_exclusive_wal(
            path,
            "normal" if self.fsync_apart else synchronous,
            "gateway or aggregator process",
            page_size=PAGE_SIZE,
        )
        try:
            self._init_schema()
            if self.fsync_apart:
                self.sync_wal()  # the WAL file exists now: make its directory entry durable
                _fsync_path(os.path.dirname(os.path.abspath(path)))
        except BaseException:
            self.conn.close()
            raise

    def _init_schema(self) -> None:
        self.conn.executescript(_SCHEMA)
        schema = self.meta_get("schema")
        if schema is None:
            self._tx(lambda: self.meta_set("schema", SCHEMA_VERSION))
        elif schema != SCHEMA_VERSION:
            raise ValueError(
                "%s has node schema %r, expected %d" % (self.path, schema, SCHEMA_VERSION)
            )

    def close(self) -> None:
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self.conn.close()

    def sync_wal(self) -> None:
        """fsync the WAL: every transaction committed before this call is durable after it.

        Thread-safe against the connection: it works on its own descriptor of the file, and
        fsync covers every write that completed before it, whoever made it. With EXCLUSIVE
        locking SQLite keeps the WAL file while the connection is open (a checkpoint resets
        it in place, after syncing it and the database); should the file ever be another
        one (another inode), it is reopened, and if there is none, everything is in the
        database file, which is synced instead.
        """
        wal = self.path + "-wal"
        fd = self._wal_fd
        try:
            if fd is None or os.fstat(fd).st_ino != os.stat(wal).st_ino:
                if fd is not None:
                    os.close(fd)
                    self._wal_fd = None
                fd = self._wal_fd = os.open(wal, os.O_RDONLY)
            os.fsync(fd)
        except FileNotFoundError:
            _fsync_path(self.path)
        self.wal_syncs += 1

    def _tx(self, fn: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn()
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return out

    # -- meta ------------------------------------------------------------------------------

    def meta_get(self, k: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return default if row is None else cbor.loads(row[0])

    def meta_set(self, k: str, v: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (k, cbor.dumps(v)))
        self._meta[k] = v

    # -- boot ------------------------------------------------------------------------------

    def claim(self, replica: Any) -> None:
        """Bind the file to one replica id (refuse to reopen it as another)."""
        stored = self.meta_get("replica")
        if stored is None:
            self._tx(lambda: self.meta_set("replica", replica))
        elif stored != replica or type(stored) is not type(replica):
            raise ValueError("%s belongs to replica %r, not %r" % (self.path, stored, replica))

    def boot_epoch(self) -> int:
        """Read the boot counter, add one, persist it: before the node says anything."""
        epoch = int(self.meta_get("epoch", 0)) + 1
        self._tx(lambda: self.meta_set("epoch", epoch))
        return epoch

    def load(self) -> dict[str, Any] | None:
        """The stored node as a ``Node.snapshot()``-shaped dict, or None for a new file."""
        replica = self.meta_get("replica")
        last_seq = self.meta_get("last_seq")
        vars_: dict[str, Any] = {}
        for name, typed, ck_bytes in self.conn.execute("SELECT name, typed, ck_bytes FROM vars"):
            vars_[name] = wire.from_typed(cbor.loads(typed))
            self._vars[name] = [ck_bytes, 0]
        for name, typed in self.conn.execute("SELECT name, typed FROM var_journal ORDER BY id"):
            state = vars_.get(name)
            delta = wire.from_typed(cbor.loads(typed))
            if state is None:
                vars_[name] = delta
                self._vars[name] = [0, len(typed)]
            else:
                state.merge(delta)
                self._vars[name][1] += len(typed)
        segs = []
        for lo, var, hi, origin_b, sealed, typed in self.conn.execute(
            "SELECT lo, var, hi, origin, sealed, typed FROM segments ORDER BY lo"
        ):
            origin = cbor.loads(origin_b)
            segs.append([var, lo, hi, origin, bool(sealed), cbor.loads(typed)])
            self._segs[lo] = (var, hi, origin, bool(sealed))
        peers = []
        for pid_b, epoch, acked, recv_to, interests_b in self.conn.execute(
            "SELECT id, epoch, acked, recv_to, interests FROM peers"
        ):
            pid = cbor.loads(pid_b)
            interests = cbor.loads(interests_b)
            peers.append([pid, epoch, acked, recv_to, interests])
            self._peers[pid] = (epoch, acked, recv_to, interests)
        for pid_b, rejected, reason, seen in self.conn.execute(
            "SELECT id, rejected, last_reason, seen_ms FROM stats"
        ):
            self._stats[cbor.loads(pid_b)] = (rejected, reason, seen)
        for k in ("epoch", "last_seq", "trimmed_to"):
            self._meta[k] = self.meta_get(k)
        self.inputs_held = self.conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
        if last_seq is None and not vars_ and not peers:
            return None
        return {
            "replica": replica,
            "epoch": self.meta_get("epoch", 0),
            "vars": {n: wire.to_typed(s) for n, s in vars_.items()},
            "last_seq": last_seq or 0,
            "trimmed_to": self.meta_get("trimmed_to", 0),
            "segments": segs,
            "peers": peers,
        }

    def inputs(self) -> list[tuple[Any, bytes]]:
        """The journaled messages ``[(sender, payload), ...]``, in the order received."""
        return [
            (cbor.loads(peer), payload)
            for peer, payload in self.conn.execute("SELECT peer, payload FROM inputs ORDER BY n")
        ]

    def stored_stats(self) -> dict[Any, tuple[Any, ...]]:
        """``{sender: (rejected, last_reason, seen_ms)}`` as loaded."""
        return dict(self._stats)

    # -- saving ----------------------------------------------------------------------------

    def save(
        self,
        node: Node,
        changed: dict[str, Any],
        meta: dict[str, Any] | None = None,
        stats: dict[Any, tuple[Any, ...]] | None = None,
        peers: Iterable[Any] | None = None,
        log_vars: Iterable[str] | None = None,
        log_origins: Iterable[Any] | None = None,
    ) -> None:
        """Persist what moved since the last save, in one transaction.

        ``changed`` maps every variable that grew since the last save to a delta that
        brought it there (the join of its batch); variables the node declared meanwhile are
        found by name. ``meta`` adds adapter values (e.g. a bridge cursor) to the same
        transaction; ``stats`` per-sender counters (only changed rows are written).

        ``peers`` and ``log_vars`` narrow what is compared with the disk (None: all):
        the peers whose marks may have moved (those the batch heard from) and the
        variables whose log segments may have moved (appended to; all of them after a
        send sealed segments or an ack released some). The service passes both so a save
        costs what the batch changed, not what the node holds.

        ``log_origins`` (with ``log_vars``) narrows further: every origin the log appended
        for since the last save (the senders heard, and None for local updates). Appends
        only ever touch the *open* segment of their (variable, origin), so those are the
        only segments to compare; without it every segment of each variable is walked (a
        gateway holds one open segment per device: 500 devices, 500 per batch).
        """
        if self.inputs_held:
            # What the journaled batches moved is known only as a whole: compare it all.
            changed = dict(changed)
            for name, d in self._unsaved.items():
                acc = changed.get(name)
                changed[name] = d if acc is None else d.join(acc)
            peers = log_vars = log_origins = None
        self._tx(
            lambda: self._save(node, changed, meta or {}, stats or {}, peers, log_vars, log_origins)
        )
        self._unsaved = {}
        self.inputs_held = 0
        self.saves += 1

    def journal_inputs(self, messages: list[tuple[Any, bytes]], changed: dict[str, Any]) -> None:
        """Persist a batch as the messages it received, ``[(sender, payload), ...]``, in
        one transaction: instead of a ``save``, for a batch whose whole effect replaying
        them through ``Node.receive`` after the last full save reproduces (module header).

        ``changed`` is what ``save`` would have been given; it is kept (joined) for the
        next ``save``, which then writes it and compares everything with the disk, whatever
        it is told to narrow to: it must cover every journaled batch before it drops them.
        """
        rows = [(self._id(peer), payload) for peer, payload in messages]
        self._tx(
            lambda: self.conn.executemany("INSERT INTO inputs (peer, payload) VALUES (?, ?)", rows)
        )
        for name, d in changed.items():
            acc = self._unsaved.get(name)
            if acc is None:
                self._unsaved[name] = d
            else:
                acc.merge(d)
        self.inputs_held += len(rows)
        self.bytes_written += sum(len(p) for _, p in rows)
        self.rows_written += len(rows)
        self.saves += 1

    def _save(
        self,
        node: Node,
        changed: dict[str, Any],
        meta: dict[str, Any],
        stats: dict[Any, tuple[Any, ...]],
        peers: Iterable[Any] | None,
        log_vars: Iterable[str] | None,
        log_origins: Iterable[Any] | None = None,
    ) -> None:
        ex = self.conn.execute
        n = 0
        # variables: new ones get a checkpoint; a changed one a journal row (the join of
        # its batch), or a checkpoint once its journal outgrew the last one
        if len(node.vars) != len(self._vars):
            for name, state in node.vars.items():
                if name not in self._vars:
                    self._checkpoint(name, state)
                    n += 1
        journal = []
        for name, delta in changed.items():
            acc = self._vars.get(name)
            state = node.vars.get(name)
            if acc is None or state is None:
                continue  # just checkpointed (or not a node variable)
            blob = state_blob(delta)
            self.bytes_written += len(blob)
            acc[1] += len(blob)
            if acc[1] >= max(acc[0], MIN_CHECKPOINT_BYTES):
                self._checkpoint(name, state)
            else:
                journal.append((name, blob))
            n += 1
        if journal:
            self.conn.executemany("INSERT INTO var_journal (name, typed) VALUES (?, ?)", journal)
        # the delta log: rewrite the segments whose (hi, sealed, origin) moved, drop the
        # released ones
        by_var = node.log.by_var
        names = list(by_var) if log_vars is None else [v for v in log_vars if v in by_var]
        rows = []  # new segments
        moved = []  # segments on disk that grew: UPDATE in place (cheaper than REPLACE)
        sealed = []
        seen: set[int] = set()
        open_segs = None if log_vars is None else _open_segments(node.log, log_origins)
        for var in names:
            for seg in by_var[var] if open_segs is None else open_segs(var):
                seen.add(seg.lo)
                sig = (var, seg.hi, seg.origin, bool(seg.sealed))
                was = self._segs.get(seg.lo)
                if was == sig:
                    continue
                self._segs[seg.lo] = sig
                if was is not None and was[:3] == sig[:3]:
                    # Only sealed (a send): the same content, so flip the flag instead of
                    # encoding the segment again. Every forward seals every open segment.
                    sealed.append((int(sig[3]), seg.lo))
                    continue
                typed = state_blob(seg.delta)
                self.bytes_written += len(typed)
                if was is None:
                    rows.append((seg.lo, var, seg.hi, self._id(seg.origin), int(sig[3]), typed))
                else:
                    moved.append((seg.hi, self._id(seg.origin), int(sig[3]), typed, seg.lo))
        if moved:
            self.conn.executemany(
                "UPDATE segments SET hi = ?, origin = ?, sealed = ?, typed = ? WHERE lo = ?",
                moved,
            )
            n += len(moved)
        if sealed:
            self.conn.executemany("UPDATE segments SET sealed = ? WHERE lo = ?", sealed)
            n += len(sealed)
        if rows:
            self.conn.executemany(
                "INSERT OR REPLACE INTO segments (lo, var, hi, origin, sealed, typed) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            n += len(rows)
        if log_vars is None:
            gone = [(lo,) for lo in self._segs if lo not in seen]
            if gone:
                self.conn.executemany("DELETE FROM segments WHERE lo = ?", gone)
                for (lo,) in gone:
                    del self._segs[lo]
                n += len(gone)
        # peers: the marks that make acks and rewinds right after a restart
        prows = []
        pmarks = []  # known peers whose marks moved (every sender of a batch): UPDATE
        for pid in node.peers if peers is None else peers:
            p = node.peers.get(pid)
            if p is None:
                continue
            sig = (p.epoch, p.acked, p.recv_to, _interests_wire(p.interests))
            was = self._peers.get(pid)
            if was != sig:
                if was is not None and was[3] == sig[3]:
                    pmarks.append((sig[0], sig[1], sig[2], self._id(pid)))
                else:
                    ints = self._id(None) if sig[3] is None else cbor.dumps(sig[3])
                    prows.append((self._id(pid), sig[0], sig[1], sig[2], ints))
                self._peers[pid] = sig
        if pmarks:
            self.conn.executemany(
                "UPDATE peers SET epoch = ?, acked = ?, recv_to = ? WHERE id = ?", pmarks
            )
            n += len(pmarks)
        if prows:
            self.conn.executemany(
                "INSERT OR REPLACE INTO peers (id, epoch, acked, recv_to, interests) "
                "VALUES (?, ?, ?, ?, ?)",
                prows,
            )
            n += len(prows)
        for pid, row in stats.items():
            if self._stats.get(pid) != row:
                ex(
                    "INSERT OR REPLACE INTO stats (id, rejected, last_reason, seen_ms) "
                    "VALUES (?, ?, ?, ?)",
                    (cbor.dumps(pid), *row),
                )
                self._stats[pid] = row
        if self.inputs_held:
            ex("DELETE FROM inputs")  # their effect is in the rows above now
        values = {
            "epoch": node.epoch,
            "last_seq": node.log.last_seq,
            "trimmed_to": node.log.trimmed_to,
        }
        values.update(meta)
        for k, v in values.items():
            if self._meta.get(k) != v:
                self.meta_set(k, v)
        self.rows_written += n

    def _id(self, rid: Any) -> bytes:
        b = self._ids.get(rid)
        if b is None:
            if len(self._ids) > 100_000:
                self._ids.clear()
            b = self._ids[rid] = cbor.dumps(rid)
        return b

    def _checkpoint(self, name: str, state: Any) -> None:
        blob = state_blob(state)
        self.bytes_written += len(blob)
        self.conn.execute(
            "INSERT OR REPLACE INTO vars (name, typed, ck_bytes) VALUES (?, ?, ?)",
            (name, blob, len(blob)),
        )
        self.conn.execute("DELETE FROM var_journal WHERE name = ?", (name,))
        self._vars[name] = [len(blob), 0]

    # -- inspection (tests, the HTTP API) --------------------------------------------------

    def sizes(self) -> dict[str, int]:
        """Rows and payload bytes per table: what the store-and-forward bound is about."""
        out: dict[str, int] = {}
        for table, col in (("vars", "typed"), ("var_journal", "typed"), ("segments", "typed")):
            rows, size = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(%s)), 0) FROM %s" % (col, table)
            ).fetchone()
            out[table + "_rows"] = rows
            out[table + "_bytes"] = size
        out["peers_rows"] = self.conn.execute("SELECT COUNT(*) FROM peers").fetchone()[0]
        out["inputs_rows"] = self.inputs_held
        return out
