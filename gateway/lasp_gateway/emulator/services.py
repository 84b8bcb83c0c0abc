"""The processes around an emulated fleet: a broker, ``lasp-edge gateway|aggregator``.

* ``Broker``: mosquitto (a process with a throw-away config) or the embedded amqtt broker
  (a thread of this process), or an external one that is only used. ``restart()`` keeps
  the port, so clients see the broker vanish and come back, with nothing remembered: no
  persistence, no sessions (the protocol must not trust a broker's queues).
* ``ServiceProc``: a ``lasp-edge`` service in its own process, started through the CLI
  exactly as an operator would, waiting for its ``ready`` line; ``kill9()`` and ``start()``
  again on the same database are the crash and the restart.

Everything listens on loopback ports chosen at run time, so several runs (and several
test sessions) can share a machine.
"""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[3]  # the checkout (firmware_examples/, micropython/)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> int | None:
    """SIGTERM, wait up to ``timeout`` s for a clean exit, then SIGKILL; the exit code.

    Services and brokers get the chance to stop cleanly (the tests check that a clean stop
    loses nothing either); a process that hangs must still never outlive its run.
    """
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class ServiceError(RuntimeError):
    """A service or broker did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def find_micropython() -> str | None:
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    return shutil.which("micropython")


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(path, os.X_OK):
            return path
    return None


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for ``python -m lasp_edge.cli``: this checkout's packages first."""
    env = dict(os.environ, **(extra or {}))
    paths = [str(ROOT / "sdk"), str(ROOT / "gateway")] if (ROOT / "sdk").is_dir() else []
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env


def _wait(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise ServiceError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Broker:
    """An MQTT broker on ``host:port``: ``kind`` is "mosquitto", "embedded" or "external"."""

    def __init__(self, kind: str, workdir: Path, host: str = "127.0.0.1", port: int = 0):
        if kind not in ("mosquitto", "embedded", "external"):
            raise ValueError("broker kind %r" % kind)
        self.kind = kind
        self.host = host
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.embedded: object | None = None
        self.restarts = 0

    @classmethod
    def from_option(cls, option: str | None, workdir: Path) -> Broker:
        """``--broker``: "embedded" (default), "mosquitto", or HOST:PORT of an external one."""
        if not option or option == "embedded":
            return cls("embedded", workdir)
        if option == "mosquitto":
            return cls("mosquitto", workdir)
        host, _, port = option.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("--broker: 'embedded', 'mosquitto' or HOST:PORT, not %r" % option)
        return cls("external", workdir, host, int(port))

    @property
    def address(self) -> str:
        return "%s:%d" % (self.host, self.port)

    @property
    def restartable(self) -> bool:
        return self.kind != "external"

    def start(self) -> Broker:
        if self.kind == "mosquitto":
            self._start_mosquitto()
        elif self.kind == "embedded":
            from lasp_gateway.embedded_broker import EmbeddedBroker

            self.embedded = EmbeddedBroker(self.port).start()  # returns once it listens
            return self
        _wait(lambda: listening(self.port, self.host), 15, "the broker on %s" % self.address)
        return self

    def _start_mosquitto(self) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise ServiceError("mosquitto not found (apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            % self.port
        )
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            stop_process(proc)
        if self.embedded is not None:
            emb, self.embedded = self.embedded, None
            emb.stop()  # type: ignore[attr-defined]
        if self.kind == "mosquitto":
            _wait(lambda: not listening(self.port, self.host), 15, "the broker to stop")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start on the same port (nothing remembered)."""
        if not self.restartable:
            raise ServiceError("an external broker cannot be restarted by the emulator")
        self.stop()
        time.sleep(down_s)
        self.restarts += 1
        for attempt in range(50):  # the port can stay busy for a moment after the stop
            try:
                self.start()
                return
            except (OSError, ServiceError):
                if attempt == 49:
                    raise
                time.sleep(0.2)


class ServiceProc:
    """A ``lasp-edge`` service subprocess; ``start`` waits for its ``ready`` line."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.args = list(args)
        self.log_path = Path(log_path)
        self.env = service_env(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""
        self.starts = 0

    def start(self, timeout: float = 60.0) -> ServiceProc:
        if self.proc is not None:
            raise ServiceError("already running")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"=== start %d\n" % self.starts)
            log.flush()
            self.proc = proc = subprocess.Popen(
                [sys.executable, "-m", "lasp_edge.cli", *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches the emulator, which stops us in order
            )
        box: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:  # keeps the pipe drained for the life of the process
                line = raw.decode(errors="replace")
                if "ready" in line and not box:
                    box.append(line.strip())

        threading.Thread(target=read, daemon=True).start()
        try:
            _wait(lambda: box or proc.poll() is not None, timeout, "%s ready" % self.args[0])
        except ServiceError:
            self.kill9()
            raise ServiceError("%s did not start:\n%s" % (self.args[0], self.log())) from None
        if not box:
            self.proc = None
            raise ServiceError(
                "%s exited with %s:\n%s" % (self.args[0], proc.returncode, self.log())
            )
        self.ready_line = box[0]
        return self

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        return stop_process(proc, 15)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


def close_quietly(*things: object) -> None:
    """Stop each of ``things`` (anything with ``stop`` or ``close``), ignoring failures."""
    for t in things:
        fn = getattr(t, "stop", None) or getattr(t, "close", None)
        if fn is not None:
            with contextlib.suppress(Exception):
                fn()
