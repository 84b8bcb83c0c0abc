"""The aggregator: delta groups from gateways in, the user's Lasp program over the global state.

Two replicas of the same variables live here, on purpose:

* the **sync node** (``Node`` + ``NodeDB``, file ``<db>.sync``): what the protocol needs to
  talk to gateways and to other aggregators (logs, peer marks);
* the **program's store** (``lasp_edge.store.Store``, file ``<db>``): what ``program(store)``
  declared, its combinators, reads and ``enforce_once`` outbox.

The bridge between them is one place per direction, both in ``absorb`` (service thread,
once per batch, before the node's save):

* **node -> store.** Every variable a batch grew is bound into the store
  (``store.bind(var, join of the batch's deltas, origin=<this replica>)``), which commits
  before it returns, runs the dataflow and fires effects. Only then is the node saved and
  the batch acknowledged. A crash in between loses nothing: the gateway resends what was not
  acknowledged and binding it again is a no-op (join is idempotent).
* **schema.** ``schema@<me>`` (an LWW register, written when a variable appears) tells
  gateways the exact type and parameters of every shared variable, so that they can
  refuse device writes of a wrong type (authz.py, rule 4).
* **store -> node.** Local changes the program makes (an effect removing an ad, a bill, a
  ``fold_dynamic`` global) are the store's pending deltas with ``origin None``:
  ``store.pending(cursor)`` is read and each one is bound into the node
  (``node.bind``), which logs it for every peer that wants it, so it flows to gateways
  and from them to devices that declared interest. ``cursor`` is saved in the node's
  transaction; the store may forget (``store.ack``) only what a saved cursor covers. After
  a crash the node replays ``pending(cursor)``, so no local change is lost or left unsent.

Exactly once. ``enforce_once`` runs on the store with its durable outbox, so an effect fires
once across restarts and ``kill -9`` (docs/LASP.md). With several aggregator replicas every
replica runs the program (the dataflow and the queries), but only the one started with
``--trusted`` arms effects: ``ReplicaStore.enforce_once`` records the others as
``untrusted`` and never runs them. Replicas converge by exchanging deltas as node peers of
each other (``--peer-aggregators``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lasp_edge.crdts.lwwregister import LWWRegister
from lasp_edge.crdts.registry import by_tag
from lasp_edge.store import DataflowError, Effect, Store
from lasp_edge.sync import Node
from lasp_gateway import topics
from lasp_gateway.authz import owner_of
from lasp_gateway.mqtt_link import MqttLink
from lasp_gateway.nodedb import NodeDB
from lasp_gateway.service import SyncService, wall_ms

log = logging.getLogger("lasp_gateway.aggregator")

SERVERS = "servers"
UNTRUSTED = "untrusted"
STORE_ACK_MS = 1000  # how often the store may forget what the node has saved


class ReplicaStore(Store):
    """A ``Store`` that arms ``enforce_once`` effects only on the trusted replica."""

    def __init__(self, *args: Any, trusted: bool = True, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.trusted = trusted
        self.untrusted_effects: dict[str, Effect] = {}

    def enforce_once(
        self,
        name: str,
        threshold: Any,
        callback: Callable[[Any], Any],
        *,
        key: str | None = None,
        on_crash: str = "retry",
    ) -> Effect:
        if self.trusted:
            return super().enforce_once(name, threshold, callback, key=key, on_crash=on_crash)
        key = key or "%s@%r" % (name, threshold)
        eff = Effect(key, name, lambda _state: False, callback, on_crash)
        eff.status = UNTRUSTED
        self.untrusted_effects[key] = eff
        log.info("effect %r not armed: this replica was not started with --trusted", key)
        return eff


def travels(state: Any) -> bool:
    """Whether a state has a registered wire tag (store-local types, e.g. windows, do not)."""
    return by_tag(getattr(state, "TAG", None)) is type(state)


def schema_var(replica: Any) -> str:
    return "schema@%s" % (replica,)


def load_program(spec: str) -> Callable[[Store], Any]:
    """``"package.module:function"`` or ``"path/to/file.py:function"`` -> the function."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError("--program wants module:function, got %r" % spec)
    if target.endswith(".py") or os.sep in target:
        name = "lasp_program_" + os.path.splitext(os.path.basename(target))[0]
        loader_spec = importlib.util.spec_from_file_location(name, target)
        if loader_spec is None or loader_spec.loader is None:
            raise ValueError("cannot load %r" % target)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError("%s has no function %r" % (target, attr))
    return fn


@dataclass
class AggregatorConfig:
    replica: Any = "agg"
    db: str = "agg.db"
    broker: Any = None  # BrokerSettings
    program: Callable[[Store], Any] | None = None
    trusted: bool = False
    peer_aggregators: list[Any] = field(default_factory=list)
    sync_period_ms: int = 1000
    ack_timeout_ms: int = 3000
    max_timeout_ms: int = 60000
    max_payload: int = 256 * 1024
    max_message: int = 4 << 20
    synchronous: str = "full"
    max_batch: int = 1000


class Aggregator(SyncService):
    def __init__(self, config: AggregatorConfig) -> None:
        self.config = c = config
        self.store = ReplicaStore(c.replica, c.db, trusted=c.trusted, synchronous=c.synchronous)
        db: NodeDB | None = None
        try:
            if c.program is not None:
                c.program(self.store)
            db = NodeDB(c.db + ".sync", c.synchronous)
            db.claim(c.replica)
            snap = db.load()
            epoch = db.boot_epoch()
        except BaseException:
            if db is not None:
                db.close()
            self.store.close()
            raise
        node = Node(
            c.replica,
            epoch,
            interests=None,
            sync_period_ms=c.sync_period_ms,
            ack_timeout_ms=c.ack_timeout_ms,
            max_timeout_ms=c.max_timeout_ms,
            max_payload=c.max_payload,
            max_message=c.max_message,
            auto_declare=True,
        )
        if snap is not None:
            node.restore(snap)
            node.epoch = epoch
        super().__init__(node, db, c.max_batch)
        self.peer_aggregators = list(c.peer_aggregators)
        self.schema_name = schema_var(c.replica)
        self._schema_seen = -1
        self.cursor = int(db.meta_get("store_cursor", 0))
        self._saved_cursor = self.cursor
        self._store_acked_at = 0
        self._reconcile()
        self.link = MqttLink(
            "%s" % (c.replica,),
            c.broker,
            [topics.server_inbox(c.replica)],
            lambda t, p: self.deliver(SERVERS, t, p),
            lambda up: self.link_state(SERVERS, up),
        )
        log.info(
            "aggregator %r epoch %d%s: %d variables, %d known peers",
            c.replica,
            epoch,
            " (trusted)" if c.trusted else "",
            len(node.vars),
            len(node.peers),
        )

    def _reconcile(self) -> None:
        """At start: make node and store hold the same variables, replay unsent changes."""
        changed: dict[str, Any] = {}
        store_states = self.store.replicated()
        for name, state in store_states.items():
            if not travels(state):
                continue
            if name not in self.node.vars:
                self.node.declare(name, state.bottom())
            if self.node.bind(name, state):  # the node file was lost or is behind
                changed[name] = state
        for name, state in self.node.vars.items():
            if name not in store_states or not state <= store_states[name]:
                self._bind_store(name, state)
        meta = self.absorb(changed, 0)
        self.db.save(self.node, changed, meta)
        self._saved_cursor = self.cursor

    def _publish_schema(self, changed: dict[str, Any]) -> None:
        """Keep ``schema@<me>`` = ``{var: [tag, params]}`` of the shared variables.

        Gateways declare shared variables from it (exact type and parameters) before any
        device may write them; see authz.py, rule 4. Rewritten only when a variable
        appears, so it costs nothing in steady state.
        """
        name = self.schema_name
        if len(self.node.vars) == self._schema_seen:
            return
        self._schema_seen = len(self.node.vars)
        schema = {
            n: [v.TAG, v.params()]
            for n, v in self.node.vars.items()
            if owner_of(n) is None and travels(v)
        }
        reg = self.node.vars.get(name)
        cur = None if reg is None else reg.value()
        if isinstance(cur, dict) and cur.get("vars") == schema:
            return
        prev = cur.get("at_ms", 0) if isinstance(cur, dict) else 0
        ts = max(wall_ms(), prev + 1)
        if reg is None:
            self.node.declare(name, LWWRegister())
        d = self.node.update(name, "set", {"vars": schema, "at_ms": ts}, ts, self.node.replica)
        if not d.is_bottom():
            acc = changed.get(name)
            changed[name] = d if acc is None else acc.join(d)
            self._bind_store(name, d)

    # -- wiring ----------------------------------------------------------------------------

    def links(self) -> list[Any]:
        return [self.link]

    def sender_of(self, link: str, topic: str) -> Any:
        return topics.server_sender(topic, self.node.replica)

    def route(self, peer: Any, data: bytes) -> None:
        self.link.publish(topics.server_to(peer, self.node.replica), data)

    def on_link(self, link: str, connected: bool) -> None:
        if connected:
            known = set(self.node.peers) | set(self.peer_aggregators)
            for pid in sorted(known, key=repr):
                self.node.hello(pid, ask=True)

    # -- the bridge (see the module header) -------------------------------------------------

    def _bind_store(self, name: str, delta: Any) -> None:
        try:
            self.store.bind(name, delta, origin=self.node.replica)
        except DataflowError as exc:  # the data is in; a user function failed on it
            log.error("program failed on %r: %s", name, exc)

    def absorb(self, changed: dict[str, Any], now_ms: int) -> dict[str, Any]:
        for name in sorted(changed):
            self._bind_store(name, changed[name])
        # Local changes of the program (effects, bills, globals) into the node's log.
        for p in self.store.pending(self.cursor):
            self.cursor = p.seq
            if p.origin is not None or not travels(p.delta):
                continue  # came in through this node (it has it), or cannot travel
            if self.node.bind(p.name, p.delta):
                acc = changed.get(p.name)
                changed[p.name] = p.delta.copy() if acc is None else acc.join(p.delta)
        self._publish_schema(changed)
        if self._saved_cursor > 0 and now_ms - self._store_acked_at >= STORE_ACK_MS:
            self._store_acked_at = now_ms
            self.store.ack(self._saved_cursor)
        self._saved_cursor = self.cursor  # saved by the caller in this very transaction
        return {"store_cursor": self.cursor}

    def stop(self) -> None:
        super().stop()
        self.store.close()

    # -- reports (HTTP API) -----------------------------------------------------------------

    def gateway_reports(self) -> dict[Any, Any]:
        """``{gateway: its last status report}`` from the ``status@<gw>`` registers."""
        out = {}
        for name in self.store.variables():
            if name.startswith("status@"):
                value = self.store.query(name)
                if isinstance(value, dict):
                    out[value.get("gateway", name[7:])] = value
        return out

    def peers_report(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for pid in sorted(self.node.peers, key=repr):
                r = self.peer_report(pid)
                r["kind"] = "aggregator" if pid in self.peer_aggregators else "gateway"
                out.append(r)
            return out

    def triggers(self) -> dict[str, Any]:
        effects = self.store.effects()
        for key in self.store.untrusted_effects:
            effects.setdefault(key, UNTRUSTED)
        return {"trusted": self.store.trusted, "effects": effects}
