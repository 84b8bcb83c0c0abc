"""lasp_device.mqtt and lasp_device.transport against a real mosquitto.

Most checks run the device code on the MicroPython unix port with a 64 KB heap (the scripts
in mqtt_scripts/, precompiled with mpy-cross as on a device); a few run the same modules
in-process on CPython, where large payloads and error paths are cheap to drive. The broker
is paused (SIGSTOP) to make a half-open link and stopped/restarted on the same port to make
the transport reconnect; every wait is bounded, nothing asserts on elapsed time.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mosquitto import (  # noqa: F401  (the mosquitto_broker fixture)
    Watcher,
    free_port,
    mosquitto_broker_fixture,
    require_or_skip,
)

REPO = Path(__file__).resolve().parents[2]
DEVICE_SRC = REPO / "micropython" / "lasp_device"
SCRIPTS = Path(__file__).resolve().parent / "mqtt_scripts"
BIN = Path(sys.executable).parent
HEAP = "64K"
HEAP_BUDGET = 20_000  # bytes for importing mqtt + transport; devices have ~100-200 KB


def load(path: Path, name: str):
    """Import a device module by file, without running the lasp_device package __init__."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mqtt = load(DEVICE_SRC / "mqtt.py", "_lasp_device_mqtt")
transport = load(DEVICE_SRC / "transport.py", "_lasp_device_transport")


@pytest.fixture(scope="module")
def micropython_path(tmp_path_factory) -> str:
    """MICROPYPATH: the device modules as .mpy first (as flashed), then the sources."""
    found = BIN / "micropython"
    require_or_skip(f"MicroPython unix port at {found}", str(found) if found.exists() else None)
    mpy_dir = tmp_path_factory.mktemp("mpy")
    cross = BIN / "mpy-cross"
    if cross.exists():
        (mpy_dir / "lasp_device").mkdir()
        for name in ("mqtt", "transport"):
            subprocess.run(
                [cross, "-o", mpy_dir / "lasp_device" / f"{name}.mpy", DEVICE_SRC / f"{name}.py"],
                check=True,
                timeout=60,
            )
    return os.pathsep.join([str(mpy_dir), str(REPO / "micropython"), str(REPO / "sdk")])


class MicroPython:
    """One MicroPython script as a subprocess whose output lines are awaited one by one."""

    def __init__(self, path: str, script: str, *args: object) -> None:
        self.proc = subprocess.Popen(
            [BIN / "micropython", "-X", f"heapsize={HEAP}", SCRIPTS / script, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, MICROPYPATH=path),
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))
        self._lines.put(None)

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        """The next output line starting with ``prefix``; earlier lines are kept in seen."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} within {timeout}s: {self.output()}") from None
            if line is None:
                self._lines.put(None)
                raise AssertionError(f"exited before {prefix!r}: {self.output()}")
            self.seen.append(line)
            if line.startswith("FAIL") or line.startswith("Traceback"):
                time.sleep(0.2)  # let the traceback arrive for the message
                while not self._lines.empty():
                    more = self._lines.get()
                    if more is not None:
                        self.seen.append(more)
                raise AssertionError(self.output())
            if line.startswith(prefix):
                return line

    def saw(self, prefix: str, timeout: float = 10.0) -> str:
        """Like ``expect``, but also accepts a line already passed over: for lines whose
        order against others is not part of the contract."""
        for line in self.seen:
            if line.startswith(prefix):
                return line
        return self.expect(prefix, timeout)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 10.0) -> None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"did not exit: {self.output()}") from None
        assert code == 0, self.output()

    def output(self) -> str:
        return "\n".join(self.seen)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def micropython(micropython_path):
    started: list[MicroPython] = []

    def run(script: str, *args: object) -> MicroPython:
        p = MicroPython(micropython_path, script, *args)
        started.append(p)
        return p

    yield run
    for p in started:
        p.stop()


@pytest.fixture
def watchers():
    made: list[Watcher] = []

    def make(port: int, *topics: str) -> Watcher:
        w = Watcher(port, *topics)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def check_backoff(lines: list[str], base: int, cap: int, jitter: int) -> int:
    """Every ``RETRY n delay`` line waits min(cap, base * 2**(n-1)) plus jitter; returns how
    many there were."""
    retries = [line.split() for line in lines if line.startswith("RETRY")]
    for _, n, delay in retries:
        expected = min(cap, base << (int(n) - 1))
        assert expected <= int(delay) < expected + jitter, (n, delay)
    return len(retries)


# -- MicroPython


def test_client_on_micropython(mosquitto_broker, micropython, watchers):
    w = watchers(mosquitto_broker.port, "t/basic/#")
    mp = micropython("basic.py", mosquitto_broker.port)
    heap = mp.expect("HEAP").split()
    used = sum(int(part.split("=")[1]) for part in heap[1:])
    assert used < HEAP_BUDGET, heap
    assert mp.expect("SESSION") == "SESSION False"
    assert mp.expect("ECHO") == "ECHO b'zero' b'one'"
    assert mp.expect("BIG") == "BIG 16896 True"
    assert mp.expect("PINGRESP") == "PINGRESP 0xd0"
    mp.expect("READY")
    w.publish("t/basic/in", b"hello", qos=1)
    assert mp.expect("IN") == "IN b't/basic/in' b'hello'"
    mp.expect("DONE")
    mp.finish()
    # What the device sent is what another client sees.
    assert w.expect("t/basic/q0")[1] == b"zero"
    assert w.expect("t/basic/q1")[1] == b"one"
    assert w.expect("t/basic/big")[1] == bytes(range(256)) * 66


def test_incoming_qos1_is_acknowledged(mosquitto_broker, micropython, watchers):
    w = watchers(mosquitto_broker.port)
    mp = micropython("session.py", mosquitto_broker.port)
    assert mp.expect("SESSION") == "SESSION False"
    mp.expect("READY")
    w.publish("t/sess", b"first", qos=1)
    assert mp.expect("IN") == "IN b'first'"
    mp.expect("AWAY")
    w.publish("t/sess", b"away", qos=1)  # queued for the stored session
    mp.send("go")
    assert mp.expect("SESSION") == "SESSION True"
    # An unacknowledged "first" would be redelivered ahead of the queued "away".
    assert mp.expect("GOT") == "GOT b'away'"
    mp.expect("DONE")
    mp.finish()


def test_last_will_on_sigkill(mosquitto_broker, micropython, watchers):
    w = watchers(mosquitto_broker.port, "le/u/+")
    mp = micropython("will.py", mosquitto_broker.port, "mp-will")
    mp.expect("READY")
    mp.proc.send_signal(signal.SIGKILL)
    mp.proc.wait(5)
    assert w.expect("le/u/mp-will")[1] == b"DEATH:mp-will"


def test_keepalive_and_backoff_across_ticks_wrap_on_micropython(mosquitto_broker, micropython):
    mp = micropython("keepalive.py", mosquitto_broker.port, free_port())
    mp.expect("DONE", timeout=20)
    mp.finish()
    assert "ok ping when nothing was received for keepalive/2, even while sending" in mp.seen


def test_transport_rides_out_pause_and_restart(mosquitto_broker, micropython, watchers):
    broker = mosquitto_broker
    up, down = "le/u/mp-loop", "le/d/mp-loop"
    w = watchers(broker.port, up)
    mp = micropython("device_loop.py", broker.port, "mp-loop")
    mp.expect("ONLINE 1 0")
    w.publish(down, b"m1")
    mp.expect("MSG b'm1'")
    w.expect(up, b"echo:m1")
    mp.expect("STABLE 1")  # pings kept a link alive whose downlink was otherwise silent

    # Half-open: TCP stays up but the broker says nothing, so only the silence rule can tell.
    broker.pause()
    assert mp.expect("OFFLINE") == "OFFLINE 110"
    mp.saw("PUBFAIL")  # publishing offline returns False instead of raising
    mp.saw("RETRY 2")  # a connection attempt failed against the silent broker
    broker.resume()
    # Connection attempts that timed out during the pause sit in the broker's backlog and may
    # take over the session once more when it resumes, so wait until the link held.
    connects = int(mp.expect("STABLE", timeout=20).split()[1])
    assert connects >= 2
    w.expect(up, b"DEATH:mp-loop")  # the dropped session ended without DISCONNECT

    # Restart: the new broker knows no session, so only re-subscribing brings m2 in.
    broker.stop()
    mp.expect("OFFLINE")
    mp.expect("RETRY 3")  # the count restarted: attempt 1 is the wait after the drop
    broker.start()
    assert mp.expect("ONLINE", timeout=15) == f"ONLINE {connects + 1} {connects}"
    w2 = watchers(broker.port, up)
    w2.publish(down, b"m2")
    mp.expect("MSG b'm2'")
    w2.expect(up, b"echo:m2")
    w2.publish(down, b"quit")
    mp.expect("BYE")
    mp.finish()
    assert check_backoff(mp.seen, base=100, cap=800, jitter=100) >= 4


# -- CPython, in-process


def test_keepalive_and_backoff_on_cpython(mosquitto_broker):
    script = load(SCRIPTS / "keepalive.py", "_keepalive_script")
    out: list[str] = []
    script.run(mqtt.MQTTClient, transport.Transport, mosquitto_broker.port, free_port(), out.append)
    assert out[-1] == "DONE"


def drain(client, until, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        if client.check_msg() is None:
            time.sleep(0.002)


def test_four_byte_length_and_oversized_messages_on_cpython(mosquitto_broker):
    port = mosquitto_broker.port
    got_a: list[tuple[bytes, bytes]] = []
    got_b: list[tuple[bytes, bytes]] = []
    a = mqtt.MQTTClient("cp-a", "127.0.0.1", port, max_packet=3_000_000)
    b = mqtt.MQTTClient("cp-b", "127.0.0.1", port)  # default max_packet: 64 KiB
    a.set_callback(lambda t, m: got_a.append((t, m)))
    b.set_callback(lambda t, m: got_b.append((t, m)))
    assert a.connect() is False and b.connect() is False
    a.subscribe("t/big", qos=1)
    b.subscribe("t/big", qos=1)
    big = os.urandom(2_100_000)  # > 2**21 - 1: remaining length takes 4 bytes
    a.publish("t/big", big, qos=1)
    drain(a, lambda: got_a)
    assert got_a == [(b"t/big", big)]
    a.publish("t/big", "after", qos=1)
    drain(b, lambda: got_b)
    assert got_b == [(b"t/big", b"after")]  # the oversized one was skipped, in sync after
    a.disconnect()
    b.disconnect()


def test_errors_on_cpython(mosquitto_broker):
    refused = mqtt.MQTTClient("cp-x", "127.0.0.1", free_port(), timeout=2)
    with pytest.raises(OSError):
        refused.connect()
    assert refused.sock is None

    rejected = mqtt.MQTTClient("", "127.0.0.1", mosquitto_broker.port, timeout=2)
    with pytest.raises(mqtt.MQTTException) as info:
        rejected.connect(clean_session=False)  # an empty id needs a clean session
    assert info.value.args[0] == 2  # identifier rejected
    assert rejected.sock is None

    c = mqtt.MQTTClient("cp-err", "127.0.0.1", mosquitto_broker.port, timeout=2)
    c.connect()
    mosquitto_broker.stop()
    deadline = time.monotonic() + 10
    with pytest.raises(OSError):
        while time.monotonic() < deadline:
            c.check_msg()
            time.sleep(0.01)
    assert c.sock is None  # closed on the error: nothing leaks
    with pytest.raises(OSError):
        c.publish("t", b"x")
    with pytest.raises(OSError):
        c.ping()
