"""The one module that talks to paho-mqtt (2.x, VERSION2 callbacks). Nothing paho leaks out.

An ``MqttLink`` is one broker connection: it connects in the background and keeps
reconnecting, (re)subscribes its topics on every connection, hands each received message
to ``on_message(topic, payload)`` and each connection change to ``on_state(connected)``,
and publishes bytes. The services never see a paho type, so swapping the client (or
testing without a broker) touches only this file.

Why QoS 0 by default: the sync protocol acknowledges and resends by itself (docs/PROTOCOL.md
§4, rules 2 and 3), so broker-level retries buy nothing but memory; and paho queues QoS>0
publishes in RAM while disconnected, which would grow without bound during an uplink
outage. A publish while disconnected simply returns False and the protocol repairs it.

Callbacks run on paho's network thread; they must be quick and must not block (the
services only enqueue).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

from lasp_gateway.settings import BrokerSettings

log = logging.getLogger("lasp_gateway.mqtt")


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
        self._on_message_cb = on_message
        self._on_state_cb = on_state
        self._connected = threading.Event()
        self.connects = 0
        self.published = 0
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

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> MqttLink:
        """Connect in the background (retrying until the broker answers)."""
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        self._client.loop_start()
        self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
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
        """Send; False when not connected (the protocol resends; nothing is queued here)."""
        if not self._connected.is_set():
            self.dropped += 1
            return False
        info = self._client.publish(topic, payload, qos=self.qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.dropped += 1
            return False
        self.published += 1
        return True

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            log.warning("%s: broker %s refused: %s", self.name, self.settings.describe(), reason)
            return
        for topic in self.subscriptions:
            client.subscribe(topic, qos=self.qos)
        self.refused = None
        self.connects += 1
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
        self._on_message_cb(msg.topic, bytes(msg.payload))
