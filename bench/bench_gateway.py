"""Gateway throughput against a raw-MQTT baseline measured in the same run, same broker.

    .venv/bin/python bench/bench_gateway.py [--runs 5] [--messages 20000] [--devices 500]
                                            [--batch 50] [--synchronous full]
                                            [--json build/bench/bench_gateway.json]

One mosquitto on a loopback port serves all three measurements:

(a) baseline: one paho client publishes the device DELTA payloads below (QoS 0) to
    ``le/u/<id>``; another paho client in the same process, subscribed to ``le/u/+``,
    counts them. messages/s = messages / (first publish -> last receipt).
(b) gateway ingest: ``lasp-edge gateway`` (a subprocess, SQLite ``--synchronous``, default
    full: an fsync per commit) with an aggregator behind it. ``--devices`` simulated devices
    each send their DELTAs one at a time, the next only when the ACK for the previous one
    came back (stop-and-wait, as the protocol does), so every message counted was
    *acknowledged after it was durable*. messages/s = acknowledged messages / time. The
    bench process does the same MQTT work as in (a) (publish DELTAs, receive small
    messages); the gateway's work is what it adds.
(c) updates absorbed: as (b), but each DELTA carries ``--batch`` updates (a device that
    counted several impressions between two syncs: its slots for several ads moved), so
    updates/s = acknowledged messages x batch / time.

Payloads are the bytes a device Node sends: ``[1, 3, dev, 1, k, k, 0, 1, false,
{"impressions": AWMap ad -> {dev: count}}]`` with its sequence interval [k, k]. Each figure
is the median of ``--runs`` runs (a fresh gateway and database per run).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "sdk"), str(ROOT / "gateway")]

import paho.mqtt.client as paho  # noqa: E402

from lasp_edge import AWMap, wire  # noqa: E402
from lasp_edge.sync import messages as M  # noqa: E402

ADS = ["ad-%d" % i for i in range(10)]


def program(store) -> None:  # the aggregator's program for (b) and (c)
    store.declare("impressions", "awmap", vtype="gcounter")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def baseline(port: int, msgs: list[tuple[str, bytes]]) -> float:
    done = threading.Event()
    got = [0]
    n = len(msgs)

    def on_message(_t, _p) -> None:
        got[0] += 1
        if got[0] == n:
            done.set()

    sub = Client(port, "sub", ["le/u/+"], on_message)
    pub = Client(port, "pub", [], None)
    t0 = time.perf_counter()
    for topic, data in msgs:
        pub.c.publish(topic, data, 0)
    ok = done.wait(120)
    dt = time.perf_counter() - t0
    pub.close()
    sub.close()
    if not ok:
        print("  baseline: only %d of %d delivered" % (got[0], n), file=sys.stderr)
    return got[0] / dt


class Fleet:
    """Simulated devices, stop-and-wait: the next DELTA leaves when the ACK came back."""

    def __init__(self, port: int, per_device: dict[str, list[bytes]]) -> None:
        self.per_device = per_device
        self.next = {d: 0 for d in per_device}
        self.total = sum(len(v) for v in per_device.values())
        self.acked = 0
        self.inbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.client = Client(port, "fleet", ["le/d/+"], self._on_message)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if len(payload) > 2 and payload[2] == M.ACK:  # [1, 4, ...]: an ACK
            self.inbox.put(topic[5:])

    def send(self, dev: str) -> None:
        i = self.next[dev]
        if i < len(self.per_device[dev]):
            self.next[dev] = i + 1
            self.client.c.publish("le/u/" + dev, self.per_device[dev][i], 0)

    def run(self, timeout: float = 300) -> float:
        t0 = time.perf_counter()
        for dev in self.per_device:
            self.send(dev)
        deadline = time.monotonic() + timeout
        while self.acked < self.total:
            try:
                dev = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("stalled at %d of %d acks" % (self.acked, self.total)) from None
            self.acked += 1
            self.send(dev)
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


def gateway_run(port: int, workdir: Path, per_device: dict[str, list[bytes]], sync: str) -> float:
    """Messages acknowledged per second, through a fresh gateway + aggregator."""
    run = tempfile.mkdtemp(dir=workdir)
    agg = service(
        ["aggregator", "--broker", "127.0.0.1:%d" % port, "--db", run + "/agg.db",
         "--program", "%s:program" % __file__, "--synchronous", sync],
        workdir / "agg.log",
    )  # fmt: skip
    gw = service(
        ["gateway", "--broker", "127.0.0.1:%d" % port, "--db", run + "/gw.db",
         "--synchronous", sync, "--status-period-ms", "0"],
        workdir / "gw.log",
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the gateway learns the schema from the aggregator
        fleet = Fleet(port, per_device)
        for dev in per_device:  # sessions first, as devices do
            fleet.client.c.publish(
                "le/u/" + dev, M.birth(dev, 1, {"impressions": 11}, [], 0, False)
            )
        time.sleep(0.5)
        dt = fleet.run()
        fleet.client.close()
        return fleet.total / dt
    finally:
        for p in (gw, agg):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--batch", type=int, default=100, help="updates per message in (c)")
    ap.add_argument("--synchronous", choices=["full", "normal"], default="full")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    per = max(1, args.messages // args.devices)
    devs = ["d%04d" % i for i in range(args.devices)]
    single = {d: payloads(d, per, 1) for d in devs}
    batched = {d: payloads(d, per, args.batch) for d in devs}
    flat = [("le/u/" + d, p) for i in range(per) for d in devs for p in [single[d][i]]]
    n = len(flat)
    size = statistics.mean(len(p) for _t, p in flat)
    bsize = statistics.mean(len(p) for v in batched.values() for p in v)
    workdir = Path(tempfile.mkdtemp(prefix="bench_gateway_"))
    broker, port = start_mosquitto(workdir)
    a, b, c = [], [], []
    try:
        for r in range(args.runs):
            a.append(baseline(port, flat))
            b.append(gateway_run(port, workdir, single, args.synchronous))
            c.append(gateway_run(port, workdir, batched, args.synchronous) * args.batch)
            print("  run %d: baseline %.0f msg/s, gateway %.0f msg/s, %.0f updates/s"
                  % (r + 1, a[-1], b[-1], c[-1]), flush=True)  # fmt: skip
    finally:
        broker.terminate()
        broker.wait(10)
    ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
    rows = [
        ("(a) baseline: raw paho publish -> subscribe", "%.0f msg/s" % ma, "1.00", ""),
        ("(b) gateway ingest, acked after durable", "%.0f msg/s" % mb, "%.2f" % (mb / ma),
         "goal >= 0.80"),
        ("(c) updates absorbed, %d per message" % args.batch, "%.0f upd/s" % mc,
         "%.1f" % (mc / ma), "goal >= 10"),
    ]  # fmt: skip
    print()
    print("gateway bench: %d messages (%d devices x %d), %.0f B/message (%.0f B batched),"
          " SQLite synchronous=%s, median of %d runs" % (n, args.devices, per, size, bsize,
          args.synchronous, args.runs))  # fmt: skip
    print("%-46s %14s %8s  %s" % ("measure", "median", "x (a)", ""))
    for row in rows:
        print("%-46s %14s %8s  %s" % row)
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {
                    "messages": n,
                    "devices": args.devices,
                    "batch": args.batch,
                    "bytes_per_message": size,
                    "synchronous": args.synchronous,
                    "runs": {"baseline": a, "gateway": b, "updates": c},
                    "median": {"baseline_msgs": ma, "gateway_msgs": mb, "updates": mc},
                    "ratio": {"gateway": mb / ma, "updates": mc / ma},
                },
                f,
                indent=2,
            )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
