"""Store: the variables of one replica, and the Lasp programming model on top of them.

Theory of operation
-------------------
Every public call that changes anything runs as one *transaction* under the store's lock:

1. apply the change to the lattice state in memory (a mutator, or a merge for ``bind``);
2. find the element-level change of a set (``sets.py``) and let the dataflow engine carry
   it through the combinators (``dataflow.py``), which update derived variables from it;
3. publish dynamic contributions (``dynamic.py``), test armed ``enforce_once`` thresholds;
4. append the delta to the journal and the pending-delta log, commit SQLite (``persistence``);
5. only then wake blocked readers and queue stream/effect callbacks, which run after the
   lock is released, in commit order, on the thread that made the change.

So readers, streams and effects never see a half-applied update (no glitches across a
diamond), callbacks may call back into the store, and what a call returned is on disk.

A store never reads a clock or opens a socket: time enters only as read timeouts and
window epochs given by the caller, and replicas meet only through ``pending``/``bind``
(``network.py`` wires stores together in memory until the sync protocol exists).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

from lasp_edge.crdts import AWSet, PNCounter
from lasp_edge.crdts.base import Lattice, check_replica
from lasp_edge.store import codec
from lasp_edge.store.dataflow import (
    Engine,
    FilterNode,
    IntersectionNode,
    MapNode,
    Node,
    ProductNode,
    UnionNode,
    fold_node,
)
from lasp_edge.store.dynamic import DynamicPublisher, GlobalView, is_slot_map, keys_of, slot_map
from lasp_edge.store.effects import (
    ARMED,
    DONE,
    ON_CRASH,
    RUNNING,
    TRIGGERED,
    UNKNOWN,
    Effect,
)
from lasp_edge.store.errors import (
    CycleError,
    DataflowError,
    DerivedVariableError,
    StoreClosedError,
    UnknownVariableError,
)
from lasp_edge.store.mutators import full_args
from lasp_edge.store.persistence import MIN_CHECKPOINT_BYTES, Database
from lasp_edge.store.sets import SetChange, diff, elements, is_set, tracker_for
from lasp_edge.store.thresholds import compile_threshold, identity
from lasp_edge.store.variables import DERIVED, DYNAMIC, GLOBAL, SOURCE, Var

log = logging.getLogger("lasp_edge.store")


class PendingDelta(NamedTuple):
    """One shippable change: what a sync layer sends, numbered in commit order."""

    seq: int
    name: str
    delta: Lattice
    origin: Any  # the replica it was received from (None for a local update)


class Subscription:
    """Returned by ``Store.stream``; call it (or ``cancel()``) to unsubscribe."""

    def __init__(self, store: Store, var: Var, callback: Callable[[Any], Any]) -> None:
        self._store = store
        self._var = var
        self.callback = callback

    @property
    def active(self) -> bool:
        return self.callback in self._var.streams

    def cancel(self) -> None:
        with self._store._lock:
            if self.callback in self._var.streams:
                self._var.streams.remove(self.callback)

    __call__ = cancel


class _Txn:
    def __init__(self) -> None:
        self.changed: dict[str, Var] = {}  # variables whose exposed value changed
        self.journal: list[tuple[int, str, bytes, int, Any]] = []
        self.dirty: dict[str, Var] = {}
        self.fire: list[Effect] = []
        self.errors: list[DataflowError] = []
        self.mutated = False

    def mark(self, var: Var) -> None:
        self.changed[var.name] = var


class Store:
    """The variables of one replica (see docs/LASP.md for the guide).

    ``Store(replica)`` keeps everything in memory; ``Store(replica, path)`` persists every
    variable, pending delta and effect in SQLite (WAL). ``synchronous="full"`` (default)
    makes each returned call survive power loss; ``"normal"`` survives process crashes only.
    """

    def __init__(self, replica: Any, path: str | None = None, *, synchronous: str = "full"):
        self.replica = check_replica(replica)
        self.path = path
        self._lock = threading.RLock()
        self._vars: dict[str, Var] = {}
        self._seq = 0
        self._acked = 0
        self._pending: deque[PendingDelta] = deque()
        self._engine = Engine(self._derived_changed)
        self._tx: _Txn | None = None
        self._tx_thread: int | None = None
        self._closed: BaseException | None = None
        self._dispatch: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self._dispatch_lock = threading.RLock()
        self._draining = False
        self._effects: dict[str, Effect] = {}
        self._effect_rows: dict[str, tuple[str, str, str | None]] = {}
        self._db: Database | None = None
        if path is not None:
            self._db = Database(path, synchronous)
            try:
                self._load()
            except BaseException:
                self._db.close()
                raise

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database and wake every blocked reader with StoreClosedError."""
        with self._lock:
            if self._closed is not None:
                return
            self._closed = StoreClosedError("store %r is closed" % (self.replica,))
            if self._db is not None:
                self._db.close()
            self._wake_all()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Store(%r%s, %d variables)" % (
            self.replica,
            "" if self.path is None else ", %r" % self.path,
            len(self._vars),
        )

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed

    def _wake_all(self) -> None:
        for var in self._vars.values():
            if var.cond is not None:
                var.cond.notify_all()
            for _check, fut, loop in var.waiters:
                _notify(loop, _set_exception, fut, self._closed)
            var.waiters.clear()

    def _load(self) -> None:
        db = self._db
        assert db is not None
        stored = db.meta_get("replica")
        if stored is None:
            db.meta_set("replica", self.replica)
        elif stored != self.replica or type(stored) is not type(self.replica):
            raise ValueError(
                "%s belongs to replica %r, not %r (one file per replica)"
                % (self.path, stored, self.replica)
            )
        self._acked = int(db.meta_get("acked") or 0)
        top = self._acked
        for name, kind, type_name, params_b, state_b, ck_seq in db.load_vars():
            cls = codec.resolve_type(type_name)
            state = codec.loads(state_b)
            if type(state) is not cls or state.params() != codec.loads_params(params_b):
                raise ValueError(
                    "%s: stored state of %r does not match its type" % (self.path, name)
                )
            var = Var(name, kind, state)
            var.ck_seq = ck_seq
            var.ck_bytes = len(state_b)
            self._vars[name] = var
            top = max(top, ck_seq)
        for seq, name, blob, ship, origin in db.journal():
            row_var = self._vars.get(name)
            if row_var is None:
                raise ValueError("%s: journal row %d for undeclared %r" % (self.path, seq, name))
            delta = codec.loads(blob)
            if seq > row_var.ck_seq:
                row_var.state.merge(delta)
                row_var.jbytes += len(blob)
            if ship and seq > self._acked:
                self._pending.append(PendingDelta(seq, name, delta, origin))
            top = max(top, seq)
        self._seq = top
        self._effect_rows = db.effects()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _txn(self) -> Iterator[_Txn]:
        with self._lock:
            self._check_open()
            if self._tx is not None:
                raise RuntimeError(
                    "store called from inside a dataflow function (map/filter/fold/"
                    "fold_dynamic fn); those must be pure"
                )
            tx = _Txn()
            self._tx = tx
            self._tx_thread = threading.get_ident()
            if self._db is not None:
                self._db.begin()
            try:
                yield tx
                tx.errors.extend(self._engine.run())
                self._finish(tx)
                if self._db is not None:
                    self._db.commit()
            except BaseException as exc:
                self._engine.queue.clear()
                if self._db is not None:
                    try:
                        self._db.rollback()
                    except Exception:  # the original error matters more
                        log.exception("rollback failed")
                if tx.mutated:
                    # Memory already moved past what is on disk: refuse to go on with it.
                    self._closed = StoreClosedError(
                        "store %r stopped after a failed transaction (%s: %s); reopen it"
                        % (self.replica, type(exc).__name__, exc)
                    )
                    self._wake_all()
                raise
            finally:
                self._tx = None
                self._tx_thread = None
            self._publish(tx)
        self._drain()
        if tx.errors:
            raise tx.errors[0]

    def _finish(self, tx: _Txn) -> None:
        """Inside the transaction: arm->trigger effects, write journal and checkpoints."""
        db = self._db
        for var in tx.changed.values():
            if var.broken is not None:
                continue
            for eff in var.effects:
                if eff.status == ARMED and self._test(tx, eff.check, var, eff.key):
                    eff.status = TRIGGERED
                    if db is not None:
                        db.put_effect(eff.key, eff.name, TRIGGERED)
                    tx.fire.append(eff)
        if db is None:
            return
        if tx.journal:
            db.append(tx.journal)
        for var in tx.dirty.values():
            if var.jbytes >= max(var.ck_bytes, MIN_CHECKPOINT_BYTES):
                self._checkpoint(var)

    def _test(self, tx: _Txn, check: Callable[[Lattice], bool], var: Var, key: str) -> bool:
        """An effect's threshold test; a predicate that raises stays armed and is reported."""
        try:
            return check(var.exposed())
        except Exception as exc:
            err = DataflowError(
                "threshold of effect %r raised %s: %s" % (key, type(exc).__name__, exc)
            )
            err.__cause__ = exc
            tx.errors.append(err)
            return False

    def _checkpoint(self, var: Var) -> None:
        assert self._db is not None
        blob = codec.dumps(var.state)
        self._db.put_var(
            var.name,
            var.kind,
            var.cls.NAME,
            codec.dumps_params(var.params),
            blob,
            self._seq,
        )
        self._db.prune(var.name, self._seq, self._acked)
        var.ck_seq = self._seq
        var.ck_bytes = len(blob)
        var.jbytes = 0

    def _publish(self, tx: _Txn) -> None:
        """After commit, under the lock: wake readers, queue streams and effects."""
        for var in tx.changed.values():
            if var.cond is not None:
                var.cond.notify_all()
            if var.broken is not None:
                for _check, fut, loop in var.waiters:
                    _notify(loop, _set_exception, fut, var.broken)
                var.waiters.clear()
                continue
            state = var.exposed()
            if var.waiters:
                keep = []
                for w in var.waiters:
                    check, fut, loop = w
                    try:
                        met = check(state)
                    except Exception as exc:  # a predicate threshold raised: tell its reader
                        _notify(loop, _set_exception, fut, exc)
                        continue
                    if met:
                        _notify(loop, _set_result, fut, state.value())
                    else:
                        keep.append(w)
                var.waiters[:] = keep
            for cb in var.streams:
                self._dispatch.append((cb, state.value()))
        for eff in tx.fire:
            self._dispatch.append((self._run_effect, eff))

    def _drain(self) -> None:
        """Run queued callbacks outside every store lock, in commit order.

        One thread drains at a time, so callbacks run in commit order. No lock is held
        while a callback runs: a callback that takes a lock of its own must not deadlock
        with another thread that holds that lock and updates the store. Such a thread
        finds a drain in progress and returns at once; the draining thread runs its
        callbacks (a callback calling back into the store lands here the same way).
        """
        with self._dispatch_lock:
            if self._draining:
                return
            self._draining = True
        try:
            while True:
                with self._dispatch_lock:
                    if not self._dispatch:
                        self._draining = False
                        return
                    fn, arg = self._dispatch.popleft()
                try:
                    fn(arg)
                except Exception:
                    log.exception("stream callback %r failed", fn)  # effects catch their own
        except BaseException:
            with self._dispatch_lock:
                self._draining = False
            raise

    # ------------------------------------------------------------------ variables

    def _get(self, name: str) -> Var:
        var: Var | None = self._vars.get(name)
        if var is None:
            known = ", ".join(sorted(self._vars)) or "(none declared)"
            raise UnknownVariableError("unknown variable %r; declared: %s" % (name, known))
        return var

    def _new_var(self, tx: _Txn, name: str, kind: str, state: Lattice) -> Var:
        if not isinstance(name, str) or not name:
            raise ValueError("a variable name is a non-empty str, got %r" % (name,))
        var = Var(name, kind, state)
        tx.mutated = True
        self._vars[name] = var
        if self._db is not None and var.persisted:
            blob = codec.dumps(state)
            self._db.put_var(
                name, kind, var.cls.NAME, codec.dumps_params(var.params), blob, self._seq
            )
            var.ck_seq = self._seq
            var.ck_bytes = len(blob)
        return var

    def _declare(self, name: str, type: Any, params: dict[str, Any], kind: str) -> None:
        cls = codec.resolve_type(type)
        proto = cls(**params)
        with self._txn() as tx:
            var = self._vars.get(name)
            if var is None:
                self._new_var(tx, name, kind, proto)
                return
            if var.cls is not cls or var.params != proto.params():
                raise ValueError(
                    "%r is already declared as %s; cannot redeclare it as %s%s"
                    % (name, var.describe(), cls.NAME, "" if not params else " %r" % params)
                )
            if (kind == DYNAMIC) != (var.kind == DYNAMIC):
                raise ValueError(
                    "%r is already declared as %s; cannot redeclare it as %s"
                    % (name, var.describe(), "dynamic" if kind == DYNAMIC else "replicated")
                )

    def declare(self, name: str, type: Any, **params: Any) -> None:
        """Declare a replicated variable of CRDT ``type`` (class or short name).

        Declaring again with the same type and parameters is a no-op (so a program can run
        its declarations at every start); with a different one it raises ValueError.
        """
        self._declare(name, type, params, SOURCE)

    def declare_dynamic(self, name: str, type: Any, **params: Any) -> None:
        """Declare a variable whose value is local to this replica: never shipped or merged."""
        self._declare(name, type, params, DYNAMIC)

    def variables(self) -> dict[str, str]:
        """``{name: "kind type(params)"}`` for every variable."""
        with self._lock:
            return {n: v.describe() for n, v in sorted(self._vars.items())}

    # ------------------------------------------------------------------ changes

    def update(self, name: str, op: str, *args: Any) -> Lattice:
        """Apply mutator ``op`` as this replica (see the update rule in mutators.py).

        Returns the delta (bottom if nothing changed). Derived variables and globals are
        written only by their combinator and refuse updates.
        """
        with self._txn() as tx:
            var = self._get(name)
            if var.kind in (DERIVED, GLOBAL):
                raise DerivedVariableError(self._why_readonly(var))
            a = full_args(var.state, op, args, self.replica)
            tracker = var.tracker
            before = None if tracker is None else tracker.before(var.state, (a[-1],))
            delta: Lattice = getattr(var.state, op)(*a)
            if delta.is_bottom():
                return delta
            tx.mutated = True
            change = None if tracker is None or before is None else tracker.after(var.state, before)
            self._changed(tx, var, delta, change, None)
        return delta

    def bind(self, name: str, state: Lattice, *, origin: Any = None) -> bool:
        """Join a state or delta from elsewhere into ``name``, exactly as sync will.

        Returns True iff the variable strictly grew (then the delta is also logged as
        pending, so it can be forwarded). An undeclared name is declared with the
        state's type, so a relay can store and forward variables it does not know.
        """
        if not isinstance(state, Lattice):
            raise TypeError("bind wants a CRDT state, got %r" % (state,))
        with self._txn() as tx:
            var = self._vars.get(name)
            if var is None:
                codec.resolve_type(type(state))
                var = self._new_var(tx, name, SOURCE, state.bottom())
            if var.kind == DERIVED:
                raise DerivedVariableError(self._why_readonly(var))
            if var.kind == DYNAMIC:
                raise ValueError("%r is dynamic: its value is local and never merged" % name)
            if type(state) is not var.cls or state.params() != var.params:
                raise TypeError(
                    "cannot bind a %s %r to %r, which is %s"
                    % (state.NAME, state.params(), name, var.describe())
                )
            tracker = var.tracker
            before = None
            if tracker is not None:
                before = tracker.before(var.state, tracker.delta_candidates(state))
            if not var.state.merge(state):
                return False
            tx.mutated = True
            change = None if tracker is None or before is None else tracker.after(var.state, before)
            self._changed(tx, var, state.copy(), change, origin)
        return True

    def _why_readonly(self, var: Var) -> str:
        if var.kind == GLOBAL:
            return "%r is the global of a fold_dynamic; update the dynamic variable" % var.name
        assert var.producer is not None
        return "%r is derived by %s; update its inputs instead" % (var.name, var.producer.label())

    def _changed(
        self, tx: _Txn, var: Var, delta: Lattice, change: SetChange | None, origin: Any
    ) -> None:
        """Bookkeeping after ``var.state`` changed by ``delta``: log, views, dataflow."""
        if var.shipped or self._db is not None:
            self._seq += 1
            seq = self._seq
            if var.shipped:
                self._pending.append(PendingDelta(seq, var.name, delta, origin))
            if self._db is not None:
                blob = codec.dumps(delta)
                tx.journal.append((seq, var.name, blob, int(var.shipped), origin))
                var.jbytes += len(blob)
                tx.dirty[var.name] = var
        if var.view is not None:
            if var.view.refresh(keys_of(delta)):
                tx.mark(var)
        else:
            tx.mark(var)
        if change:
            self._engine.push(var, change)
        if var.publisher is not None:
            self._republish(tx, var)

    def _republish(self, tx: _Txn, dyn: Var) -> None:
        pub = dyn.publisher
        assert pub is not None
        try:
            d = pub.publish()
        except Exception as exc:
            err = DataflowError(
                "fold_dynamic(%s -> %s) failed: %s" % (dyn.name, pub.glob.name, exc)
            )
            err.__cause__ = exc
            dyn.publisher = None
            pub.glob.broken = err
            tx.errors.append(err)
            return
        if d is not None and not d.is_bottom():
            self._changed(tx, pub.glob, d, None, None)

    def _derived_changed(self, var: Var) -> None:
        assert self._tx is not None
        self._tx.mark(var)

    def reset(self, name: str) -> None:
        """Start a dynamic variable over from bottom (a new session, a withdrawn value).

        Its fold_dynamic contribution is republished, so the global view drops whatever
        only this replica contributed (see dynamic.py).
        """
        with self._txn() as tx:
            var = self._get(name)
            if var.kind != DYNAMIC:
                raise ValueError(
                    "reset applies to dynamic variables; %r is %s" % (name, var.describe())
                )
            if var.state.is_bottom():
                return
            old = set(elements(var.state)) if var.dependents else set()
            tx.mutated = True
            var.state = var.state.bottom()
            if var.dependents:
                var.tracker = tracker_for(var.state)
                self._engine.push(var, diff(old, var.state))
            if self._db is not None:
                self._seq += 1
                self._checkpoint(var)
            tx.mark(var)
            if var.publisher is not None:
                self._republish(tx, var)

    def evict(self, name: str, replica: Any) -> None:
        """Remove ``replica``'s slot from a fold_dynamic global (an operator's decision that
        it is gone). Observed-remove: if that replica publishes again, it is back."""
        with self._txn() as tx:
            var = self._get(name)
            if not is_slot_map(var.state):
                raise ValueError(
                    "evict applies to fold_dynamic globals; %r is %s" % (name, var.describe())
                )
            d = var.state.remove(replica)
            if not d.is_bottom():
                tx.mutated = True
                self._changed(tx, var, d, None, None)

    # ------------------------------------------------------------------ queries and reads

    def query(self, name: str) -> Any:
        """The current value as plain data (a set, an int, a dict, ...)."""
        with self._lock:
            self._check_open()
            var = self._get(name)
            if var.broken is not None:
                raise var.broken
            return var.exposed().value()

    def state(self, name: str) -> Lattice:
        """A copy of the variable's replicated lattice state (what ``bind`` accepts)."""
        with self._lock:
            self._check_open()
            return self._get(name).state.copy()

    def read(
        self,
        name: str,
        threshold: Any = None,
        *,
        strict: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Block until the value reaches ``threshold`` (see thresholds.py), then return it.

        Raises TimeoutError after ``timeout`` seconds. Safe to call from any thread while
        others update or bind; must not be called from a dataflow function.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._tx is not None and self._tx_thread == threading.get_ident():
                raise RuntimeError("read() from inside a dataflow function would deadlock")
            self._check_open()
            var = self._get(name)
            check = compile_threshold(var.exposed(), threshold, strict)
            if var.cond is None:
                var.cond = threading.Condition(self._lock)
            while True:
                self._check_open()
                if var.broken is not None:
                    raise var.broken
                state = var.exposed()
                if check(state):
                    return state.value()
                if deadline is None:
                    var.cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        "read(%r, %r) timed out after %ss" % (name, threshold, timeout)
                    )
                var.cond.wait(remaining)

    async def aread(
        self,
        name: str,
        threshold: Any = None,
        *,
        strict: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """``read`` for asyncio: awaits without blocking the event loop or using a thread."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._check_open()
            var = self._get(name)
            check = compile_threshold(var.exposed(), threshold, strict)
            if var.broken is not None:
                raise var.broken
            state = var.exposed()
            if check(state):
                return state.value()
            waiter = (check, fut, loop)
            var.waiters.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                "aread(%r, %r) timed out after %ss" % (name, threshold, timeout)
            ) from None
        finally:
            with self._lock:
                if waiter in var.waiters:
                    var.waiters.remove(waiter)

    def stream(self, name: str, callback: Callable[[Any], Any]) -> Subscription:
        """Call ``callback(value)`` once per strict inflation of ``name``; returns a handle.

        Not called for the current value, only for later changes; one call per committed
        change however many steps it took. Runs after commit, outside the store lock.
        (For the two non-monotone views, a fold into a lattice and a fold_dynamic global,
        "inflation" reads "change": their value may also go down.)
        """
        with self._lock:
            var = self._get(name)
            var.streams.append(callback)
            return Subscription(self, var, callback)

    # ------------------------------------------------------------------ combinators

    def map(self, src: str, fn: Callable[[Any], Any], dst: str) -> None:
        """``dst = {fn(x) | x in src}``, kept up to date from each change of ``src``."""
        self._combinator((src,), dst, lambda i, d: MapNode(i[0], fn, d, self.replica))

    def filter(self, src: str, pred: Callable[[Any], Any], dst: str) -> None:
        """``dst = {x in src | pred(x)}``."""
        self._combinator((src,), dst, lambda i, d: FilterNode(i[0], pred, d, self.replica))

    def union(self, a: str, b: str, dst: str) -> None:
        """``dst = a ∪ b``; an element leaves only when neither input holds it."""
        self._combinator((a, b), dst, lambda i, d: UnionNode(i[0], i[1], d, self.replica))

    def intersection(self, a: str, b: str, dst: str) -> None:
        """``dst = a ∩ b``."""
        self._combinator((a, b), dst, lambda i, d: IntersectionNode(i[0], i[1], d, self.replica))

    def product(self, a: str, b: str, dst: str) -> None:
        """``dst = {(x, y) | x in a, y in b}`` (elements are 2-tuples)."""
        self._combinator((a, b), dst, lambda i, d: ProductNode(i[0], i[1], d, self.replica))

    def fold(self, src: str, fn: Callable[[Any], Any], dst: str) -> None:
        """Combine ``fn(x)`` over the elements of ``src`` into ``dst``, exact under removal.

        The rule follows ``dst``'s type (see dataflow.py): pncounter (default when ``dst``
        is undeclared) sums int contributions and subtracts them back on removal; gcounter
        only over a grow-only gset; any other lattice joins contributions (states of that
        type, or ``(op, *args)`` tuples applied to bottom) through a JoinTree.
        """
        self._combinator(
            (src,),
            dst,
            lambda i, d: fold_node(i[0], fn, d, self.replica),
            default=PNCounter,
            set_dst=False,
        )

    def _ancestors(self, var: Var) -> set[str]:
        seen: set[str] = set()
        stack = [var]
        while stack:
            v = stack.pop()
            if v.name in seen:
                continue
            seen.add(v.name)
            if v.producer is not None:
                stack.extend(v.producer.inputs)
        return seen

    def _combinator(
        self,
        srcs: tuple[str, ...],
        dst: str,
        make: Callable[[tuple[Var, ...], Var], Node],
        default: type[Lattice] = AWSet,
        set_dst: bool = True,
    ) -> None:
        with self._txn() as tx:
            inputs = tuple(self._get(n) for n in srcs)
            for v in inputs:
                if not is_set(v.state) or v.kind == GLOBAL:
                    raise TypeError(
                        "combinator inputs must be sets (awset, gset, twopset); %r is %s"
                        % (v.name, v.describe())
                    )
            d = self._vars.get(dst)
            fresh = d is None
            label = "%s -> %s" % (", ".join(srcs), dst)
            if d is None:
                d = Var(dst, DERIVED, default())
            else:
                if d.producer is not None:
                    raise ValueError("%r is already derived by %s" % (dst, d.producer.label()))
                if d.kind != SOURCE:
                    raise ValueError("%r is %s and cannot be derived" % (dst, d.describe()))
                if any(dst in self._ancestors(v) for v in inputs):
                    raise CycleError("cycle: %s would make %r depend on itself" % (label, dst))
                if set_dst and not isinstance(d.state, AWSet):
                    raise TypeError("a derived set is an awset; %r is %s" % (dst, d.describe()))
                if not d.state.is_bottom():
                    raise ValueError(
                        "%r already holds data; a derived variable must start empty" % dst
                    )
            node = make(inputs, d)
            try:
                out = node.initialize()
            except Exception as exc:
                d.state = d.state.bottom()
                raise DataflowError(
                    "%s failed: %s: %s" % (node.label(), type(exc).__name__, exc)
                ) from exc
            tx.mutated = True
            if fresh:
                self._vars[dst] = d
            elif self._db is not None:
                self._db.delete_var(dst)
            d.kind = DERIVED
            d.producer = node
            d.tracker = None
            for v in node.distinct_inputs():
                if v.tracker is None and v.kind != DERIVED:
                    v.tracker = tracker_for(v.state)
                v.dependents.append(node)
            if out:
                tx.mark(d)
                if isinstance(out, SetChange):
                    self._engine.push(d, out)

    # ------------------------------------------------------------------ dynamic

    def fold_dynamic(self, name: str, fn: Callable[[Lattice], Any] | None, dst: str) -> None:
        """Maintain global ``dst`` = join over replicas of ``fn(local value of name)``.

        ``fn`` maps the local state to this replica's contribution (a state of one lattice
        type, or None for nothing); ``fn=None`` contributes the local value itself. See
        dynamic.py for what happens when a local value shrinks or a replica disappears.
        """
        with self._txn() as tx:
            dyn = self._get(name)
            if dyn.kind != DYNAMIC:
                raise ValueError(
                    "fold_dynamic folds a dynamic variable; %r is %s" % (name, dyn.describe())
                )
            if dyn.publisher is not None:
                raise ValueError("%r is already folded into %r" % (name, dyn.publisher.glob.name))
            proto = dyn.state.bottom() if fn is None else fn(dyn.state.bottom())
            if not isinstance(proto, Lattice):
                raise TypeError(
                    "fold_dynamic fn must return a CRDT state (its contribution); "
                    "fn(bottom) returned %r" % (proto,)
                )
            g = self._vars.get(dst)
            if g is None:
                g = self._new_var(tx, dst, GLOBAL, slot_map())
            elif not is_slot_map(g.state) or g.kind not in (SOURCE, GLOBAL):
                raise ValueError("%r is %s, not a fold_dynamic global" % (dst, g.describe()))
            elif g.dependents or g.producer is not None:
                raise ValueError("%r is used by a combinator and cannot be a global" % dst)
            if g.view is not None:
                if type(g.view.proto) is not type(proto) or g.view.proto.params() != proto.params():
                    raise TypeError("%r already folds %s contributions" % (dst, g.view.proto.NAME))
            for other in self._vars.values():
                if other.publisher is not None and other.publisher.glob is g:
                    raise ValueError("%r already receives this replica's %r" % (dst, other.name))
            tx.mutated = True
            if g.kind != GLOBAL:
                g.kind = GLOBAL
                if self._db is not None:
                    self._db.set_kind(dst, GLOBAL)
            if g.view is None:
                g.view = GlobalView(g, proto)
                tx.mark(g)
            dyn.publisher = DynamicPublisher(dyn, fn, g, g.view, self.replica)
            self._republish(tx, dyn)

    # ------------------------------------------------------------------ effects

    def enforce_once(
        self,
        name: str,
        threshold: Any,
        callback: Callable[[Any], Any],
        *,
        key: str | None = None,
        on_crash: str = "retry",
    ) -> Effect:
        """Run ``callback(value)`` exactly once, the first time ``name`` meets ``threshold``.

        ``key`` names the effect across restarts (default: derived from name and threshold;
        required for predicate thresholds). With a path the outbox is durable; see
        effects.py for the states and for what ``on_crash`` decides.
        """
        if on_crash not in ON_CRASH:
            raise ValueError("on_crash must be one of %s" % ", ".join(ON_CRASH))
        fire = False
        with self._txn() as tx:
            var = self._get(name)
            check = compile_threshold(var.exposed(), threshold, False)
            if key is None:
                ident = identity(threshold, False)
                if ident is None:
                    raise ValueError("a predicate threshold needs an explicit key=")
                key = "%s@%s" % (name, ident)
            if key in self._effects:
                raise ValueError("an effect with key %r is already registered" % key)
            row = self._effect_rows.get(key)
            status = None if row is None else row[1]
            met = status is None and var.broken is None and check(var.exposed())
            eff = Effect(key, name, check, callback, on_crash)
            self._effects[key] = eff
            var.effects.append(eff)
            if status in (DONE, UNKNOWN):
                eff.status = status
            elif status == TRIGGERED:
                eff.status = TRIGGERED
                fire = True
            elif status == RUNNING:
                if on_crash == "retry":
                    eff.status = TRIGGERED
                    fire = True
                else:
                    eff.status = UNKNOWN
                self._put_effect(eff)
            elif met:
                eff.status = TRIGGERED
                self._put_effect(eff)
                fire = True
            if fire:
                tx.fire.append(eff)
        return eff

    def _put_effect(self, eff: Effect) -> None:
        if self._db is not None:
            err = None if eff.error is None else "%s: %s" % (type(eff.error).__name__, eff.error)
            self._db.put_effect(eff.key, eff.name, eff.status, err)
            self._effect_rows[eff.key] = (eff.name, eff.status, err)

    def _effect_commit(self, eff: Effect, status: str) -> None:
        eff.status = status
        if self._db is not None and self._closed is None:
            self._db.begin()
            try:
                self._put_effect(eff)
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise

    def _run_effect(self, eff: Effect) -> None:
        with self._lock:
            if self._closed is not None or eff.status != TRIGGERED:
                return
            self._effect_commit(eff, RUNNING)
            value = self._vars[eff.name].exposed().value()
        try:
            eff.callback(value)
        except Exception as exc:
            log.exception("effect %r failed; it stays triggered", eff.key)
            with self._lock:
                eff.error = exc
                self._effect_commit(eff, TRIGGERED)
            return
        with self._lock:
            eff.error = None
            self._effect_commit(eff, DONE)

    def retry_effects(self) -> int:
        """Run again every registered effect left ``triggered`` by a failing callback."""
        with self._lock:
            todo = [e for e in self._effects.values() if e.status == TRIGGERED]
            for e in todo:
                self._dispatch.append((self._run_effect, e))
        self._drain()
        return len(todo)

    def effects(self) -> dict[str, str]:
        """``{key: status}`` of every effect known to this store (registered or on disk)."""
        with self._lock:
            out = {k: row[1] for k, row in self._effect_rows.items()}
            out.update({k: e.status for k, e in self._effects.items()})
            return out

    # ------------------------------------------------------------------ sync interface

    @property
    def last_seq(self) -> int:
        """Sequence number of the latest logged change (0 if none)."""
        return self._seq

    def replicated(self) -> dict[str, Lattice]:
        """Copies of every shippable variable's state: a full-state bootstrap for a new peer."""
        with self._lock:
            return {n: v.state.copy() for n, v in self._vars.items() if v.shipped}

    def pending(self, since: int = 0) -> list[PendingDelta]:
        """Shippable deltas with ``seq > since``, oldest first (persisted with the store).

        Local updates of replicated variables and remote deltas that made this replica
        grow (so a relay forwards them); derived and dynamic variables never appear.
        """
        with self._lock:
            out = []
            for p in reversed(self._pending):  # newest first: cost follows the answer
                if p.seq <= since:
                    break
                out.append(p)
            out.reverse()
            return out

    def ack(self, upto: int) -> None:
        """Every peer has what is ``<= upto``: those deltas may be forgotten."""
        with self._txn() as tx:
            upto = min(upto, self._seq)
            if upto <= self._acked:
                return
            tx.mutated = True
            self._acked = upto
            while self._pending and self._pending[0].seq <= upto:
                self._pending.popleft()
            if self._db is not None:
                self._db.ack(upto)
                self._db.meta_set("acked", upto)


def _notify(loop: asyncio.AbstractEventLoop, fn: Any, fut: Any, arg: Any) -> None:
    """Resolve an aread future from any thread; a loop that is gone has no reader left."""
    with suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, fut, arg)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException | None) -> None:
    if not fut.done():
        fut.set_exception(exc or StoreClosedError("store closed"))
