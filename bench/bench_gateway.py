"""Gateway ingest and the broker pipeline, each rate a ratio to the one above it, same broker.

    .venv/bin/python bench/bench_gateway.py [--runs 5] [--messages 20000] [--devices 500]
                                            [--batch 100] [--synchronous full] [--quick]
                                            [--json PATH] [--md PATH]

One mosquitto on a loopback port serves every measurement of a run, side by side (each run
measures them all in turn; rates are medians over ``--runs`` runs, and every ratio is the
median of the ratios taken within each run). Each measurement also records the CPU time
per message of every process involved (from /proc), which bounds what 2 cores can do:

(0) broker limit: the C clients. ``mosquitto_sub -C N`` (subscribed to ``le/u/+``) and
    ``mosquitto_pub -l`` publishing N (>= 50,000) lines read from a file (one connection, QoS 0,
    pipelined: the fastest a client can feed the broker; ``--repeat`` waits between
    messages and ``-m`` would be one process per message). Payloads are text of the same
    sizes as the DELTAs below (``-l`` splits on newlines, so the CBOR bytes themselves
    cannot be sent). messages/s = N / (start of the publisher -> exit of the subscriber,
    which exits on its N-th message).
(a) baseline: raw paho-mqtt. One paho client publishes the device DELTA payloads (QoS 0) to
    ``le/u/<id>``; another paho client in the same process, subscribed to ``le/u/+``,
    counts them. messages/s = messages / (first publish -> last receipt).
(b) gateway ingest: ``lasp-edge gateway`` (a subprocess, SQLite ``--synchronous``, default
    full: an fsync per commit) with an aggregator behind it. ``--devices`` simulated devices
    each send their DELTAs one at a time, the next only when the ACK for the previous one
    came back (stop-and-wait, as the protocol does), so every message counted was
    *acknowledged after it was durable*. messages/s = acknowledged messages / time. The
    bench process does the same MQTT work as in (a) (publish DELTAs, receive small
    messages); the gateway's work is what it adds: receive, decode, authorize, merge,
    commit to SQLite, then publish an ACK per device and batch.
(e) diagnostic: as (b), but against ``bench_gateway.py --echo-server`` instead of the
    gateway: the gateway's own MQTT code (``MqttLink`` + ``LinkLoop``) in its own process,
    answering each DELTA at once with an ACK-shaped message and doing nothing else.
    (b)/(e) is what the gateway's own work costs; (e)/(a) is what two messages per DELTA
    and stop-and-wait cost with no work at all: the most a gateway could reach.
(c) updates absorbed: as (b), but each DELTA carries ``--batch`` updates (a device that
    counted several impressions between two syncs: its slots for several ads moved), so
    updates/s = acknowledged messages x batch / time; its goal is a ratio to (a).
(f) a steady fleet: 500 DELTAs/s for ``--paced-seconds``, with group commit off and at its
    default: the gateway's disk bytes and CPU per DELTA and the ACK latency.
(g) diagnostic: the gateway's own work per DELTA (CPU), in this process without MQTT, and
    the decoding's share of it (``own_work``): a steadier figure than (b) for comparing
    changes to the gateway's code.

Payloads are the bytes a device Node sends: ``[1, 3, dev, 1, k, k, 0, 1, false,
{"impressions": AWMap ad -> {dev: count}}]`` with its sequence interval [k, k]. A fresh
gateway and database per run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "sdk"), str(ROOT / "gateway"), str(ROOT / "bench")]

import _common as C  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402

from lasp_edge import AWMap, wire  # noqa: E402
from lasp_edge.sync import messages as M  # noqa: E402
from lasp_gateway.emulator.services import free_port, stop_process  # noqa: E402
from lasp_gateway.service import GROUP_COMMIT_BATCH  # noqa: E402

ADS = ["ad-%d" % i for i in range(10)]


def program(store) -> None:  # the aggregator's program for (b) and (c)
    store.declare("impressions", "awmap", vtype="gcounter")


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited" % what)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen" % what)


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(binary, os.X_OK):
        sys.exit("mosquitto not found: install it (apt-get install mosquitto)")
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(port, proc, "mosquitto")
    return proc, port


def payloads(dev: str, count: int, batch: int) -> list[bytes]:
    """The DELTAs a device sends, one per sync, each after ``batch`` updates."""
    out = []
    slots = {ad: 0 for ad in ADS}
    for k in range(1, count + 1):
        m = AWMap("gcounter")
        for u in range(batch):
            ad = ADS[(k * batch + u) % len(ADS)]
            slots[ad] += 1
        for ad in {ADS[(k * batch + u) % len(ADS)] for u in range(batch)}:
            m.update(ad, "increment", dev, slots[ad])
        out.append(M.delta(dev, 1, k, k, 0, 1, False, {"impressions": wire.to_typed(m)}))
    return out


class Client:
    """A paho client (VERSION2) that hands every message to ``on_message(topic, payload)``."""

    def __init__(self, port: int, name: str, subs: list[str], on_message) -> None:
        self.ready = threading.Event()
        self.c = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id="%s-%d" % (name, os.getpid())
        )
        self.c.max_queued_messages_set(0)
        self.subs = subs
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = lambda c, u, msg: on_message(msg.topic, msg.payload)
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()
        if not subs:
            self.ready.set()
        if not self.ready.wait(10):
            raise RuntimeError("no SUBACK")

    def _on_connect(self, c, u, f, rc, p) -> None:
        for t in self.subs:
            c.subscribe(t, 0)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class CpuMeter:
    """CPU time (user + system, all threads) each named process spent during a measurement,
    from /proc: where the time per message goes, and what a 2-core machine can give. Also
    the bytes it wrote to the disk (``write_bytes`` of /proc/<pid>/io: what reached the
    block device, which on a Raspberry Pi is the SD card that wears)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: self._cpu_s(pid) for name, pid in pids.items()}
        self.disk0 = {name: self._disk_b(pid) for name, pid in pids.items()}

    @staticmethod
    def _disk_b(pid: int) -> int | None:
        try:
            for line in Path("/proc/%d/io" % pid).read_text().splitlines():
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def disk_bytes_per_message(self, name: str, n: int) -> float | None:
        a, b = self.disk0[name], self._disk_b(self.pids[name])
        return None if a is None or b is None else (b - a) / n

    @staticmethod
    def _cpu_s(pid: int) -> float | None:
        try:
            fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def us_per_message(self, n: int) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            a, b = self.start[name], self._cpu_s(pid)
            out[name] = None if a is None or b is None else (b - a) / n * 1e6
        return out


def c_clients(port: int, sizes: list[int], workdir: Path) -> float | None:
    """(0) messages/s through the broker with its own C clients; None if they are missing.

    The subscriber is started first and given time to subscribe; if it missed messages it
    never reaches N and the run is retried (a lost run is detected, never counted).
    """
    pub_bin, sub_bin = shutil.which("mosquitto_pub"), shutil.which("mosquitto_sub")
    if not pub_bin or not sub_bin:
        return None
    lines = workdir / "c_clients.txt"
    with open(lines, "w") as f:
        for i, size in enumerate(sizes):
            f.write(("%d:" % i).ljust(size, "x")[:size] + "\n")
    n = len(sizes)
    addr = ["-h", "127.0.0.1", "-p", str(port), "-q", "0"]
    for _attempt in range(3):
        sub = subprocess.Popen(
            [sub_bin, *addr, "-t", "le/u/+", "-C", str(n), "-N"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # connect + SUBACK on loopback; a miss shows as a timeout below
        t0 = time.perf_counter()
        with open(lines, "rb") as stdin:
            pub = subprocess.Popen(
                [pub_bin, *addr, "-t", "le/u/c0", "-l"],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                sub.wait(120)
                dt = time.perf_counter() - t0
                ok = sub.returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            finally:
                for p in (pub, sub):
                    if p.poll() is None:
                        p.kill()
                    p.wait()
        if ok:
            return n / dt
        print("  C clients: the subscriber missed messages; again", file=sys.stderr)
    return None


def baseline(
    port: int, msgs: list[tuple[str, bytes]], broker_pid: int
) -> tuple[float, dict[str, float | None]]:
    done = threading.Event()
    got = [0]
    n = len(msgs)

    def on_message(_t, _p) -> None:
        got[0] += 1
        if got[0] == n:
            done.set()

    sub = Client(port, "sub", ["le/u/+"], on_message)
    pub = Client(port, "pub", [], None)
    cpu = CpuMeter({"bench": os.getpid(), "mosquitto": broker_pid})
    t0 = time.perf_counter()
    for topic, data in msgs:
        pub.c.publish(topic, data, 0)
    ok = done.wait(120)
    dt = time.perf_counter() - t0
    used = cpu.us_per_message(max(1, got[0]))
    pub.close()
    sub.close()
    if not ok:
        print("  baseline: only %d of %d delivered" % (got[0], n), file=sys.stderr)
    return got[0] / dt, used


class Fleet:
    """Simulated devices, stop-and-wait: the next DELTA leaves when the ACK came back.

    A device's next DELTA is published from paho's callback, on its network thread: an ACK
    costs the bench one MQTT receive and one publish, no hand-off to another thread, so
    the devices are as cheap as paho allows and the figure is about what answers them.
    """

    def __init__(self, port: int, per_device: dict[str, list[bytes]]) -> None:
        self.per_device = per_device
        self.next = {d: 0 for d in per_device}
        self.total = sum(len(v) for v in per_device.values())
        self.acked = 0
        self.running = False
        self.done = threading.Event()
        self.client = Client(port, "fleet", ["le/d/+"], self._on_message)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self.running and len(payload) > 2 and payload[2] == M.ACK:  # [1, 4, ...]
            self.acked += 1
            self.send(topic[5:])
            if self.acked >= self.total:
                self.done.set()

    def send(self, dev: str) -> None:
        i = self.next[dev]
        if i < len(self.per_device[dev]):
            self.next[dev] = i + 1
            self.client.c.publish("le/u/" + dev, self.per_device[dev][i], 0)

    def run(self, stall_s: float = 60) -> float:
        t0 = time.perf_counter()
        self.running = True
        for dev in self.per_device:
            self.send(dev)
        seen = -1
        while not self.done.wait(stall_s):
            if self.acked == seen:
                raise RuntimeError("stalled at %d of %d acks" % (self.acked, self.total))
            seen = self.acked
        return time.perf_counter() - t0


def service(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "sdk"), str(ROOT / "gateway")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lasp_edge.cli", *args, "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=open(log, "ab"),  # noqa: SIM115
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "ready" not in line:
        raise RuntimeError("service did not start: %s" % log.read_text()[-2000:])
    return proc


def device_birth(dev: str) -> bytes:
    """The BIRTH a bench device opens its session with: it holds the impressions map and
    wants nothing back."""
    return M.birth(dev, 1, {"impressions": AWMap.TAG}, [], 0, False)


def open_sessions(client: Client, devs: Any) -> None:
    """A BIRTH per device, as devices send on connecting, and time for the gateway to
    take them (and ACK nothing) before a measurement starts."""
    for dev in devs:
        client.c.publish("le/u/" + dev, device_birth(dev))
    time.sleep(1.0)


def drive_fleet(
    port: int, per_device: dict[str, list[bytes]], pids: dict[str, int]
) -> tuple[float, dict[str, float | None]]:
    """Sessions first (a BIRTH per device, as devices do), then the stop-and-wait run:
    acknowledged messages per second, and the CPU time per message of ``pids`` (with the
    gateway's disk bytes written per message, as ``gateway_disk_b``)."""
    fleet = Fleet(port, per_device)
    try:
        open_sessions(fleet.client, per_device)
        cpu = CpuMeter(pids)
        dt = fleet.run()
        used = cpu.us_per_message(fleet.total)
        if "gateway" in pids:
            used["gateway_disk_b"] = cpu.disk_bytes_per_message("gateway", fleet.total)
        return fleet.total / dt, used
    finally:
        fleet.client.close()


def echo_server(port: int, journal: str | None = None) -> None:
    """``--echo-server``: answer every DELTA on ``le/u/<id>`` with an ACK-shaped message on
    ``le/d/<id>``, and nothing else: the gateway's MQTT work without decoding, merging or
    persisting (what (b) would be if those cost nothing). It runs on the gateway's own MQTT
    code (``MqttLink`` driven by ``LinkLoop`` from one thread, the services' loop: read a
    batch, publish, flush), so (e) is the ceiling of (b) exactly.

    With ``journal`` (a path: (h)) it also makes each batch durable before answering it, as
    cheaply as the gateway can: the raw payloads appended to the gateway's own input
    journal (``NodeDB.journal_inputs``, one transaction), the WAL fsynced by the gateway's
    own ``WalSyncer`` thread (so the loop reads the next batch meanwhile, as the gateway's
    does), the ACKs sent once the fsync covering their batch is done. Any gateway that
    acknowledges after its commit does at least this, so (h) bounds (b) from above more
    tightly than (e)."""
    from lasp_gateway.mqtt_link import LinkLoop, MqttLink
    from lasp_gateway.nodedb import NodeDB
    from lasp_gateway.service import WalSyncer
    from lasp_gateway.settings import BrokerSettings

    logging.getLogger("lasp_gateway").setLevel(logging.ERROR)  # no connect/disconnect lines

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ack = M.ack("gw", 1, 1, 0)
    links: list[MqttLink] = []
    batch: list[tuple[str, bytes]] = []
    unsynced: list[tuple[int, list[str]]] = []  # (save number, its devices) awaiting fsync
    synced = [0]
    saves = 0

    def on_message(topic: str, payload: bytes) -> None:
        if len(payload) > 2 and payload[2] == M.DELTA:
            if journal is None:
                links[0].publish("le/d/" + topic[5:], ack)
            else:
                batch.append((topic[5:], payload))

    links.append(MqttLink("echo", BrokerSettings(port=port), ["le/u/+"], on_message))
    loop = LinkLoop(links).start()
    syncer = db = None
    if journal is not None:
        db = NodeDB(journal, fsync_apart=True)  # COMMIT without fsync: the syncer's job

        def on_synced(n: int) -> None:
            synced[0] = n
            loop.wake()

        syncer = WalSyncer(db, on_synced, lambda exc: stop.set())
    while not links[0].connected:
        loop.poll(0.05)
    settle = time.monotonic() + 0.5  # the SUBACK (on loopback: well within this)
    while time.monotonic() < settle:
        loop.poll(0.05)
    print("ready", flush=True)
    while not stop.is_set():
        loop.poll(0.1)
        if db is not None and syncer is not None:
            if batch:
                db.journal_inputs(batch, {})
                saves += 1
                unsynced.append((saves, [dev for dev, _p in batch]))
                batch.clear()
                syncer.request(saves)
            while unsynced and unsynced[0][0] <= synced[0]:
                for dev in unsynced.pop(0)[1]:
                    links[0].publish("le/d/" + dev, ack)
        loop.flush()
    if db is not None and syncer is not None:
        syncer.close()
        db.close()
    loop.close()


def echo_run(
    port: int, per_device: dict[str, list[bytes]], broker_pid: int, journal: Path | None = None
) -> tuple[float, dict[str, float | None]]:
    """The fleet of (b) against ``echo_server`` in its own process instead of the gateway
    (with ``journal``: the durable echo of (h), its SQLite file there)."""
    extra = [] if journal is None else ["--echo-journal", str(journal)]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--echo-server", str(port), *extra], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        if "ready" not in proc.stdout.readline().decode():
            raise RuntimeError("echo server did not start")
        pids = {"bench": os.getpid(), "mosquitto": broker_pid, "echo": proc.pid}
        return drive_fleet(port, per_device, pids)
    finally:
        stop_process(proc, 15)


def gateway_run(
    port: int, workdir: Path, sync: str, broker_pid: int, drive: Any, extra: tuple = ()
) -> Any:
    """A fresh gateway (with ``extra`` options) and aggregator; ``drive(pids)`` runs the
    devices against them and returns the figures."""
    run = tempfile.mkdtemp(dir=workdir)
    agg = service(
        ["aggregator", "--broker", "127.0.0.1:%d" % port, "--db", run + "/agg.db",
         "--program", "%s:program" % __file__, "--synchronous", sync],
        workdir / "agg.log",
    )  # fmt: skip
    gw = service(
        ["gateway", "--broker", "127.0.0.1:%d" % port, "--db", run + "/gw.db",
         "--synchronous", sync, "--status-period-ms", "0", *extra],
        workdir / "gw.log",
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the gateway learns the schema from the aggregator
        pids = {"bench": os.getpid(), "mosquitto": broker_pid, "gateway": gw.pid}
        return drive(dict(pids, aggregator=agg.pid))
    finally:
        for p in (gw, agg):
            stop_process(p, 15)


def paced_fleet(port: int, per_device: dict[str, list[bytes]], pids: dict[str, int]) -> dict:
    """(f) A fleet at a moderate, steady rate: every device sends one DELTA a second (its
    sends spread evenly over the second), as a fleet syncing once a second does. Returns
    the gateway's disk bytes and CPU per DELTA and the ACK latency (send to ACK)."""
    sent_at: dict[str, float] = {}
    latency: list[float] = []
    acked = [0]

    def on_message(topic: str, payload: bytes) -> None:
        if len(payload) > 2 and payload[2] == M.ACK:
            t = sent_at.pop(topic[5:], None)
            if t is not None:
                latency.append(time.perf_counter() - t)
            acked[0] += 1

    client = Client(port, "paced", ["le/d/+"], on_message)
    devs = sorted(per_device)
    seconds = min(len(v) for v in per_device.values())
    try:
        open_sessions(client, devs)
        acked[0] = 0
        meter = CpuMeter({"gateway": pids["gateway"]})
        t0 = time.perf_counter()
        for k in range(seconds):
            for i, dev in enumerate(devs):
                pause = t0 + k + i / len(devs) - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                sent_at[dev] = time.perf_counter()
                client.c.publish("le/u/" + dev, per_device[dev][k], 0)
        deadline = time.monotonic() + 30
        n = seconds * len(devs)
        while acked[0] < n and time.monotonic() < deadline:
            time.sleep(0.05)
        latency.sort()
        return {
            "messages": n,
            "acked": acked[0],
            "disk_b": meter.disk_bytes_per_message("gateway", n),
            "cpu_us": meter.us_per_message(n)["gateway"],
            "p50_ms": latency[len(latency) // 2] * 1e3 if latency else None,
            "p99_ms": latency[int(len(latency) * 0.99)] * 1e3 if latency else None,
        }
    finally:
        client.close()


def own_work(per_device: dict[str, list[bytes]], workdir: Path, repeats: int = 3) -> dict:
    """(g) The gateway's own work per DELTA, without MQTT and without other processes: a
    ``Gateway`` in this process (its own SQLite file, the fsync in line), fed the DELTAs of
    (b) one round at a time (a DELTA from every device, as stop-and-wait devices send them:
    one batch), ACKs encoded but not published. CPU time (this process) per DELTA, the
    median of ``repeats`` fresh gateways; and of that, ``messages.decode`` of the same bytes
    alone (CBOR, the envelope's checks, the CRDTs' ``from_wire``)."""
    from lasp_edge import LWWRegister
    from lasp_gateway.gateway import Gateway, GatewayConfig

    schema = LWWRegister()
    schema.set({"vars": {"impressions": [AWMap.TAG, AWMap("gcounter").params()]}, "at_ms": 1},
               1, "agg")  # fmt: skip
    devs = sorted(per_device)
    rounds = min(len(v) for v in per_device.values())
    n = rounds * len(devs)
    turn: list[float] = []
    decode: list[float] = []
    for r in range(repeats):
        gw = Gateway(GatewayConfig(db=str(workdir / ("own%d.db" % r)), status_period_ms=0))
        gw.route = lambda peer, data: None  # type: ignore[method-assign]
        try:
            gw.deliver("uplink", "le/g/%s/agg" % gw.node.replica, M.delta(
                "agg", 1, 1, 1, 0, 1, False, {"schema@agg": wire.to_typed(schema)}))  # fmt: skip
            for dev in devs:
                gw.deliver("devices", "le/u/" + dev, device_birth(dev))
            gw.step(wait=0)
            merged0 = gw.deltas
            t0 = time.process_time()
            for k in range(rounds):
                for dev in devs:
                    gw.deliver("devices", "le/u/" + dev, per_device[dev][k])
                gw.step(wait=0)
            turn.append((time.process_time() - t0) / n * 1e6)
            if gw.deltas - merged0 != n:
                raise RuntimeError("own work: %d of %d DELTAs merged" % (gw.deltas - merged0, n))
        finally:
            gw.db.close()
        t0 = time.process_time()
        for k in range(rounds):
            for dev in devs:
                M.decode(per_device[dev][k])
        decode.append((time.process_time() - t0) / n * 1e6)
    return {"turn_us": C.median(turn), "decode_us": C.median(decode), "messages": n}


def run_ratio(runs: dict[str, list], top: str, bottom: str) -> float | None:
    """Median over runs of ``top / bottom``, each pair measured in the same run."""
    pairs = [(t, b) for t, b in zip(runs[top], runs[bottom], strict=True) if t is not None and b]
    return C.median(t / b for t, b in pairs) if pairs else None


def pipeline_rows(m: dict[str, float | None], r: dict[str, float | None], batch: int) -> list:
    """The markdown table: each rate as a ratio to the one above it, and the goals."""
    b, u = r["gateway"], r["updates"]
    return [
        ["(0) broker limit: mosquitto_pub -l -> mosquitto_sub (C)",
         C.fmt_rate(m["c_clients_msgs"]), "1.00", "", ""],
        ["(a) raw paho-mqtt publish -> subscribe", C.fmt_rate(m["baseline_msgs"]),
         C.fmt_ratio(r["paho_vs_c_clients"]), "", ""],
        ["(b) lasp-edge gateway ingest, ACKed after the SQLite commit",
         C.fmt_rate(m["gateway_msgs"]), C.fmt_ratio(b), ">= 0.80 of (a)",
         C.met(None if b is None else b >= 0.8)],
        ["(c) device updates absorbed end to end, %d per DELTA (updates/s)" % batch,
         C.fmt_rate(m["updates"]), "n/a" if u is None else "%.1f x (a)" % u, ">= 10 x (a)",
         C.met(None if u is None else u >= 10)],
    ]  # fmt: skip


PACED_DELAYS_MS = (0, 20)  # group commit off, and the gateway's default
PROCESSES = ("bench", "mosquitto", "echo", "gateway", "aggregator")
SIDES = ("baseline", "echo", "durable", "gateway")


def cpu_table(cpu: dict[str, dict[str, float | None]], cores: int) -> str:
    rows = []
    for proc in PROCESSES:
        rows.append([proc] + [C.fmt_num(cpu[side][proc], 1) for side in SIDES])
    totals = [sum(v for v in cpu[side].values() if v is not None) for side in SIDES]
    rows.append(["**total**"] + ["**%s**" % C.fmt_num(t, 1) for t in totals])
    rows.append(
        ["rate bound on %d cores" % cores]
        + [C.fmt_rate(cores * 1e6 / t) + " /s" if t else "n/a" for t in totals]
    )
    return C.md_table(
        ["process", "(a) paho baseline", "(e) echo run", "(h) durable echo run", "(b) gateway run"],
        rows,
    )


def budget_at_goal(runs: dict[str, list], goal: float = 0.8) -> dict | None:
    """The gateway process's CPU per DELTA at which (b) would reach ``goal`` x (a).

    Within each run, interpolated linearly between its two measured points: (h), the least
    work a gateway that ACKs after its commit does, and (b), the gateway; rate ratio to
    (a) against that process's CPU per DELTA (the other processes spend about the same in
    both). The median over the runs where ``goal`` lies between the two, so that one run
    disturbed by outside load does not decide it; None if there is no such run."""
    at_goal, extra, now = [], [], []
    for i, base in enumerate(runs["baseline"]):
        h = runs["durable_cpu_us"][i].get("echo")
        b = runs["gateway_cpu_us"][i].get("gateway")
        if not base or h is None or b is None:
            continue
        rh, rb = runs["durable"][i] / base, runs["gateway"][i] / base
        if rb < goal < rh:
            at = h + (rh - goal) / (rh - rb) * (b - h)
            at_goal.append(at)
            extra.append(at - h)
            now.append(b - h)
    if not at_goal:
        return None
    return {
        "goal": goal,
        "runs": len(at_goal),
        "gateway_us_at_goal": C.median(at_goal),
        "own_us_at_goal": C.median(extra),
        "own_us": C.median(now),
    }


def budget_text(fig: dict) -> str:
    """Where the goal of (b) lies between (h) and (b), in the gateway's CPU per DELTA."""
    r = fig["ratio"]
    if r["durable"] is not None and r["durable"] <= 0.8:
        return ("Even (h) stays at or below 0.80 of (a) here: no gateway that acknowledges "
                "after its commit through this MQTT code can meet the goal of (b) on this "
                "machine.")  # fmt: skip
    bud = fig["budget"]
    if bud is None:
        return ""
    return (
        "Where the goal lies: (h) reached %s of (a) and (b) %s. Interpolating linearly "
        "between the two within each run (rate ratio against the CPU per DELTA of the "
        "process answering the fleet), (b) would reach 0.80 with a gateway process at "
        "about **%s µs** per DELTA: at most **%s µs** for decoding, authorizing and merging "
        "each DELTA and keeping the node's state, on top of what (h) does, where the "
        "gateway now spends %s µs on them (medians over the %d runs where 0.80 lay between "
        "(h) and (b); (g) below measures that work alone)."
        % (C.fmt_ratio(r["durable"]), C.fmt_ratio(r["gateway"]),
           C.fmt_num(bud["gateway_us_at_goal"], 0), C.fmt_num(bud["own_us_at_goal"], 0),
           C.fmt_num(bud["own_us"], 0), bud["runs"])
    )  # fmt: skip


def markdown(fig: dict, runs: dict[str, list], args: argparse.Namespace) -> str:
    m = fig["median"]
    mach = C.machine()
    rows = pipeline_rows(m, fig["ratio"], args.batch)
    per_run = [
        [str(i + 1)]
        + [C.fmt_rate(runs[k][i]) for k in ("c_clients", "baseline", "echo", "durable", "gateway")]
        + [C.fmt_ratio(runs["gateway"][i] / runs["baseline"][i]),
           C.fmt_ratio(runs["gateway"][i] / runs["echo"][i]), C.fmt_rate(runs["updates"][i])]
        for i in range(len(runs["baseline"]))
    ]  # fmt: skip
    echo_rows = [
        ["(e) the fleet of (b) against an echo on the gateway's MQTT code (an ACK-shaped "
         "reply per DELTA, nothing else)",
         C.fmt_rate(m["echo_msgs"]), "1.00", C.fmt_ratio(fig["ratio"]["echo"])],
        ["(h) the same echo, each batch made durable before it is answered (the raw payloads "
         "appended to SQLite, the WAL fsynced) and nothing else",
         C.fmt_rate(m["durable_msgs"]), C.fmt_ratio(fig["ratio"]["durable_vs_echo"]),
         C.fmt_ratio(fig["ratio"]["durable"])],
        ["(b) the fleet against the gateway", C.fmt_rate(m["gateway_msgs"]),
         C.fmt_ratio(fig["ratio"]["gateway_vs_echo"]), C.fmt_ratio(fig["ratio"]["gateway"])],
    ]  # fmt: skip
    return "\n".join(
        [
            "## Gateway ingest and the broker pipeline",
            "",
            "```",
            C.command_line(),
            "```",
            "",
            "One mosquitto %s on loopback; every run measures the rates below in turn, side "
            "by side; rates are medians of %d runs and each ratio is the median of the ratios "
            "measured within a run (%d messages from %d devices, "
            "%.0f B per DELTA, %.0f B batched; SQLite `synchronous=%s`). Machine: %s, "
            "%s cores, load average %s at the start and %s at the end (the machine is "
            "shared: the ratios, measured in the same run, are what counts)."
            % (fig["mosquitto"], args.runs, fig["messages"], args.devices,
               fig["bytes_per_message"], fig["bytes_per_batched_message"], args.synchronous,
               mach["cpu"], mach["cores"], fig["load_before"], fig["load_after"]),
            "",
            C.md_table(["rate", "median /s", "x the row above", "goal", ""], rows),
            "",
            "Diagnostic, no goal: the same stop-and-wait fleet against a process that only "
            "does the gateway's MQTT work (e), and that work plus the cheapest durable commit "
            "(h), so that the gap between (b) and (a) splits into what the protocol's round "
            "trips cost, what acknowledging only after an fsync costs, and what the gateway "
            "adds. (h)/(a) is the most a gateway that ACKs each DELTA after its commit, "
            "through this MQTT code, could reach here:",
            "",
            C.md_table(["rate", "median /s", "x (e)", "x (a)"], echo_rows),
            "",
            budget_text(fig),
            "",
            "What each side does:",
            "",
            "* **(0)** `mosquitto_sub -t 'le/u/+' -C N` and `mosquitto_pub -l -t le/u/c0` fed N "
            "lines of the DELTAs' sizes from a file (N at least 50,000, so that starting the "
            "publisher does not weigh): one connection each, QoS 0. `-l` pipelines "
            "every message on one connection (the fairest broker limit: `--repeat` adds a delay "
            "per message, `-m` a process per message). Timed from the publisher's start to the "
            "subscriber's exit on its N-th message.",
            "* **(a)** one paho client publishes the device DELTA bytes (QoS 0) to `le/u/<id>`, "
            "another paho client in the same process, subscribed to `le/u/+`, counts them; "
            "timed from the first publish to the last receipt.",
            "* **(b)** `lasp-edge gateway` (its own process) with an aggregator behind it. The "
            "bench process plays %d devices, each stop-and-wait: it publishes a device's next "
            "DELTA only when the gateway's ACK for the previous one arrived. The gateway "
            "receives, decodes, authorizes and merges each DELTA, commits the batch to SQLite "
            "(fsync with `synchronous=full`), and only then publishes one ACK per device and "
            "batch. Timed from the first DELTA to the last ACK; every message counted was "
            "durable before it was acknowledged." % args.devices,
            "* **(e)** as (b), but `bench_gateway.py --echo-server` (its own process, on the "
            "gateway's own MQTT code: paho driven by `LinkLoop` from one thread) answers each "
            "DELTA at once with an ACK-shaped message from its `on_message`: no decoding, "
            "merging or SQLite.",
            "* **(h)** as (e), with `--echo-journal`: the echo appends each batch's raw "
            "payloads to the gateway's own input journal (`NodeDB.journal_inputs`, one "
            "transaction) and answers the batch once the gateway's own `WalSyncer` thread "
            "has fsynced the WAL (the loop reads the next "
            "batch meanwhile, as the gateway's does). Any gateway that acknowledges after its "
            "commit does at least this.",
            "* **(c)** as (b), each DELTA carrying %d updates: updates/s = acknowledged DELTAs "
            "x %d / time." % (args.batch, args.batch),
            "",
            "CPU time per message, by process (microseconds, user + system, all threads; "
            "median over runs). The gateway process is the gateway's whole cost; with every "
            "process busy, %s cores bound a rate by cores / total CPU per message:"
            % mach["cores"],
            "",
            cpu_table(fig["cpu_us_per_message"], mach["cores"] or 1),
            "",
            "The gateway process wrote %s bytes to the disk per DELTA (median; `write_bytes` "
            "of /proc/<pid>/io: SQLite's WAL and checkpoints, with their fsyncs)."
            % C.fmt_num(fig["gateway_disk_bytes_per_message"], 0),
            "",
            "(f) A steady fleet instead of a saturating one: the %d devices each send one DELTA "
            "a second (spread evenly: %d DELTAs/s, for %d s), as a fleet syncing every second "
            "does, against a fresh gateway with group commit off and at its default. At such a "
            "rate every message would otherwise be a commit, an fsync and at least a page of "
            "WAL of its own; the gateway's `--commit-delay-ms` lets a batch wait that long "
            "after its first message (or until %d are queued, so a saturated gateway never "
            "waits). Bytes are the gateway process's disk writes (`write_bytes`), the flash "
            "a Raspberry Pi's SD card takes; latency is from a DELTA's publish to its ACK:"
            % (args.devices, args.devices, args.paced_seconds, GROUP_COMMIT_BATCH),
            "",
            C.md_table(["`--commit-delay-ms`", "disk bytes / DELTA", "gateway CPU µs / DELTA",
                        "ACK latency p50 (ms)", "p99 (ms)", "acked"], [
                [d, C.fmt_num(f["disk_b"], 0), C.fmt_num(f["cpu_us"], 0),
                 C.fmt_num(f["p50_ms"], 1), C.fmt_num(f["p99_ms"], 1),
                 "%d of %d" % (f["acked"], f["messages"])]
                for d, f in fig["paced"].items()]),
            "",
            "(g) The gateway's own work alone, without MQTT or any other process: a gateway "
            "in the bench process, fed the DELTAs of (b) a round (one per device) per batch, "
            "each batch committed and fsynced, ACKs encoded but not published, spends "
            "**%s µs** of CPU per DELTA (median of 3 fresh gateways, %d DELTAs each); "
            "decoding the same bytes alone (`messages.decode`: CBOR, the envelope's checks, "
            "the CRDTs' `from_wire`) takes %s µs of it. The gateway process of (b) adds its "
            "MQTT work (about what the echo of (e) spends) and its timers to this."
            % (C.fmt_num(fig["own_work"]["turn_us"], 1), fig["own_work"]["messages"],
               C.fmt_num(fig["own_work"]["decode_us"], 1)),
            "",
            "Every run:",
            "",
            C.md_table(["run", "(0) C clients", "(a) paho", "(e) echo", "(h) durable echo",
                        "(b) gateway", "(b)/(a)", "(b)/(e)", "(c) updates/s"], per_run),
            "",
        ]
    )  # fmt: skip


def load_average() -> str:
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "n/a"


def mosquitto_version(binary: str) -> str:
    try:
        r = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = (r.stdout or r.stderr).splitlines()[:1]
    return first[0].split(" running")[0].replace("mosquitto version", "").strip() if first else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--batch", type=int, default=100, help="updates per message in (c)")
    ap.add_argument("--synchronous", choices=["full", "normal"], default="full")
    ap.add_argument("--paced-seconds", type=int, default=10, help="length of (f)")
    ap.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--echo-journal", metavar="PATH", help=argparse.SUPPRESS)
    C.add_contract_args(ap)
    args = ap.parse_args()
    if args.echo_server:
        echo_server(args.echo_server, args.echo_journal)
        return 0
    if args.quick:
        args.runs, args.messages = min(args.runs, 2), min(args.messages, 5000)
        args.paced_seconds = min(args.paced_seconds, 3)
    per = max(1, args.messages // args.devices)
    devs = ["d%04d" % i for i in range(args.devices)]
    single = {d: payloads(d, per, 1) for d in devs}
    batched = {d: payloads(d, per, args.batch) for d in devs}
    flat = [("le/u/" + d, p) for i in range(per) for d in devs for p in [single[d][i]]]
    n = len(flat)
    size = statistics.mean(len(p) for _t, p in flat)
    bsize = statistics.mean(len(p) for v in batched.values() for p in v)
    # The C clients get at least 50,000 messages (the same sizes, repeated): at their rate
    # that is about a second, so starting mosquitto_pub does not weigh on the figure.
    c_sizes = [len(p) for _t, p in flat] * max(1, -(-50_000 // n))
    workdir = Path(tempfile.mkdtemp(prefix="bench_gateway_"))
    load_before = load_average()
    broker, port = start_mosquitto(workdir)
    paced: dict[str, dict] = {}
    runs: dict[str, list] = {
        "c_clients": [],
        "baseline": [],
        "gateway": [],
        "updates": [],
        "echo": [],
        "durable": [],
        "baseline_cpu_us": [],
        "gateway_cpu_us": [],
        "echo_cpu_us": [],
        "durable_cpu_us": [],
    }
    try:
        for r in range(args.runs):
            runs["c_clients"].append(c_clients(port, c_sizes, workdir))
            rate, used = baseline(port, flat, broker.pid)
            runs["baseline"].append(rate)
            runs["baseline_cpu_us"].append(used)
            rate, used = echo_run(port, single, broker.pid)
            runs["echo"].append(rate)
            runs["echo_cpu_us"].append(used)
            rate, used = echo_run(port, single, broker.pid, workdir / ("durable%d.db" % r))
            runs["durable"].append(rate)
            runs["durable_cpu_us"].append(used)
            rate, used = gateway_run(
                port,
                workdir,
                args.synchronous,
                broker.pid,
                lambda pids: drive_fleet(port, single, pids),
            )
            runs["gateway"].append(rate)
            runs["gateway_cpu_us"].append(used)
            rate, _ = gateway_run(
                port,
                workdir,
                args.synchronous,
                broker.pid,
                lambda pids: drive_fleet(port, batched, pids),
            )
            runs["updates"].append(rate * args.batch)
            c0 = runs["c_clients"][-1]
            print("  run %d: C clients %s msg/s, paho %.0f msg/s, echo %.0f msg/s, durable "
                  "echo %.0f msg/s, gateway %.0f msg/s, %.0f updates/s" % (r + 1, "n/a" if c0
                  is None else "%.0f" % c0, runs["baseline"][-1], runs["echo"][-1],
                  runs["durable"][-1], runs["gateway"][-1], runs["updates"][-1]),
                  flush=True)  # fmt: skip
        paced_msgs = {d: payloads(d, args.paced_seconds, 1) for d in devs}
        for delay in PACED_DELAYS_MS:
            f = gateway_run(
                port,
                workdir,
                args.synchronous,
                broker.pid,
                lambda pids: paced_fleet(port, paced_msgs, pids),
                ("--commit-delay-ms", str(delay)),
            )
            paced[str(delay)] = f
            print(
                "  steady fleet, commit delay %d ms: %s B and %s us per DELTA on the "
                "gateway, ACK after %s ms (p50), %d of %d acked"
                % (
                    delay,
                    C.fmt_num(f["disk_b"], 0),
                    C.fmt_num(f["cpu_us"], 0),
                    C.fmt_num(f["p50_ms"], 1),
                    f["acked"],
                    f["messages"],
                ),
                flush=True,
            )
    finally:
        broker.terminate()
        broker.wait(10)
    own = own_work(single, workdir)
    print("  own work: %.1f us of CPU per DELTA, %.1f of them decoding"
          % (own["turn_us"], own["decode_us"]), flush=True)  # fmt: skip
    cs = [x for x in runs["c_clients"] if x is not None]
    med = {
        "c_clients_msgs": C.median(cs) if cs else None,
        "baseline_msgs": C.median(runs["baseline"]),
        "gateway_msgs": C.median(runs["gateway"]),
        "echo_msgs": C.median(runs["echo"]),
        "durable_msgs": C.median(runs["durable"]),
        "updates": C.median(runs["updates"]),
    }
    # every ratio is taken within a run (side by side), then the median over runs
    ratios = {
        "paho_vs_c_clients": run_ratio(runs, "baseline", "c_clients"),
        "gateway": run_ratio(runs, "gateway", "baseline"),
        "gateway_vs_echo": run_ratio(runs, "gateway", "echo"),
        "echo": run_ratio(runs, "echo", "baseline"),
        "durable": run_ratio(runs, "durable", "baseline"),
        "durable_vs_echo": run_ratio(runs, "durable", "echo"),
        "updates": run_ratio(runs, "updates", "baseline"),
    }
    disk = [r["gateway_disk_b"] for r in runs["gateway_cpu_us"] if r.get("gateway_disk_b")]
    fig = {
        "messages": n,
        "devices": args.devices,
        "batch": args.batch,
        "bytes_per_message": size,
        "bytes_per_batched_message": bsize,
        "synchronous": args.synchronous,
        "mosquitto": mosquitto_version(shutil.which("mosquitto") or "/usr/sbin/mosquitto"),
        "load_before": load_before,
        "load_after": load_average(),
        "gateway_disk_bytes_per_message": C.median(disk) if disk else None,
        "runs": runs,
        "median": med,
        "paced": paced,
        "paced_seconds": args.paced_seconds,
        "own_work": own,
        "cpu_us_per_message": {
            side: {
                proc: C.median(xs) if xs else None
                for proc in PROCESSES
                for xs in [[r[proc] for r in runs[side + "_cpu_us"] if r.get(proc) is not None]]
            }
            for side in SIDES
        },
        "ratio": ratios,
        "goals": {
            "gateway_ge_0.8": (ratios["gateway"] or 0) >= 0.8,
            "updates_ge_10x": (ratios["updates"] or 0) >= 10,
        },
    }
    fig["budget"] = budget_at_goal(runs)
    print()
    print("gateway bench: %d messages (%d devices x %d), %.0f B/message (%.0f B batched),"
          " SQLite synchronous=%s, median of %d runs" % (n, args.devices, per, size, bsize,
          args.synchronous, args.runs))  # fmt: skip
    for row in pipeline_rows(med, ratios, args.batch):
        print("%-66s %10s %12s  %s %s" % tuple(row))
    C.write_outputs(args, fig, markdown(fig, runs, args))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
