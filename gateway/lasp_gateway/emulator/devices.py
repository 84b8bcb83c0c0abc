"""The two kinds of emulated device, with one interface for the engine.

* ``VirtualDevice``: ``lasp_device.device.Device`` + the app's own ``App`` in this
  process (see ``apps.py`` and ``virtual.py``). A crash drops the objects without a flush
  or a goodbye; the restart builds a new ``Device`` on the same store directory, which
  recovers from flash exactly as a board does after a power cut.
* ``RealDevice``: the firmware example's ``main.py`` on the MicroPython unix port, from the
  .mpy bundle (``lasp-edge bundle --target unix``), with a capped heap, reaching the broker
  through its own ``FaultProxy``. A crash is ``kill -9``; the restart runs the process again
  on the same store. At the end it stops counting, drains (waits for the gateway's acks),
  writes its ``F`` oracle line and exits.

Both record into the ``Oracle``: virtual devices update by update, real devices at the
end from their flash store (cross-checked with the total the app printed).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

from lasp_gateway.emulator.apps import AppSpec
from lasp_gateway.emulator.faults import MessageFaults
from lasp_gateway.emulator.oracle import DeviceOracle
from lasp_gateway.emulator.proxy import FaultProxy
from lasp_gateway.emulator.services import stop_process
from lasp_gateway.emulator.virtual import DelayLine, Mux, VirtualButton, VirtualTransport

# Deliberately broken variants, to show that the oracle check fails when it should:
# "lying-flash": flash writes that report success but are lost at a crash (no fsync on a
# FAT card, a rename that is not atomic): the device comes back one flush older than what
# it already sent, reuses counter values, and the fleet under-counts.
BROKEN = ("lying-flash",)


class VirtualDevice:
    kind = "virtual"

    def __init__(
        self,
        spec: AppSpec,
        dev_id: str,
        store: Path,
        mux: Mux,
        outbox: DelayLine,
        oracle: DeviceOracle,
        settings: dict[str, int],
        faults: tuple[MessageFaults, MessageFaults],
        seed: int,
        clock: Any,
        broken: str | None = None,
    ) -> None:
        self.spec = spec
        self.id = dev_id
        self.store = store
        self.oracle = oracle
        self.settings = settings
        self.broken = broken
        self.rng = random.Random("button/%d/%s" % (seed, dev_id))
        self.up, self.down = faults  # per device and direction: see faults.MessageFaults
        self.transport = VirtualTransport(mux, "le/u/%s" % dev_id, self.up, outbox, clock)
        self.dev: Any = None
        self.app: Any = None
        self.boots = 0
        self.previous: bytes | None = None  # lying-flash: the record a crash brings back
        self.current: bytes | None = None

    def boot(self) -> None:
        from lasp_device.device import Device
        from lasp_device.ticks import ticks_ms

        s = self.settings
        dev = Device(
            self.id,
            path=str(self.store),
            gateway="gw",
            interests=self.spec.interests,
            sync_period_ms=s["SYNC_PERIOD_MS"],
            flush_every=s["FLUSH_EVERY"],
            flush_ms=s["FLUSH_MS"],
            ack_timeout_ms=s["ACK_TIMEOUT_MS"],
            max_timeout_ms=s["MAX_TIMEOUT_MS"],
        )
        self.spec.declare(dev)
        dev.on_flush = self._flushed
        dev.start()
        update = dev.update

        oracle, facts_of = self.oracle, self.spec.facts_of

        def recorded(name: str, op: str, *args: Any) -> Any:
            oracle.update(name, op, args)  # first: a flush inside update() includes it
            for fact in facts_of(name, op, args):
                oracle.fact(fact)
            return update(name, op, *args)

        dev.update = recorded
        dev.attach(self.transport)
        button = VirtualButton(s["VIEW_MS"], self.rng, ticks_ms())
        self.app = self.spec.make_app(dev, button, oracle.fact)
        self.dev = dev
        self.boots += 1

    def _flushed(self, done: bool) -> None:
        if not done:
            return
        self.oracle.flushed()
        if self.broken == "lying-flash":  # remember the record before this one
            self.previous, self.current = self.current, (self.store / "state").read_bytes()

    def step(self, now: int) -> None:
        self.app.step(now)

    def poll(self, now: int) -> None:
        self.dev.poll(now)

    def deliver(self, topic: str, payload: bytes) -> None:
        if self.dev is not None and self.transport.online:
            self.transport.on_message(topic, payload)

    def crash(self) -> None:
        """Abrupt stop: no flush, no DEATH; whatever was not flushed is gone."""
        self.dev = self.app = None
        self.transport.on_message = None
        self.oracle.crashed()
        if self.broken == "lying-flash" and self.previous is not None:
            # the last flush "succeeded" but never reached flash: the older record is back
            (self.store / "state").write_bytes(self.previous)
            with contextlib.suppress(FileNotFoundError):
                (self.store / "state.tmp").unlink()

    @property
    def alive(self) -> bool:
        return self.dev is not None

    def set_cut(self, cut: bool) -> None:
        self.transport.set_cut(cut)

    @property
    def pending(self) -> bool:
        """Something not yet acknowledged by the gateway (or not yet flushed)."""
        d = self.dev
        return d is None or bool(d.dirty) or d.node.next_deadline_ms() is not None

    def value(self, name: str) -> Any:
        return None if self.dev is None else self.dev.value(name)

    def state(self, name: str) -> Any:
        return None if self.dev is None else self.dev.var(name)


class RealDevice:
    kind = "real"

    def __init__(
        self,
        spec: AppSpec,
        dev_id: str,
        workdir: Path,
        micropython: str,
        libpath: str,
        proxy: FaultProxy,
        settings: dict[str, int],
        heap: str,
    ) -> None:
        self.spec = spec
        self.id = dev_id
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.micropython = micropython
        self.proxy = proxy
        self.heap = heap
        self.env = dict(os.environ, MICROPYPATH="%s:%s" % (spec.path, libpath))
        app_settings = dict(spec.settings(), **spec.real_settings())
        for k, v in dict(
            settings,
            **app_settings,
            BROKER_HOST="127.0.0.1",
            BROKER_PORT=proxy.port,
            DEVICE_ID=dev_id,
            STORE_PATH="store",
            ORACLE=str(self.dir / "oracle"),
            LOOP_MS=5,
            BACKOFF_CAP_MS=1000,
            KEEPALIVE_S=5,
        ).items():
            self.env["LASP_" + k] = str(v)
        self.proc: subprocess.Popen[bytes] | None = None
        self.boots = 0
        self.crashes = 0

    def start(self, max_run_ms: int) -> None:
        self.env["LASP_MAX_RUN_MS"] = str(max(1000, max_run_ms))
        with open(self.dir / "device.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.micropython, "-X", "heapsize=" + self.heap, str(self.spec.path / "main.py")],
                cwd=str(self.dir),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.boots += 1

    def crash(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.crashes += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def set_cut(self, cut: bool) -> None:
        if cut:
            self.proxy.cut(1e9)
        else:
            self.proxy.heal()

    def oracle_lines(self) -> list[tuple[Any, ...]]:
        """``R/B/D e v`` and ``F e v ok`` lines (torn lines of a kill -9 skipped)."""
        out: list[tuple[Any, ...]] = []
        with contextlib.suppress(FileNotFoundError):
            for line in (self.dir / "oracle").read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and all(p.isdigit() for p in parts[1:]):
                    out.append((parts[0], *(int(p) for p in parts[1:])))
        return out

    def counted(self) -> int:
        lines = self.oracle_lines()
        return lines[-1][2] if lines else 0

    @property
    def synced(self) -> bool:
        lines = self.oracle_lines()
        return bool(lines) and lines[-1][0] == "F" and lines[-1][-1] == 1

    def final_states(self) -> dict[str, Any]:
        """The written variables as the device's flash store holds them (after exit): the
        part the device wrote itself (``AppSpec.own``)."""
        from lasp_device.flashstore import FlashStore

        from lasp_edge import cbor, wire

        payload = FlashStore(str(self.dir / "store")).load()
        if payload is None:
            return {}
        snap = cbor.loads(payload)[1]
        states = {n: wire.from_typed(t) for n, t in snap["vars"].items() if n in self.spec.written}
        return self.spec.own(self.id, states)

    def stop(self) -> None:
        stop_process(self.proc)

    def log_tail(self) -> str:
        try:
            return (self.dir / "device.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""
