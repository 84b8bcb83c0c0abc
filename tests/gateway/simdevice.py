"""SimDevice: a device for tests, made of the real parts minus the hardware.

A CPython ``lasp_edge.sync.Node`` (the same protocol engine the MicroPython runtime wraps)
behind an ``MqttLink`` (paho), speaking on the device topics: publishes on ``le/u/<id>``,
listens on ``le/d/<id>``, DEATH as its last will, BIRTH on every connection. It keeps its
state in memory (it never crashes in these tests, so everything it counted is "durable"
and kept until the gateway acknowledges it), and it is its own oracle: ``counted`` is every
impression it made, per ad.

Variables, as in firmware_examples/ad_counter: ``impressions`` (AWMap ad -> GCounter, only
this device's slot), ``ads`` (AWSet, read only: the one interest).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from lasp_edge import AWMap, AWSet
from lasp_edge.sync import EV_ACKED, EV_MERGED, EV_REJECTED, Node
from lasp_edge.sync import messages as M
from lasp_gateway import topics
from lasp_gateway.mqtt_link import MqttLink
from lasp_gateway.settings import BrokerSettings


class SimDevice:
    def __init__(
        self,
        device_id: Any,
        port: int,
        gateway: Any = "gw",
        interests: Any = ("ads",),
        sync_period_ms: int = 50,
        ack_timeout_ms: int = 400,
        max_timeout_ms: int = 1500,
        max_payload: int = 1024,
        username: str | None = None,
        password: str | None = None,
        epoch: int = 1,
        auto_declare: bool = False,
        start: bool = True,
    ) -> None:
        self.id = device_id
        self.gateway = gateway
        self.node = Node(
            device_id,
            epoch,
            interests=None if interests is None else list(interests),
            sync_period_ms=sync_period_ms,
            ack_timeout_ms=ack_timeout_ms,
            max_timeout_ms=max_timeout_ms,
            max_payload=max_payload,
            auto_declare=auto_declare,
        )
        self.node.declare("impressions", AWMap("gcounter"))
        self.node.declare("ads", AWSet())
        self.counted: dict[str, int] = {}
        self.rejected: list[str] = []
        self.acks = 0
        self.full_sends = 0  # DELTAs with full state: the gateway had lost what it acked
        self.lock = threading.Lock()
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self.link = MqttLink(
            "sim-%s" % (device_id,),
            BrokerSettings(port=port, username=username, password=password, keepalive=10),
            [topics.device_down(device_id)],
            lambda _t, p: self._inbox.put(("msg", p)),
            lambda up: self._inbox.put(("link", up)),
            will=(topics.device_up(device_id), self.node.death_message()),
        )
        self._thread = threading.Thread(target=self._run, daemon=True, name="sim-%s" % device_id)
        if start:
            self.start()

    def start(self) -> SimDevice:
        self.link.start()
        self._thread.start()
        return self

    def now(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    # -- the app ---------------------------------------------------------------------------

    def count(self, ad: str, n: int = 1) -> None:
        with self.lock:
            self.node.update("impressions", "update", ad, "increment", self.id, n)
            self.counted[ad] = self.counted.get(ad, 0) + n

    def write(self, var: str, state: Any) -> None:
        """Put any state into a variable (declares it): for authorization tests."""
        with self.lock:
            self.node.bind(var, state)

    def ads(self) -> set[Any]:
        with self.lock:
            return set(self.node.vars["ads"].value())

    def synced(self) -> bool:
        """Everything this device made has been acknowledged by the gateway."""
        with self.lock:
            p = self.node.peers.get(self.gateway)
            if p is None or p.inflight is not None:
                return False
            log = self.node.log
            return not log.pending(p.acked, log.last_seq, p.id, p.interests)

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=0.02)
            except queue.Empty:
                item = None
            with self.lock:
                while item is not None:
                    self._handle(item)
                    try:
                        item = self._inbox.get_nowait()
                    except queue.Empty:
                        item = None
                self.node.tick(self.now())
                out = self.node.take()
            for _peer, data in out:
                if data[2] == M.DELTA and M.decode(data).full:
                    self.full_sends += 1
                self.link.publish(topics.device_up(self.id), data)

    def _handle(self, item: tuple[str, Any]) -> None:
        kind, arg = item
        if kind == "link":
            if arg:
                self.node.hello(self.gateway, ask=True)
            return
        for ev in self.node.receive(arg, self.now(), self.gateway):
            if ev[0] == EV_MERGED:
                self.node.commit(ev[3])  # in memory: durable at once
            elif ev[0] == EV_ACKED:
                self.acks += 1
            elif ev[0] == EV_REJECTED:
                self.rejected.append(ev[2])

    def publish_raw(self, payload: bytes, topic: str | None = None) -> bool:
        """Send arbitrary bytes (bad-input tests), on its own uplink unless told otherwise."""
        return self.link.publish(topic or topics.device_up(self.id), payload)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.link.stop()


def oracle(devices: list[SimDevice]) -> dict[str, int]:
    """Total impressions per ad over ``devices``: what every replica must end up with."""
    out: dict[str, int] = {}
    for d in devices:
        with d.lock:
            for ad, n in d.counted.items():
                out[ad] = out.get(ad, 0) + n
    return out
