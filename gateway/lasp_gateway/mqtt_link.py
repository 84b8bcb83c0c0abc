"""The one module that talks to paho-mqtt (2.x, VERSION2 callbacks). Nothing paho leaks out.

An ``MqttLink`` is one broker connection: it connects in the background and keeps
reconnecting (1 s, doubling up to ``reconnect_max_s``), (re)subscribes its topics on every
connection, hands each received message to ``on_message(topic, payload)`` and each
connection change to ``on_state(connected)``, and publishes bytes. The services never see
a paho type, so swapping the client (or testing without a broker) touches only this file.

Why QoS 0 by default: the sync protocol acknowledges and resends by itself (docs/PROTOCOL.md
§4, rules 2 and 3), so broker-level retries buy nothing but memory; and paho queues QoS>0
publishes in RAM while disconnected, which would grow without bound during an uplink
outage. A publish while disconnected simply returns False and the protocol repairs it.

Only paho's public API is used: every received message reaches us through paho's
``on_message`` and every publish goes through ``Client.publish``, so a paho upgrade cannot
silently change what we read or write.

Two ways to run a link:

* ``start()``: paho's own network thread (``loop_start``). Callbacks run on that thread;
  they must be quick and must not block. Tests and small tools use this.
* ``LinkLoop``: the caller's thread drives the sockets of several links through paho's
  documented external-loop API (``socket()``, ``loop_read/write/misc``, ``want_write``,
  ``on_socket_register_write``). The services use it because it is cheaper per message:
  one thread reads a batch, processes it, commits it and publishes the ACKs, so there is no
  queue hand-off and thread wake-up between a network thread and the service per message,
  and no wake-up byte per publish (in threaded mode paho writes one to a socketpair for
  every publish so that its thread leaves ``select``; without a paho thread it has none).
  Only the connecting is done elsewhere: a small thread per link calls ``reconnect()`` (a
  blocking TCP and TLS connect) with backoff, so an unreachable uplink never stalls the
  loop that acknowledges devices.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

from lasp_gateway.settings import BrokerSettings

log = logging.getLogger("lasp_gateway.mqtt")

RECONNECT_MIN_S = 1.0


def configure_client(client: Any, s: BrokerSettings) -> None:
    """Apply credentials and TLS from ``s`` to a paho client (before it connects)."""
    if s.username is not None:
        client.username_pw_set(s.username, s.password)
    if s.uses_tls:
        client.tls_set(
            ca_certs=s.tls_ca,
            certfile=s.tls_cert,
            keyfile=s.tls_key,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        if s.tls_insecure:
            client.tls_insecure_set(True)


def tls_pending(sock: Any) -> bool:
    """True if TLS holds decrypted bytes not yet read: ``select`` cannot see those (they
    left the kernel already), so a reader that waits on ``select`` alone would stall."""
    pending = getattr(sock, "pending", None)
    return bool(pending()) if pending is not None else False


def readable_now(sock: Any) -> bool:
    """Something to read without waiting (``loop_read`` cannot tell: it returns success both
    when it read a packet and when nothing was there)."""
    if tls_pending(sock):
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0.0)
    except (OSError, ValueError):  # closed under us: let paho's next read see it
        return True
    return bool(readable)


class MqttLink:
    """One broker connection with automatic reconnection; see the module header."""

    def __init__(
        self,
        name: str,
        settings: BrokerSettings,
        subscriptions: list[str],
        on_message: Callable[[str, bytes], None],
        on_state: Callable[[bool], None] | None = None,
        will: tuple[str, bytes] | None = None,
        qos: int = 0,
        reconnect_max_s: int = 5,
    ) -> None:
        self.name = name
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.qos = qos
        self.reconnect_max_s = reconnect_max_s
        self._on_message_cb = on_message
        self._on_state_cb = on_state
        self._connected = threading.Event()
        self.connects = 0
        self.published = 0
        self.received = 0  # messages handed to ``on_message`` (LinkLoop reads by it)
        self.dropped = 0  # publishes refused because we were disconnected
        self.refused: str | None = None  # the broker's last CONNACK refusal, if any
        cid = settings.client_id or "lasp-%s-%d" % (name, os.getpid())
        c = self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True
        )
        configure_client(c, settings)
        if will is not None:
            c.will_set(will[0], will[1], qos=qos, retain=False)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        c.max_queued_messages_set(10000)  # never grow without bound (QoS>0 only)
        self._started = False
        # LinkLoop mode: the connector thread owns the client until ``_live`` is set; the
        # loop owns it while it is.
        self._loop: LinkLoop | None = None
        self._live = False
        self._need_connect = threading.Event()
        self._closing = threading.Event()
        self._connector: threading.Thread | None = None
        self._delay = RECONNECT_MIN_S

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> MqttLink:
        """Connect in the background on paho's own thread (retrying until the broker answers)."""
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        self._client.loop_start()
        self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._loop is not None:
            self._stop_looped()
            return
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- traffic ---------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes) -> bool:
        """Send; False when not connected (the protocol resends; nothing is queued here).

        Under a ``LinkLoop``, paho only queues the packet: the loop writes it (at the end of
        the turn on its own thread, or woken by ``on_socket_register_write`` from another)."""
        if not self._connected.is_set():
            self.dropped += 1
            return False
        info = self._client.publish(topic, payload, qos=self.qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.dropped += 1
            return False
        self.published += 1
        return True

    # -- paho callbacks (network thread, or the LinkLoop's) --------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            log.warning("%s: broker %s refused: %s", self.name, self.settings.describe(), reason)
            return
        for topic in self.subscriptions:
            client.subscribe(topic, qos=self.qos)
        self.refused = None
        self.connects += 1
        self._delay = RECONNECT_MIN_S
        self._connected.set()
        log.info("%s: connected to %s", self.name, self.settings.describe())
        if self._on_state_cb is not None:
            self._on_state_cb(True)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            log.warning(
                "%s: disconnected from %s (%s)", self.name, self.settings.describe(), reason
            )
            if self._on_state_cb is not None:
                self._on_state_cb(False)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.received += 1
        self._on_message_cb(msg.topic, bytes(msg.payload))

    # -- LinkLoop mode ---------------------------------------------------------------------

    def _attach(self, loop: LinkLoop) -> None:
        self._loop = loop
        c = self._client
        # Set, it also stops paho from writing inside ``publish``: the loop writes.
        c.on_socket_register_write = self._register_write
        c.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        self._started = True
        self._need_connect.set()
        self._connector = threading.Thread(
            target=self._connect_forever, name="lasp-connect-%s" % self.name, daemon=True
        )
        self._connector.start()

    def _register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        loop = self._loop
        if loop is not None and threading.get_ident() != loop.thread_id:
            loop.wake()  # a publish from another thread: the loop writes it

    def _connect_forever(self) -> None:
        """The connector thread: (re)connect whenever the loop lost the socket, with backoff
        (1 s, doubling up to ``reconnect_max_s``; reset by a CONNACK), as paho's own loop."""
        first = True
        while True:
            self._need_connect.wait()
            if self._closing.is_set():
                return
            if not first:
                delay = self._delay
                self._delay = min(delay * 2, float(self.reconnect_max_s))
                if self._closing.wait(delay):
                    return
            first = False
            try:
                self._client.reconnect()
            except Exception as exc:  # OSError, TLS errors...: try again later
                log.debug("%s: connect to %s failed: %s", self.name, self.settings.describe(), exc)
                continue
            self._need_connect.clear()
            self._live = True
            assert self._loop is not None
            self._loop.wake()

    def _lost(self) -> None:
        """The loop saw paho close the socket: hand the client back to the connector."""
        self._live = False
        if not self._closing.is_set():
            self._need_connect.set()

    def _stop_looped(self) -> None:
        """Stop (the loop no longer runs): disconnect politely, end the connector."""
        self._closing.set()
        self._need_connect.set()
        if self._connector is not None:
            self._connector.join(10)
        c = self._client
        if self._live and c.socket() is not None:
            try:
                c.disconnect()
                c.loop_write()  # DISCONNECT leaves, and paho closes the socket
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.debug("%s: disconnect: %s", self.name, exc)
            sock = c.socket()
            if sock is not None:
                sock.close()
        self._live = False
        self._connected.clear()


class LinkLoop:
    """Drives the sockets of several ``MqttLink``s from one thread (see the module header).

    ``poll(timeout)`` waits until a socket is readable (or writable with output queued), a
    connector attached a socket, ``wake()`` was called, or ``timeout`` passed; it then reads
    what arrived, up to ``max_packets`` per link (paho calls each link's ``on_message``
    meanwhile), writes what paho queued and lets paho keep its keepalive. ``flush()``
    writes what the thread published since. Both must be called from one thread, the one
    that called ``start``.
    """

    def __init__(self, links: list[MqttLink], max_packets: int = 1000) -> None:
        self.links = list(links)
        self.max_packets = max_packets
        self.thread_id: int | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = False
        self._closed = False

    def start(self) -> LinkLoop:
        """Attach every link (their connectors start connecting); the calling thread is the
        loop's from now on. Nothing happens after ``close``."""
        if self._closed:
            return self
        self.thread_id = threading.get_ident()
        for link in self.links:
            link._attach(self)
        return self

    def wake(self) -> None:
        """Make ``poll`` return soon (any thread)."""
        if self._woken:
            return
        self._woken = True
        with contextlib.suppress(OSError):  # full (BlockingIOError): a wake is pending
            self._wake_w.send(b"w")

    def close(self) -> None:
        """Stop the links (the loop's thread has returned, or never started)."""
        self._closed = True
        for link in self.links:
            link.stop()
        self._wake_r.close()
        self._wake_w.close()

    def poll(self, timeout: float) -> None:
        live: list[tuple[MqttLink, Any]] = []
        rlist: list[Any] = [self._wake_r]
        wlist: list[Any] = []
        for link in self.links:
            if not link._live:
                continue
            sock = link._client.socket()
            if sock is None:
                link._lost()
                continue
            live.append((link, sock))
            rlist.append(sock)
            if link._client.want_write():
                wlist.append(sock)
            if tls_pending(sock):
                timeout = 0.0
        try:
            readable, _, _ = select.select(rlist, wlist, [], timeout)
        except (OSError, ValueError):  # a socket closed under us: the checks below see it
            readable = []
        if self._wake_r in readable:
            self._woken = False
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        for link, sock in live:
            c = link._client
            if sock in readable or tls_pending(sock):
                self._read(link, sock)
            if c.socket() is not None and c.want_write():
                c.loop_write()
            if c.socket() is not None:
                c.loop_misc()  # keepalive: PINGREQ due, or PINGRESP overdue
            if c.socket() is None:
                link._lost()

    def _read(self, link: MqttLink, sock: Any) -> None:
        """Every packet that arrived, up to ``max_packets`` (so that writes and timers get
        their turn under a flood). Paho's ``loop_read`` reads one QoS 0 packet per call and
        reports "nothing there" as success. So while calls keep delivering messages the
        next call simply tries (an empty socket answers at once); only a call that
        delivered none (nothing there, a partial packet, or a packet that is not a message)
        asks the socket whether more waits: one ``select`` per batch, not per message. A
        connection paho finds lost (end of stream, error) is closed by paho itself."""
        c = link._client
        for _ in range(self.max_packets):
            before = link.received
            c.loop_read()
            if c.socket() is not sock:
                return
            if link.received == before and not readable_now(sock):
                return

    def flush(self) -> None:
        """Write what was published since the last poll (paho queued it)."""
        for link in self.links:
            if not link._live:
                continue
            c = link._client
            if c.want_write():
                c.loop_write()
            if c.socket() is None:
                link._lost()
