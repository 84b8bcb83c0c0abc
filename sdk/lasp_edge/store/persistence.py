"""SQLite persistence for a Store: checkpoints, a delta journal and the effect outbox.

Layout (one file, WAL mode)::

    meta(k, v)                          replica id, schema version, ack point, seq floor
    vars(name, kind, type, params,      a checkpoint of each persisted variable and the
         state, ck_seq)                 journal sequence number it already includes
    journal(seq, name, delta,           every change to a persisted variable since its
            ship, origin)               checkpoint, and every shippable delta not yet acked
    effects(key, name, status, error)   the enforce_once outbox (see effects.py)

Writing the whole state on every update would cost O(state) per update; instead each update
appends its *delta* to the journal in the same transaction that commits the update, and a
variable is checkpointed (its full state written, its covered journal rows deleted) only
once the journal bytes written for it since its last checkpoint exceed the size of that
checkpoint (and at least ``MIN_CHECKPOINT_BYTES``). Checkpoint cost is therefore amortised
to O(1) per journal byte. Reopening loads the checkpoints and joins the journal rows after
each ``ck_seq``; since join is idempotent, replaying a row twice would be harmless anyway.

The same journal rows, flagged ``ship``, are the *pending deltas* a sync layer reads with
``Store.pending(since)``; ``Store.ack(upto)`` lets rows go once the checkpoints cover them.

Durability. Every mutating Store call is one SQLite transaction, committed before the call
returns. With ``synchronous="full"`` (default) the WAL is fsynced at every commit: a
returned update survives a process crash *and* a power loss (on storage that honours
fsync). With ``synchronous="normal"`` the WAL is fsynced only at checkpoints: a returned
update survives ``kill -9`` (the bytes are in the OS page cache, which the kernel writes
out) but the last commits may be lost on power failure; the database is never corrupted
either way. Edge boxes lose power more often than processes crash, hence the default.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from lasp_edge import cbor

SCHEMA_VERSION = 1
MIN_CHECKPOINT_BYTES = 64 * 1024
SYNCHRONOUS = ("full", "normal")


def open_exclusive_wal(
    path: str, synchronous: str, owner: str, page_size: int | None = None
) -> sqlite3.Connection:
    """One SQLite connection in WAL mode that owns ``path`` until it is closed.

    One owner per file: two processes writing as the same replica would reuse its dots and
    sequence numbers. EXCLUSIVE locking (set before WAL, so no shared-memory index is
    needed) keeps the write lock from the first transaction until close; it is taken right
    away, so a second owner fails at open with a clear ``ValueError`` naming ``owner``.
    ``isolation_level=None``: callers issue BEGIN/COMMIT themselves.
    """
    if synchronous not in SYNCHRONOUS:
        raise ValueError("synchronous must be one of %s" % ", ".join(SYNCHRONOUS))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.5)
    try:
        if page_size is not None:
            conn.execute("PRAGMA page_size=%d" % page_size)  # a new file only; else ignored
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError("SQLite refused WAL mode for %s (got %s)" % (path, mode))
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
        conn.execute("PRAGMA synchronous=%s" % synchronous.upper())
    except sqlite3.OperationalError as exc:
        conn.close()
        if "locked" in str(exc):
            raise ValueError("%s is open in another %s (%s)" % (path, owner, exc)) from None
        raise
    except BaseException:
        conn.close()
        raise
    return conn


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS vars (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL,
    params BLOB NOT NULL, state BLOB NOT NULL, ck_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, name TEXT NOT NULL, delta BLOB NOT NULL,
    ship INTEGER NOT NULL, origin BLOB);
CREATE INDEX IF NOT EXISTS journal_by_name ON journal (name, seq);
CREATE TABLE IF NOT EXISTS effects (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, error TEXT);
"""


class Database:
    """Thin, logic-free access to the file; the Store decides what to write and when."""

    def __init__(self, path: str, synchronous: str = "full") -> None:
        self.path = path
        self.conn = open_exclusive_wal(path, synchronous, "Store")
        try:
            self._init_schema()
        except BaseException:
            self.conn.close()
            raise

    def _init_schema(self) -> None:
        self.conn.executescript(_SCHEMA)
        stored = self.meta_get("schema")
        if stored is None:
            self.meta_set("schema", SCHEMA_VERSION)
        elif stored != SCHEMA_VERSION:
            raise ValueError(
                "%s has store schema %r, this build reads %d" % (self.path, stored, SCHEMA_VERSION)
            )

    def close(self) -> None:
        self.conn.close()

    # -- transactions --------------------------------------------------------------------

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # -- meta ----------------------------------------------------------------------------

    def meta_get(self, k: str) -> Any:
        row = self.conn.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return None if row is None else cbor.loads(row[0])

    def meta_set(self, k: str, v: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (k, cbor.dumps(v)))

    # -- variables and journal -----------------------------------------------------------

    def load_vars(self) -> list[tuple[str, str, str, bytes, bytes, int]]:
        return list(
            self.conn.execute(
                "SELECT name, kind, type, params, state, ck_seq FROM vars ORDER BY rowid"
            )
        )

    def put_var(
        self, name: str, kind: str, type_name: str, params: bytes, state: bytes, ck_seq: int
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO vars (name, kind, type, params, state, ck_seq) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, kind, type_name, params, state, ck_seq),
        )

    def set_kind(self, name: str, kind: str) -> None:
        self.conn.execute("UPDATE vars SET kind = ? WHERE name = ?", (kind, name))

    def delete_var(self, name: str) -> None:
        self.conn.execute("DELETE FROM vars WHERE name = ?", (name,))
        self.conn.execute("DELETE FROM journal WHERE name = ?", (name,))

    def append(self, rows: Iterable[tuple[int, str, bytes, int, Any]]) -> None:
        self.conn.executemany(
            "INSERT INTO journal (seq, name, delta, ship, origin) VALUES (?, ?, ?, ?, ?)",
            [(s, n, d, sh, None if o is None else cbor.dumps(o)) for s, n, d, sh, o in rows],
        )

    def journal(self) -> Iterator[tuple[int, str, bytes, int, Any]]:
        for seq, name, delta, ship, origin in self.conn.execute(
            "SELECT seq, name, delta, ship, origin FROM journal ORDER BY seq"
        ):
            yield seq, name, delta, ship, None if origin is None else cbor.loads(origin)

    def max_seq(self) -> int:
        row = self.conn.execute("SELECT MAX(seq) FROM journal").fetchone()
        return int(row[0] or 0)

    def prune(self, name: str, ck_seq: int, acked: int) -> None:
        """Drop rows of ``name`` covered by its checkpoint and not needed by sync."""
        self.conn.execute(
            "DELETE FROM journal WHERE name = ? AND seq <= ? AND (ship = 0 OR seq <= ?)",
            (name, ck_seq, acked),
        )

    def ack(self, upto: int) -> None:
        self.conn.execute(
            "DELETE FROM journal WHERE ship = 1 AND seq <= ? AND seq <= "
            "(SELECT ck_seq FROM vars WHERE vars.name = journal.name)",
            (upto,),
        )

    # -- effects -------------------------------------------------------------------------

    def effects(self) -> dict[str, tuple[str, str, str | None]]:
        return {
            k: (n, s, e) for k, n, s, e in self.conn.execute("SELECT * FROM effects ORDER BY key")
        }

    def put_effect(self, key: str, name: str, status: str, error: str | None = None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO effects (key, name, status, error) VALUES (?, ?, ?, ?)",
            (key, name, status, error),
        )
