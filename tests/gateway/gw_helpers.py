"""Helpers and fixtures for the gateway/aggregator tests: real brokers, services, bounded waits.

Tests import helpers from here (``from gw_helpers import wait_until``), never from
``conftest``: several test folders have a conftest.py, and which one a bare
``import conftest`` finds depends on collection order.

* ``mosquitto_broker`` (from tests/device/mosquitto.py, imported, not copied) and
  ``second_broker``: real mosquitto processes on free loopback ports. Missing mosquitto
  skips, except under CI=true where it fails.
* ``amqtt_broker``: the embedded pure-Python broker (amqtt) in a thread.
* ``Proc``: a ``lasp-edge gateway|aggregator`` subprocess that can be ``kill -9``'d and
  restarted on the same files; it waits for the service's ``ready`` line.
* ``wait_until``: every wait in these tests polls with a deadline; nothing asserts timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lasp_gateway.embedded_broker import EmbeddedBroker
from lasp_gateway.emulator.services import ServiceError, ServiceProc, listening

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "device"))

from mosquitto import (  # noqa: E402,F401  (the mosquitto_broker fixture)
    Mosquitto,
    find_mosquitto,
    free_port,
    mosquitto_broker_fixture,
    require_or_skip,
)

REPO = HERE.parents[1]


def wait_until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            got = pred()
            if got:
                return got
        except Exception as exc:  # e.g. the HTTP server is not up yet
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                "timed out after %.0fs waiting for %s%s"
                % (timeout, what, "" if last_exc is None else " (last error: %r)" % last_exc)
            )
        time.sleep(0.05)


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class ConfiguredMosquitto(Mosquitto):
    """A ``Mosquitto`` with its own config lines (auth, ACL, TLS listeners).

    The helper in tests/device writes an anonymous one-listener config; this subclass only
    changes what is written. ``{port}`` in the lines is the main listener's port. ``user
    root`` keeps mosquitto from dropping privileges before it reads 0600 files.
    """

    def __init__(self, binary: str, workdir: Path, lines: list[str], port: int | None = None):
        super().__init__(binary, workdir, port)
        self.lines = lines

    def start(self) -> ConfiguredMosquitto:
        assert self.proc is None, "already running"
        self.starts += 1
        conf = self.workdir / f"mosquitto-{self.port}-{self.starts}.conf"
        body = "\n".join(line.format(port=self.port) for line in self.lines)
        conf.write_text("user root\npersistence false\n" + body + "\n")
        log = open(self.workdir / f"mosquitto-{self.port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf), "-v"], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_until(
            lambda: (
                self.proc is not None and (self.proc.poll() is not None or listening(self.port))
            ),
            10,
            "mosquitto listening",
        )
        if self.proc.poll() is not None:
            raise RuntimeError("mosquitto exited: %s" % self.log())
        return self


@pytest.fixture
def configured_mosquitto(tmp_path: Path):
    """``configured_mosquitto(lines)`` starts a broker with those config lines."""
    made: list[ConfiguredMosquitto] = []
    binary = require_or_skip("mosquitto", find_mosquitto())

    def make(lines: list[str]) -> ConfiguredMosquitto:
        d = tmp_path / ("broker-%d" % len(made))
        d.mkdir()
        b = ConfiguredMosquitto(binary, d, lines).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def second_broker(tmp_path: Path):
    """Another mosquitto (e.g. the aggregator's, when the gateway has an uplink broker)."""
    d = tmp_path / "broker2"
    d.mkdir()
    broker = Mosquitto(require_or_skip("mosquitto", find_mosquitto()), d).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def amqtt_broker():
    try:
        import amqtt  # noqa: F401
    except ImportError:
        require_or_skip("amqtt (pip install amqtt)", None)
    b = EmbeddedBroker(free_port()).start()
    try:
        yield b
    finally:
        b.stop()


class Proc(ServiceProc):
    """The emulator's ``ServiceProc``, with start failures raised as test failures."""

    def start(self, timeout: float = 60.0) -> Proc:
        try:
            super().start(timeout)
        except ServiceError as exc:
            raise AssertionError(str(exc)) from None
        return self


@pytest.fixture
def procs():
    """Start services with ``procs(args, name)``; all are stopped after the test."""
    made: list[Proc] = []

    def make(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Proc:
        p = Proc(args, log_path, env)
        made.append(p)
        return p

    yield make
    for p in made:
        p.kill9()


def gateway_args(port: int, db: Path, **kw: Any) -> list[str]:
    """Fast settings for tests: short periods and timeouts."""
    args = [
        "gateway",
        "--broker",
        "127.0.0.1:%d" % port,
        "--db",
        str(db),
        "--forward-period-ms",
        str(kw.pop("forward_period_ms", 100)),
        "--ack-timeout-ms",
        "500",
        "--max-timeout-ms",
        "2000",
        "--status-period-ms",
        str(kw.pop("status_period_ms", 300)),
        "--synchronous",
        kw.pop("synchronous", "normal"),
    ]
    for k, v in kw.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


def aggregator_args(port: int, db: Path, http_port: int, **kw: Any) -> list[str]:
    args = [
        "aggregator",
        "--broker",
        "127.0.0.1:%d" % port,
        "--db",
        str(db),
        "--program",
        kw.pop("program", "gw_programs:ad_counter"),
        "--program-path",
        str(HERE),
        "--http",
        "127.0.0.1:%d" % http_port,
        "--sync-period-ms",
        "100",
        "--ack-timeout-ms",
        "500",
        "--max-timeout-ms",
        "2000",
        "--synchronous",
        kw.pop("synchronous", "normal"),
    ]
    if kw.pop("trusted", True):
        args.append("--trusted")
    for k, v in kw.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


# Appended helpers keep their imports with them (the module above is being reorganised).
import queue  # noqa: E402

import paho.mqtt.client as paho  # noqa: E402
from mosquitto import Watcher  # noqa: E402


class RawDevice(Watcher):
    """A raw paho client holding a device's broker identity (its user name and password).

    What an adversary with one device's credentials can do: publish any bytes on the
    topics the broker lets that user write (its own ``le/u/<id>``, under the provisioned
    ACL), and read its own downlink. No sync ``Node`` behind it, so every message is
    exactly the bytes the test built. ``Watcher`` (tests/device/mosquitto.py) gives
    ``subscribe``/``publish``/``expect``/``close``; only the connection differs, because it
    must log in (and ``Watcher`` connects in its constructor).
    """

    def __init__(self, port: int, device_id: str, password: str | None = None) -> None:
        from lasp_gateway.mqtt_link import configure_client
        from lasp_gateway.settings import BrokerSettings

        self.messages = queue.Queue()
        self._subscribed = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="raw-%s" % device_id)
        configure_client(
            self.client, BrokerSettings(port=port, username=device_id, password=password)
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
