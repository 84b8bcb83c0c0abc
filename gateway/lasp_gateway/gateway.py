"""The gateway: device sessions in, durable in SQLite, delta groups up to the aggregator.

What it is. One sans-IO ``Node`` (replica ``gw`` by default, the id devices expect) whose
peers are the devices (on the device broker: ``le/u/<id>`` in, ``le/d/<id>`` out) and one or
more aggregators (on the uplink broker, the same or another one: ``le/g/<agg>/<gw>`` out,
``le/g/<gw>/<agg>`` in). Everything protocol-related (epochs, gaps and rebirth, interests,
splitting, resends) is the node's; this file only wires it (see ``service.py`` for the loop).

Guarantees, and where they come from:

* **Ack after durable.** A device's delta is acknowledged only after the batch that merged
  it is committed to SQLite (``NodeDB``) and, with ``synchronous="full"``, fsynced; ``kill
  -9`` (or, with full, a power loss) at any point loses nothing acked. A batch that only
  merged device DELTAs is committed as the messages themselves (``NodeDB.journal_inputs``),
  replayed at restart; the others, and at least every 2 s, as a full save. The fsync runs on
  its own thread (``fsync_apart``, see ``service.py``) while the next batch is merged;
  one ACK per device and batch (ACKs are cumulative).
* **Delta groups upward.** Device deltas are joined into the node's log segments; every
  ``forward_period_ms`` (the node's sync period) one DELTA per aggregator carries the join
  of everything its log holds for it, however many device messages that was.
* **Store and forward.** While the uplink or the aggregator is down, devices are still
  accepted and acknowledged; what the aggregator has not acknowledged stays in the log
  (on disk), joined into at most a few segments per variable and origin, so storage is
  bounded by the state, not by the outage. When the aggregator is back (its BIRTH, or our
  hello on reconnection) the backlog goes up as one delta group.
* **Authorization** (``authz.py``): a device may inflate only its own entries; a rejected
  delta is counted per device, logged, never merged.
* **Births.** On startup and on every (re)connection the gateway sends its BIRTH with
  ``ask=True`` to every device it knows and to its aggregators; births asked of it are
  answered by the node.
* **Status.** Every ``status_period_ms`` the gateway writes its report (per device: last
  seen, epoch, backlog, rejected; uplink state) into the LWW register ``status@<gw>``, which
  travels to the aggregator like any other variable (its ``/api/devices`` reads it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lasp_edge.crdts.lwwregister import LWWRegister
from lasp_edge.crdts.registry import by_tag
from lasp_edge.sync import EV_BIRTH, Node
from lasp_gateway import topics
from lasp_gateway.authz import DevicePolicy, restrict_interests
from lasp_gateway.mqtt_link import MqttLink
from lasp_gateway.nodedb import NodeDB
from lasp_gateway.service import SyncService, wall_ms
from lasp_gateway.settings import BrokerSettings

log = logging.getLogger("lasp_gateway.gateway")

DEVICES = "devices"
UPLINK = "uplink"
MAX_STRANGERS = 100  # senders without a session listed in the status report


@dataclass
class GatewayConfig:
    replica: Any = "gw"
    db: str = "gw.db"
    devices: BrokerSettings = field(default_factory=BrokerSettings)
    upstream: BrokerSettings | None = None  # None: the device broker
    upstream_ids: list[Any] = field(default_factory=lambda: ["agg"])
    upstream_interests: list[str] | None = None  # what to ask the aggregator for; None: all
    open_vars: list[str] = field(default_factory=list)
    forward_period_ms: int = 1000
    ack_timeout_ms: int = 3000
    max_timeout_ms: int = 60000
    max_payload: int = 8192  # devices accept 16 KiB by default: stay well below
    max_message: int = 1 << 20
    status_period_ms: int = 5000  # 0: no status register
    synchronous: str = "full"
    fsync_apart: bool = True  # with "full": fsync on its own thread, sends held until it ran
    max_batch: int = 1000
    commit_delay_ms: int = 20  # group commit: fewer fsyncs and flash writes, ACKs that late


class GatewayNode(Node):
    """A ``Node`` that asks its aggregators only for ``upstream_interests`` in its BIRTH.

    The node's own ``interests`` (what it accepts) stays None: devices may send any
    variable (the policy decides), while the aggregator need not ship everything it has.
    """

    upstreams: frozenset[Any] = frozenset()
    upstream_interests: list[str] | None = None

    def birth_message(self, pid: Any, ask: bool = True) -> bytes:
        if pid not in self.upstreams or self.upstream_interests is None:
            return super().birth_message(pid, ask)
        saved, self.interests = self.interests, self.upstream_interests
        try:
            return super().birth_message(pid, ask)
        finally:
            self.interests = saved


def status_var(replica: Any) -> str:
    return "status@%s" % (replica,)


def schema_var(replica: Any) -> str:
    return "schema@%s" % (replica,)


class Gateway(SyncService):
    log_origins_are_senders = True  # only receive() and status updates append to the log

    def __init__(self, config: GatewayConfig) -> None:
        self.config = c = config
        self.upstreams = frozenset(c.upstream_ids)
        db = NodeDB(c.db, c.synchronous, fsync_apart=c.fsync_apart)
        try:
            db.claim(c.replica)
            snap = db.load()
            epoch = db.boot_epoch()  # persisted before we say anything
        except BaseException:
            db.close()
            raise
        self.policy = DevicePolicy(c.open_vars, trusted=self.upstreams)
        node = GatewayNode(
            c.replica,
            epoch,
            interests=None,
            sync_period_ms=c.forward_period_ms,
            ack_timeout_ms=c.ack_timeout_ms,
            max_timeout_ms=c.max_timeout_ms,
            max_payload=c.max_payload,
            max_message=c.max_message,
            auto_declare=True,
            authorize=self.policy,
        )
        self.policy.known = lambda var: var in node.vars
        node.upstreams = self.upstreams
        node.upstream_interests = None
        if c.upstream_interests is not None:  # the schemas are always wanted
            node.upstream_interests = sorted(
                set(c.upstream_interests) | {schema_var(u) for u in self.upstreams}
            )
        if snap is not None:
            node.restore(snap)
            node.epoch = epoch
        for pid, p in node.peers.items():
            if pid not in self.upstreams:
                p.interests = restrict_interests(p.interests, pid)
        self.schema_names = {schema_var(u) for u in self.upstreams}
        self._declare_from_schemas(node)
        self.status_name = status_var(c.replica)
        if c.status_period_ms:
            node.declare(self.status_name, LWWRegister())
        super().__init__(node, db, c.max_batch)
        self.commit_delay_s = c.commit_delay_ms / 1000.0
        self._last_status = -(1 << 62)
        self._status_prev: Any = None
        first_up = sorted(self.upstreams, key=str)[0] if self.upstreams else None
        self.device_link = MqttLink(
            "%s-devices" % (c.replica,),
            c.devices,
            [topics.DEVICE_UP],
            lambda t, p: self.deliver(DEVICES, t, p),
            lambda up: self.link_state(DEVICES, up),
        )
        self.uplink = MqttLink(
            "%s-uplink" % (c.replica,),
            c.upstream or c.devices,
            [topics.server_inbox(c.replica)],
            lambda t, p: self.deliver(UPLINK, t, p),
            lambda up: self.link_state(UPLINK, up),
            will=None
            if first_up is None
            else (topics.server_to(first_up, c.replica), node.death_message()),
        )
        log.info(
            "gateway %r epoch %d: %d variables, %d known peers, log of %d segments",
            c.replica,
            epoch,
            len(node.vars),
            len(node.peers),
            node.log.size(),
        )

    # -- wiring ----------------------------------------------------------------------------

    def links(self) -> list[Any]:
        return [self.device_link, self.uplink]

    def sender_of(self, link: str, topic: str) -> Any:
        if link == DEVICES:
            peer = topics.device_of(topic)
            if peer == self.node.replica or peer in self.upstreams:
                raise ValueError("device topic %r uses a server's id" % topic)
            return peer
        peer = topics.server_sender(topic, self.node.replica)
        if peer not in self.upstreams:
            raise ValueError("%r is not a configured upstream" % (peer,))
        return peer

    def route(self, peer: Any, data: bytes) -> None:
        if peer in self.upstreams:
            self.uplink.publish(topics.server_to(peer, self.node.replica), data)
        else:
            self.device_link.publish(topics.device_down(peer), data)

    def on_link(self, link: str, connected: bool) -> None:
        if not connected:
            return
        if link == UPLINK:
            for up in sorted(self.upstreams, key=str):
                self.node.hello(up, ask=True)
        else:
            for pid in list(self.node.peers):
                if pid not in self.upstreams:
                    self.node.hello(pid, ask=True)

    def journaled(self, peer: Any) -> bool:
        # A device's DELTAs only merge (absorb acts on the aggregator's schemas alone).
        return peer not in self.upstreams

    def on_event(self, ev: tuple[Any, ...]) -> None:
        if ev[0] == EV_BIRTH and ev[1] not in self.upstreams:
            p = self.node.peers[ev[1]]
            p.interests = restrict_interests(p.interests, ev[1])

    # -- shared variables come from upstream ------------------------------------------------

    def _declare_from_schemas(self, node: Node) -> None:
        """Declare (bottom, exact type and parameters) every shared variable the upstream
        schemas name, so the node refuses device deltas of another type (authz rule 4)."""
        for sname in sorted(self.schema_names):
            reg = node.vars.get(sname)
            value = None if reg is None else reg.value()
            if not isinstance(value, dict) or not isinstance(value.get("vars"), dict):
                continue
            for name, spec in value["vars"].items():
                if name in node.vars or not isinstance(spec, list) or len(spec) != 2:
                    continue
                cls = by_tag(spec[0])
                try:
                    node.declare(name, cls(**spec[1]))
                except (TypeError, ValueError) as exc:
                    log.warning("schema %s: cannot declare %r: %s", sname, name, exc)

    # -- status ----------------------------------------------------------------------------

    def absorb(self, changed: dict[str, Any], now_ms: int) -> dict[str, Any]:
        if self.schema_names.intersection(changed):
            self._declare_from_schemas(self.node)
        period = self.config.status_period_ms
        if period and now_ms - self._last_status >= period:
            self._last_status = now_ms
            report = self.status_value()
            if report != self._status_prev:
                self._status_prev = report
                d = self._write_status(dict(report, at_ms=wall_ms()))
                if d is not None:
                    acc = changed.get(self.status_name)
                    changed[self.status_name] = d if acc is None else acc.join(d)
        return {}

    def _write_status(self, value: dict[str, Any]) -> Any:
        reg = self.node.vars[self.status_name]
        cur = reg.value()
        prev_ts = cur.get("at_ms", 0) if isinstance(cur, dict) else 0
        ts = max(value["at_ms"], prev_ts + 1)  # a clock stepping back must not lose reports
        value["at_ms"] = ts
        d = self.node.update(self.status_name, "set", value, ts, self.node.replica)
        return None if d.is_bottom() else d

    def status_value(self) -> dict[str, Any]:
        """The report (under the lock): what ``/api/devices`` shows for this gateway."""
        devices = {}
        # Every device session, plus the senders that never got one (garbage on a device
        # topic): those only if they were rejected, at most MAX_STRANGERS of them.
        strangers = sorted(
            (pid for pid, st in self.stats.items() if pid not in self.node.peers and st.rejected),
            key=lambda pid: -self.stats[pid].rejected,
        )[:MAX_STRANGERS]
        ids = set(self.node.peers) | set(strangers)
        for pid in sorted(ids - self.upstreams, key=repr):
            r = self.peer_report(pid)
            reason = r["last_reason"]
            devices[pid] = {
                "online": r["online"],
                "epoch": r["epoch"],
                "backlog": r["backlog"],
                "rejected": r["rejected"],
                "last_reason": None if reason is None else reason[:200],
                "last_seen_ms": r["last_seen_ms"],
            }
        uplink = {
            "connected": self.uplink.connected,
            "peers": {
                up: {
                    "online": bool(self.node.peers.get(up) and self.node.peers[up].online),
                    "backlog": self.backlog(up),
                }
                for up in sorted(self.upstreams, key=str)
            },
        }
        return {
            "gateway": self.node.replica,
            "epoch": self.node.epoch,
            "devices": devices,
            "uplink": uplink,
        }

    def report(self) -> dict[str, Any]:
        """Everything for the gateway's own HTTP API (takes the lock)."""
        with self.lock:
            out = self.status_value()
            out["counters"] = self.counters()
            out["devices_link_connected"] = self.device_link.connected
            out["db"] = self.db.sizes()
            return out
