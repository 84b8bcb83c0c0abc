"""Real mosquitto brokers and paho watchers for tests (a helper module, not a conftest).

Each ``Mosquitto`` runs its own broker on a loopback port with a throw-away config, so tests
never depend on a system broker and can stop, pause (SIGSTOP) and restart it on the same
port. Import the fixtures into a test module to use them::

    from mosquitto import Watcher, mosquitto_broker_fixture  # noqa: F401

(the fixture is named ``mosquitto_broker``; importing it under its function name keeps the
test parameters from shadowing an import).

A missing mosquitto binary skips the test, except under CI=true, where it fails: CI must
not pass by skipping the tests that talk to a real broker.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from lasp_gateway.emulator.services import find_mosquitto, free_port, stop_process

START_TIMEOUT_S = 10.0


def require_or_skip(what: str, path: str | None) -> str:
    """``path`` if usable; else skip, or fail under CI (a skip there would hide a gap)."""
    if path:
        return path
    msg = f"{what} not found"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg} (CI=true: required)")
    pytest.skip(msg)


class Mosquitto:
    """One broker process on 127.0.0.1:``port``; ``start()`` again reuses the port."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Mosquitto:
        assert self.proc is None, "already running"
        self.starts += 1
        conf = self.workdir / f"mosquitto-{self.port}-{self.starts}.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        log = open(self.workdir / f"mosquitto-{self.port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mosquitto did not start listening") from None
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGCONT)  # in case a test paused it
        stop_process(proc, 5)

    def pause(self) -> None:
        """SIGSTOP: connections stay open (the kernel still ACKs) but nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        logs = sorted(self.workdir.glob(f"mosquitto-{self.port}-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)


@pytest.fixture(name="mosquitto_broker")
def mosquitto_broker_fixture(tmp_path: Path):
    """A running broker of its own for one test; stopped afterwards."""
    broker = Mosquitto(require_or_skip("mosquitto", find_mosquitto()), tmp_path).start()
    try:
        yield broker
    finally:
        broker.stop()


class Watcher:
    """A paho-mqtt (VERSION2 callbacks) subscriber that queues what it receives."""

    def __init__(self, port: int, *topics: str, client_id: str = "") -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._subscribed: queue.Queue[object] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        for topic in topics:
            self.subscribe(topic)

    def _on_message(self, client, userdata, msg) -> None:
        self.messages.put((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subscribed.put(mid)

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> None:
        """Subscribe and wait for the SUBACK, so nothing published afterwards is missed."""
        result, mid = self.client.subscribe(topic, qos)
        assert result == paho.MQTT_ERR_SUCCESS, result
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no SUBACK for {topic!r}")
            try:
                if self._subscribed.get(timeout=left) == mid:
                    return
            except queue.Empty:
                continue

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 5.0) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout)
        assert info.is_published(), f"publish to {topic!r} not acknowledged"

    def expect(self, topic: str, payload: bytes | None = None, timeout: float = 10.0):
        """The next message on ``topic`` (matching ``payload`` if given); others are skipped."""
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, bytes, bool]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no message {topic!r} {payload!r}; saw {seen!r}")
            try:
                got = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if got[0] == topic and (payload is None or got[1] == payload):
                return got
            seen.append(got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
