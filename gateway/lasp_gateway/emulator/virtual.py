"""Virtual devices: the device runtime and the app's own code, thousands in one process.

A virtual device is a real ``lasp_device.device.Device`` (the runtime flashed on boards,
which runs unchanged on CPython) with a real ``FlashStore`` directory, driven by the app
object of the firmware example's own ``main.py`` (see ``apps.py``). Only two things are
emulated, because a thousand of them cannot exist in one process:

* **the MQTT connection.** One paho connection per device would mean a thousand network
  threads on two cores. Instead a few ``MqttLink`` connections (``Mux``) each carry a
  slice of the fleet: every device still publishes only on ``le/u/<id>`` and each
  connection subscribes ``le/d/<id>`` for exactly its own devices, so the broker and the
  gateway see the same topics as with real devices. ``VirtualTransport`` gives each
  ``Device`` the ``Transport`` interface it expects (``poll``/``online``/``publish``).
* **the button.** ``VirtualButton`` presses every ``period_ms`` +- 50%, from a seeded
  generator, like ``hw.Button`` on the unix port.

Message faults for virtual devices are applied here, per device and per message, because
a shared connection cannot be cut or faulted for one device at a TCP proxy; a device that
is cut (offline, partitioned) neither sends nor receives, and comes back through a fresh
"connection" (the device sees offline, then online, and says BIRTH again).

Everything below runs on the emulator's one loop thread, except ``Mux._on_message``
(paho's network thread), which only appends to a deque.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import random
from pathlib import Path
from typing import Any

from lasp_gateway.emulator.faults import MessageFaults
from lasp_gateway.mqtt_link import MqttLink
from lasp_gateway.settings import BrokerSettings


class Mux:
    """One broker connection shared by a slice of the virtual fleet."""

    def __init__(self, name: str, host: str, port: int, device_ids: list[Any]) -> None:
        self.inbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self.generation = 0  # bumped on every (re)connection
        settings = BrokerSettings.from_address("%s:%d" % (host, port), client_id=name)
        self.link = MqttLink(
            name,
            settings,
            ["le/d/%s" % (d,) for d in device_ids],
            on_message=lambda topic, payload: self.inbox.append((topic, payload)),
            on_state=self._on_state,
            reconnect_max_s=1,
        )

    def _on_state(self, up: bool) -> None:
        if up:
            self.generation += 1

    @property
    def connected(self) -> bool:
        return self.link.connected

    def start(self) -> Mux:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()


class VirtualButton:
    """A simulated viewer: ``pressed(now)`` is True about every ``period_ms`` (+-50%)."""

    def __init__(self, period_ms: int, rng: random.Random, now: int) -> None:
        self.period_ms = period_ms
        self.rng = rng
        self.next = now + rng.randrange(max(1, period_ms))

    def pressed(self, now: int) -> bool:
        if now < self.next:
            return False
        half = self.period_ms // 2
        self.next = now + half + self.rng.randrange(self.period_ms + 1)
        return True


class DelayLine:
    """Messages due later (delay, reorder, duplicate), in due order, then FIFO."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Any, Any]] = []
        self.seq = itertools.count()

    def put(self, due: float, target: Any, item: Any) -> None:
        heapq.heappush(self.heap, (due, next(self.seq), target, item))

    def due(self, now: float) -> list[tuple[Any, Any]]:
        out = []
        while self.heap and self.heap[0][0] <= now:
            _, _, target, item = heapq.heappop(self.heap)
            out.append((target, item))
        return out

    def __len__(self) -> int:
        return len(self.heap)


class VirtualTransport:
    """What ``Device.attach`` needs, over a ``Mux``; faults applied per message.

    ``online`` is True when the mux is connected, the device is not cut, and the device
    has already seen this connection: a reconnection (or the end of a cut) always shows
    the device one ``offline`` poll first, so it says BIRTH again, as after a real reconnect.
    """

    def __init__(
        self,
        mux: Mux,
        up_topic: str,
        faults: MessageFaults,
        outbox: DelayLine,
        clock: Any,
    ) -> None:
        self.mux = mux
        self.up_topic = up_topic
        self.faults = faults
        self.outbox = outbox
        self.clock = clock  # seconds, the emulator's monotonic clock
        self.cut = False
        self.seen_generation = -1
        self.on_message: Any = None
        self.published = 0

    @property
    def online(self) -> bool:
        return not self.cut and self.mux.connected and self.seen_generation == self.mux.generation

    def poll(self, now_ms: int) -> None:
        if self.cut or not self.mux.connected:
            self.seen_generation = -1  # the device is shown offline
        elif self.seen_generation != self.mux.generation:
            # a new connection: adopt it only after the device saw one offline poll
            self.seen_generation = self.mux.generation if self.seen_generation == -1 else -1

    def set_will(self, topic: str, payload: Any) -> None:  # a shared connection has no will
        pass

    def subscribe(self, topic: str) -> None:  # the mux subscribes le/d/<id> for us
        pass

    def publish(self, topic: str, data: bytes) -> bool:
        if not self.online:
            return False
        for delay in self.faults.decide():
            if delay <= 0:
                self.mux.link.publish(topic, data)
            else:
                self.outbox.put(self.clock() + delay, self.mux, (topic, data))
        self.published += 1
        return True

    def close(self) -> None:
        pass

    def set_cut(self, cut: bool) -> None:
        self.cut = cut


def store_dir(workdir: Path, device_id: Any) -> Path:
    return Path(workdir) / "devices" / str(device_id)
