"""The single-thread MQTT loop (``LinkLoop``) against a real mosquitto.

What must hold: every message arrives once and in order, through paho's ``on_message``;
a turn reads what piled up as one batch, but never more than ``max_packets``, so writes and
timers keep their turn under a flood; every publish goes through paho's ``publish``, from
the loop's thread or from another one (which wakes the loop); a connection that breaks is
taken as lost and reconnected; and a broker restart is survived by reconnecting with
backoff.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import paho.mqtt.client as paho
from gw_helpers import wait_until

from lasp_gateway.mqtt_link import LinkLoop, MqttLink
from lasp_gateway.settings import BrokerSettings


class LoopThread:
    """A ``LinkLoop`` over one link, run by its own thread as a service runs it: poll, then
    publish what the test handed over (on the loop's thread), then flush. ``per_poll``
    records how many messages each poll delivered."""

    def __init__(
        self, port: int, subs: list[str], max_packets: int = 1000, idle_s: float = 0.05
    ) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.states: list[bool] = []
        self.link = MqttLink(
            "looptest",
            BrokerSettings(port=port),
            subs,
            lambda t, p: self.got.append((t, p)),
            on_state=self.states.append,
        )
        self.via_paho = 0  # messages paho handed to on_message
        paho_on_message = self.link._client.on_message

        def counting(c: Any, u: Any, m: Any) -> None:
            self.via_paho += 1
            paho_on_message(c, u, m)

        self.link._client.on_message = counting
        self.loop = LinkLoop([self.link], max_packets=max_packets)
        self.idle_s = idle_s
        self.per_poll: list[int] = []
        self.polls = 0
        self._stop = threading.Event()
        self.paused = threading.Event()
        self.outbox: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.loop.start()
        while not self._stop.is_set():
            if self.paused.is_set():
                self._stop.wait(0.01)
                continue
            before = len(self.got)
            self.loop.poll(self.idle_s)
            self.polls += 1
            if len(self.got) > before:
                self.per_poll.append(len(self.got) - before)
            with self.lock:
                out, self.outbox = self.outbox, []
            for topic, payload in out:
                self.link.publish(topic, payload)
            self.loop.flush()

    def send(self, topic: str, payload: bytes) -> None:
        """Publish on the loop's thread (at its next turn)."""
        with self.lock:
            self.outbox.append((topic, payload))
        self.loop.wake()

    def close(self) -> None:
        self._stop.set()
        self.loop.wake()
        self.thread.join(60)
        self.loop.close()


def paho_client(port: int, on_message: Any = None, subs: tuple[str, ...] = ()) -> Any:
    """A plain paho client on its own network thread, subscribed once connected."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2)
    ready = threading.Event()

    def on_connect(cl: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        for t in subs:
            cl.subscribe(t)
        ready.set()

    c.on_connect = on_connect
    if on_message is not None:
        c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert ready.wait(60), "paho test client did not connect"
    return c


def close_client(c: Any) -> None:
    c.disconnect()
    c.loop_stop()


def test_messages_arrive_once_in_order_read_in_bounded_batches(mosquitto_broker):
    """3000 messages pile up in the socket while the loop is paused: they then arrive once,
    in order, all through paho's on_message, read as batches of at most ``max_packets``."""
    port = mosquitto_broker.port
    lt = LoopThread(port, ["t/in/+"], max_packets=500)
    pub = watcher = None
    try:
        assert lt.link.wait_connected(60)
        pub = paho_client(port)
        wait_until(
            lambda: pub.publish("t/in/probe", b"probe") and lt.got, 60, "subscription active"
        )
        seen = []
        watcher = paho_client(port, lambda c, u, m: seen.append(m.payload), ("t/in/+",))
        wait_until(lambda: pub.publish("t/in/probe", b"probe") and seen, 60, "watcher ready")
        n = 3000
        lt.paused.set()  # let them pile up in the kernel, as under load
        lt.per_poll.clear()
        del seen[:]
        for i in range(n):
            pub.publish("t/in/%d" % (i % 7), b"m%06d" % i)
        # The broker forwarded all of them to the watcher, so to the loop's socket too.
        wait_until(lambda: b"m%06d" % (n - 1) in seen, 60, "the broker forwarded them")
        lt.paused.clear()
        wait_until(lambda: sum(t != "t/in/probe" for t, _p in lt.got) >= n, 60, "all messages")
        assert [p for t, p in lt.got if t != "t/in/probe"] == [b"m%06d" % i for i in range(n)]
        assert [t for t, p in lt.got if p == b"m000008"] == ["t/in/1"]
        assert lt.via_paho == len(lt.got)  # nothing reached us behind paho's back
        # One poll read a whole batch (a loop reading one packet per turn would give 1s),
        # and none read more than its bound.
        assert max(lt.per_poll) == 500, lt.per_poll
        assert sum(lt.per_poll) >= n
    finally:
        for c in (pub, watcher):
            if c is not None:
                close_client(c)
        lt.close()
    assert not lt.thread.is_alive()


def test_publishes_from_any_thread_leave_through_paho_in_order(mosquitto_broker):
    """From the loop's thread (written at the end of its turn) and from another thread
    (which wakes an idle loop: it would otherwise sleep for minutes), packets of 1, 2 and 3
    length bytes all go through paho's publish and arrive intact and in order."""
    got: list[bytes] = []
    port = mosquitto_broker.port
    watcher = paho_client(port, lambda c, u, m: got.append(m.payload), ("t/out",))
    lt = LoopThread(port, [], idle_s=600.0)
    try:
        assert lt.link.wait_connected(60)
        wait_until(lambda: lt.send("t/out", b"probe") or got, 60, "watcher subscribed")
        through_paho: list[bytes] = []
        paho_publish = lt.link._client.publish
        lt.link._client.publish = lambda t, p, *a, **k: (
            through_paho.append(p) or paho_publish(t, p, *a, **k)
        )
        sizes = [0, 1, 126, 127, 128, 16383, 16384, 70000]
        want = [(b"a%d:" % i).ljust(n, b"x") for i, n in enumerate(sizes)]
        for p in want:
            lt.send("t/out", p)
        real = lambda: [p for p in got if p != b"probe"]  # noqa: E731
        wait_until(lambda: len(real()) >= len(want), 60, "sent from the loop's thread")
        assert real() == want
        del got[:]
        polls = lt.polls
        other = [b"o%d" % i for i in range(50)]
        for p in other:
            assert lt.link.publish("t/out", p)  # this thread is not the loop's
        wait_until(lambda: len(got) >= len(other), 60, "sent from another thread")
        assert got == other
        assert lt.polls > polls  # woken, not timed out
        assert [p for p in through_paho if p != b"probe"] == want + other
    finally:
        close_client(watcher)
        lt.close()
    assert not lt.thread.is_alive()


def test_a_broken_connection_is_taken_as_lost_and_reconnected(mosquitto_broker):
    """The TCP connection dies under the loop (here: shut down from outside): the link says
    so, refuses publishes instead of queueing them, reconnects, resubscribes, and messages
    flow again."""
    port = mosquitto_broker.port
    lt = LoopThread(port, ["t/in/+"])
    pub = None
    try:
        assert lt.link.wait_connected(60)
        pub = paho_client(port)
        wait_until(lambda: pub.publish("t/in/a", b"before") and lt.got, 60, "subscribed")
        sock = lt.link._client.socket()
        sock.shutdown(socket.SHUT_RDWR)
        wait_until(lambda: False in lt.states, 60, "the loss noticed")
        wait_until(lambda: lt.link.connected and lt.link.connects == 2, 60, "reconnected")
        assert lt.states[:3] == [True, False, True]
        assert lt.link._client.socket() is not sock
        del lt.got[:]
        wait_until(
            lambda: pub.publish("t/in/b", b"after") and (("t/in/b", b"after") in lt.got),
            60,
            "messages after the reconnect",
        )
    finally:
        if pub is not None:
            close_client(pub)
        lt.close()


def test_the_link_survives_a_broker_restart(mosquitto_broker):
    got: list[bytes] = []
    port = mosquitto_broker.port
    lt = LoopThread(port, ["t/in/+"])
    watcher = None
    try:
        assert lt.link.wait_connected(60)
        mosquitto_broker.stop()
        wait_until(lambda: not lt.link.connected, 60, "link noticed the broker is gone")
        assert not lt.link.publish("t/out", b"lost")  # refused, not queued
        assert lt.link.dropped == 1
        mosquitto_broker.start()  # the connector retries with backoff meanwhile
        wait_until(lambda: lt.link.connected, 60, "link reconnected")
        assert lt.link.connects == 2
        watcher = paho_client(port, lambda c, u, m: got.append(m.payload), ("t/out",))
        wait_until(
            lambda: lt.send("t/out", b"again") or b"again" in got, 60, "publishes after restart"
        )
        assert b"lost" not in got
        wait_until(lambda: watcher.publish("t/in/x", b"in again") and lt.got, 60, "resubscribed")
        assert set(lt.got) == {("t/in/x", b"in again")}
    finally:
        if watcher is not None:
            close_client(watcher)
        lt.close()
    assert not lt.thread.is_alive()
