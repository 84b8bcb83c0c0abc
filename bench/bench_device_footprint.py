"""Device footprint on real MicroPython: heap per firmware example, bundle size, 1-hour soak.

Everything runs the way a device does: the example's own ``main.py`` on the MicroPython
unix port, importing the ``.mpy`` bundle (``lasp-edge bundle --target unix``), against a
real mosquitto and a CPython gateway node (``tests/device/fleet_helpers.py``: the same
``Broker``, ``Gateway`` and ``DeviceProc`` the device tests use). Figures:

* **peak heap** per example: the largest ``gc.mem_alloc()`` right after ``gc.collect()``
  (the examples' ``HeapProbe``, ``LASP_HEAP_PROBE=1``) over a bounded run of updates and
  sync round trips under a generous ``-X heapsize``; median of ``--runs`` runs;
* **smallest heap cap** each example runs at: bisection over ``-X heapsize`` in 4 KB steps
  (a run passes when it ends synchronised, exit 0);
* the **floor**: ``_mp_mqtt_floor.py``, a program that only imports the runtime's
  umqtt.simple-compatible client (``lasp_device.mqtt``), connects and publishes (umqtt.simple
  itself is not installable here), measured the same two ways;
* **bundle size**: the ``.mpy`` files of ``lasp-edge bundle --target esp32``, core and
  runtime apart, and with only the CRDT types each example uses (``--app``);
* **soak**: the ad counter for one simulated hour, compressed ``--speedup`` times (its
  viewer, sync period and flush timer all scaled), the live heap sampled over simulated
  time (docs/img/device_heap_soak.png) and the flash writes the runtime made in that hour.

Budgets from the device issue: a 64 KB heap cap, a peak under 32 KB, a bundle under 40 KB.
This unix port is 64-bit and loads ``.mpy`` bytecode into the GC heap, so its figures are
upper bounds for a 32-bit board (about half: pointers and object headers are 4 bytes
there), and with frozen modules or ROMFS the code stays in flash.

    .venv/bin/python bench/bench_device_footprint.py [--runs 3] [--speedup 60] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

sys.path.insert(0, str(C.ROOT / "tests" / "device"))

from fleet_helpers import (  # noqa: E402
    MOSQUITTO,
    Broker,
    DeviceProc,
    Gateway,
    find_micropython,
    reap,
    romfs_app,
)
from mp_harness import HEAP_TARGET  # noqa: E402

HEAP_CAP_KB = int(HEAP_TARGET.rstrip("K"))  # the device budget: 64K
PEAK_GOAL_KB = 32
BUNDLE_GOAL_KB = 40
# What an ESP32 without PSRAM gives MicroPython's heap: about 110 KB (the figure in
# micropython/micropython#7962; since v1.21 the heap can also grow from the IDF heap on
# demand, micropython#12316). A reference for "how much of an ESP32's heap", not measured.
ESP32_HEAP_KB = 110
PROBE_HEAP = "512K"  # measures, never limits
STEP_KB = 4
FLOOR_SCRIPT = "_mp_mqtt_floor.py"  # a MicroPython program (bench/), run by this one
EXAMPLES = ("ad_counter", "leaderboard", "sensor_windows")
HOUR_MS = 3600 * 1000
RUN_TIMEOUT_S = 240  # bounds a hung device process; not a performance figure

# Device settings per example for the bounded heap runs: many updates, a sync round trip
# every SYNC_EVERY updates, default flush policy. ITERATIONS is set per run.
COMMON_ENV = dict(
    STORE_PATH="store",
    SYNC_PERIOD_MS=10000,
    FLUSH_MS=10000,
    FLUSH_EVERY=100,
    BACKOFF_CAP_MS=500,
    KEEPALIVE_S=30,
    DRAIN_MS=20000,
    MAX_RUN_MS=180000,
    HEAP_PROBE=1,
)
EXAMPLE_ENV = {
    "ad_counter": dict(SYNC_EVERY=100, VIEW_MS=0, LOOP_MS=0),
    "leaderboard": dict(
        SYNC_EVERY=50, K=10, PLAYERS="ann,bob,cy,dee", ROUND_MS=2, VIEW_MS=1, LOOP_MS=0
    ),
    "sensor_windows": dict(SYNC_EVERY=100, WINDOW_MS=500, KEEP_WINDOWS=6, SAMPLE_MS=1, LOOP_MS=0),
}


class Rig:
    """One mosquitto and one gateway node for the whole benchmark, and a unique id per run
    (the gateway keeps every device's state; a fresh id is a fresh device)."""

    def __init__(self, workdir: Path, micropython: str, lib: str) -> None:
        self.dir = workdir
        self.micropython = micropython
        self.lib = lib
        self.broker = Broker(workdir / "broker").start()
        self.gateway = Gateway(self.broker.port)
        if not self.gateway.connected.wait(60):
            raise RuntimeError("the gateway could not connect to mosquitto")
        from lasp_edge.crdts import MaxRegister

        with self.gateway.lock:  # sensor_windows waits for the server's window index
            self.gateway.node.declare("window", MaxRegister())
            self.gateway.node.update("window", "set", 1)
        self.ids = itertools.count(1)
        self.app_images: dict[str, tuple[str, str]] = {}  # example -> (ROMFS image, stub)

    def close(self) -> None:
        reap()
        self.gateway.close()
        self.broker.stop()

    romfs: str | None = None  # a ROMFS image of the bundle, when this checkout can run one

    def run_example(
        self, example: str, heap: str, iterations: int, extra=None, script=None, romfs=False
    ):
        """Run one example to its end (from the image if ``romfs``); (passed, output)."""
        n = next(self.ids)
        wd = self.dir / ("%s-%d" % (example, n))
        env = dict(COMMON_ENV, **EXAMPLE_ENV[example])
        env.update(
            BROKER_HOST="127.0.0.1",
            BROKER_PORT=self.broker.port,
            DEVICE_ID="%s-%d" % (example[:2], n),
            ITERATIONS=iterations,
        )
        env.update(extra or {})
        kw = {}
        if romfs:  # the runtime and the app itself from the image, as a board deploys them
            if example not in self.app_images:
                self.app_images[example] = romfs_app(example, self.dir / ("romfs-" + example))
            kw["romfs"], kw["script"] = self.app_images[example]
        if script is not None:  # a wrapper main.py that runs the example's (soak trace)
            kw["script"] = script
        d = DeviceProc(self.micropython, example, wd, env, libpath=self.lib, heap=heap, **kw)
        d.start()
        try:
            rc = d.proc.wait(RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            d.kill9()
            rc = -9
        out = d.output()
        return rc == 0 and "synced=True" in out, out

    def run_floor(self, heap: str, n: int, romfs=False):
        script = C.ROOT / "bench" / FLOOR_SCRIPT
        args = ["127.0.0.1", str(self.broker.port), str(n)]
        if romfs:
            import romfs_launch

            env = {"MICROPYPATH": ""}
            cmd = romfs_launch.command(self.romfs, heap, script, *args)
        else:
            env = {"MICROPYPATH": self.lib}
            cmd = [self.micropython, "-X", "heapsize=" + heap, str(script)] + args
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            return False, ""
        return r.returncode == 0 and "FLOOR " in r.stdout, r.stdout + r.stderr


def fields(out: str, tag: str) -> dict[str, int]:
    """``TAG a=1 b=2`` (the last such line) as a dict of ints."""
    lines = [ln for ln in out.splitlines() if ln.startswith(tag + " ")]
    if not lines:
        raise RuntimeError("no %s line in the device output:\n%s" % (tag, out[-2000:]))
    out_d = {}
    for kv in lines[-1].split()[1:]:
        k, _, v = kv.partition("=")
        with contextlib.suppress(ValueError):
            out_d[k] = int(v)
    return out_d


def smallest_heap_kb(passes, lo_kb: int = 8, hi_kb: int = 256) -> int | None:
    """Bisection over ``-X heapsize`` in STEP_KB steps: the smallest cap at which
    ``passes(heap)`` holds, assuming it holds above it (checked at ``hi_kb`` first)."""
    if not passes("%dK" % hi_kb):
        return None
    lo, hi = lo_kb // STEP_KB, hi_kb // STEP_KB  # passes at hi; assume fails at lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        print("    heap %dK ..." % (mid * STEP_KB), file=sys.stderr, flush=True)
        if passes("%dK" % (mid * STEP_KB)):
            hi = mid
        else:
            lo = mid
    return hi * STEP_KB


def bundle_sizes(target: str, out: Path, app: str | None = None) -> dict[str, int]:
    """What `lasp-edge bundle` writes, plus the size of our MQTT client compiled alone
    (board bundles leave it out: boards use umqtt.simple; the unix bundle keeps it). With
    ``app`` (an example), only the CRDT types that app names (``--types`` from ``--app``)."""
    extra = ["--app", str(C.ROOT / "firmware_examples" / app)] if app else []
    r = subprocess.run(
        [sys.executable, "-m", "lasp_edge.cli", "bundle", "--target", target, "--with-mqtt"]
        + extra
        + [str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(C.ROOT),
    )
    if r.returncode != 0:
        raise RuntimeError("bundle failed:\n" + r.stdout + r.stderr)
    lib = out / "lib"
    size = {  # the app's own .mpy (lib/<app>.mpy) is not part of the bundle's figure
        top: sum(p.stat().st_size for p in (lib / top).rglob("*.mpy"))
        for top in ("lasp_edge", "lasp_device")
    }
    mqtt = (lib / "lasp_device" / "mqtt.mpy").stat().st_size
    return {
        "core": size["lasp_edge"],
        "runtime": size["lasp_device"] - mqtt,
        "total": size["lasp_edge"] + size["lasp_device"] - mqtt,
        "mqtt_client": mqtt,
    }


def romfs_image(lib: str, dest: Path) -> str | None:
    """The bundle packed as a ROMFS image, if this checkout can run one on the unix port
    (``romfs_launch.py`` and an in-process MicroPython): the code then executes in place,
    outside the heap, as from a board's flash. None otherwise (those figures are skipped)."""
    import inspect

    try:
        import romfs_launch

        from lasp_edge.tooling import bundle
    except ImportError:
        return None
    if (
        not romfs_launch.available()
        or not hasattr(bundle, "romfs_image")
        or "romfs" not in inspect.signature(DeviceProc).parameters
    ):
        return None
    try:
        bundle.romfs_image(lib, dest)
    except bundle.BundleError as e:
        print("no ROMFS figures: %s" % e, file=sys.stderr)
        return None
    return str(dest)


SOAK_WRAPPER = """\
# bench_device_footprint.py soak: print the live heap over time, then run the example.
from lasp_device import app
from time import ticks_diff, ticks_ms  # runs on MicroPython only

_t0 = ticks_ms()
_last = [-%(every)d]
_sample = app.HeapProbe.sample


def _traced(self):
    a = _sample(self)
    t = ticks_diff(ticks_ms(), _t0)
    if t - _last[0] >= %(every)d:
        _last[0] = t
        print("HT", t, a)
    return a


app.HeapProbe.sample = _traced
exec(open(%(main)r).read())
"""


def soak(rig: Rig, speedup: float, heap: str, workdir: Path) -> dict:
    """The ad counter for one simulated hour: a viewer about every 3 s, sync every 10 s,
    flush every 100 updates or 10 s, all divided by ``speedup``."""
    wrapper = workdir / "soak" / "main.py"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    every_ms = max(1, int(60_000 / speedup))  # one heap sample per simulated minute
    main_py = C.ROOT / "firmware_examples" / "ad_counter" / "main.py"
    wrapper.write_text(SOAK_WRAPPER % {"every": every_ms, "main": str(main_py)})
    wall_ms = int(HOUR_MS / speedup)
    updates = 1200  # one impression every 3 s for an hour
    extra = dict(
        SYNC_EVERY=0,
        VIEW_MS=max(1, int(3000 / speedup)),
        LOOP_MS=max(1, int(10 / speedup)),
        SYNC_PERIOD_MS=max(1, int(10000 / speedup)),
        FLUSH_MS=max(1, int(10000 / speedup)),
        FLUSH_EVERY=100,
        MAX_RUN_MS=2 * wall_ms,
    )
    t0 = time.monotonic()
    ok, out = rig.run_example("ad_counter", heap, updates, extra, script=str(wrapper))
    wall = time.monotonic() - t0
    if not ok:
        raise RuntimeError("soak run failed:\n" + out[-3000:])
    series = []
    for ln in out.splitlines():
        if ln.startswith("HT "):
            _, t, a = ln.split()
            series.append((int(t) * speedup / 60_000, int(a)))  # simulated minutes, bytes
    heap_f = fields(out, "HEAP")
    sync = fields(out, "SYNC")
    k = max(1, len(series) // 10)
    first = statistics.median(a for _, a in series[:k])
    last = statistics.median(a for _, a in series[-k:])
    sim_hours = wall * 1000 * speedup / HOUR_MS
    return {
        "speedup": speedup,
        "heapsize": heap,
        "wall_seconds": round(wall, 1),
        "simulated_hours": round(sim_hours, 2),
        "updates": sync.get("updates"),
        "flash_writes": sync.get("flushes"),
        "flash_writes_per_hour": round(sync.get("flushes", 0) / sim_hours, 1),
        "sync_round_trips_acked": sync.get("acked"),
        "samples": len(series),
        "first_tenth_median": first,
        "last_tenth_median": last,
        "growth_bytes": last - first,
        "base": heap_f.get("base"),
        "end": heap_f.get("end"),
        "peak": heap_f.get("peak"),
        "series": series,
    }


def plot_soak(s: dict) -> str | None:
    plt = C.pyplot()
    if plt is None or not s["series"]:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.6))
    xs = [t for t, _ in s["series"]]
    ax.plot(xs, [a / 1024 for _, a in s["series"]], lw=1, label="live heap after gc.collect()")
    ax.axhline(s["base"] / 1024, color="gray", ls="--", lw=0.8, label="after boot (code loaded)")
    ax.set_xlabel("simulated minutes (compressed %gx)" % s["speedup"])
    ax.set_ylabel("KB")
    ax.set_ylim(bottom=0)
    ax.set_title("ad_counter on MicroPython (.mpy bundle, -X heapsize=%s): 1 hour" % s["heapsize"])
    ax.legend(fontsize=8, loc="lower right")
    link = C.save_plot(fig, "device_heap_soak")
    plt.close(fig)
    return link


def programs(rig: Rig, runs: int, iterations: int, romfs: bool):
    """Peak heap (median of ``runs``) and smallest cap of every example and of the floor."""
    how = "ROMFS" if romfs else ".mpy"
    examples = {}
    for ex in EXAMPLES:
        print("%s (%s): peak heap, %d runs ..." % (ex, how, runs), file=sys.stderr, flush=True)
        samples = []
        for _ in range(runs):
            ok, out = rig.run_example(ex, PROBE_HEAP, iterations, romfs=romfs)
            if not ok:
                raise RuntimeError("%s failed at %s:\n%s" % (ex, PROBE_HEAP, out[-3000:]))
            samples.append(fields(out, "HEAP"))
        print("%s (%s): smallest heap cap ..." % (ex, how), file=sys.stderr, flush=True)
        small = smallest_heap_kb(
            lambda h, ex=ex: rig.run_example(ex, h, min(iterations, 300), romfs=romfs)[0]
        )
        examples[ex] = {
            k: statistics.median(s[k] for s in samples) for k in ("peak", "base", "data", "end")
        } | {"smallest_heap_kb": small}
    print("floor (%s): the MQTT client alone ..." % how, file=sys.stderr, flush=True)
    fl = []
    for _ in range(runs):
        ok, out = rig.run_floor(PROBE_HEAP, 200, romfs=romfs)
        if not ok:
            raise RuntimeError("floor failed:\n" + out[-2000:])
        fl.append(fields(out, "FLOOR"))
    floor = {k: statistics.median(f[k] for f in fl) for k in fl[0]}
    floor["smallest_heap_kb"] = smallest_heap_kb(
        lambda h: rig.run_floor(h, 50, romfs=romfs)[0], hi_kb=64
    )
    return examples, floor


def measure(args) -> dict:
    mp = find_micropython()
    if not mp or not Path(MOSQUITTO).exists():
        raise SystemExit("needs the micropython unix port (.[dev]) and mosquitto")
    runs = 1 if args.quick else args.runs
    iterations = 600 if args.quick else 3000
    res: dict = {"runs": runs, "iterations": iterations, "probe_heap": PROBE_HEAP}
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        work = Path(tmp)
        print("bundles ...", file=sys.stderr, flush=True)
        res["bundle_esp32"] = bundle_sizes("esp32", work / "esp32")
        res["bundle_esp32_apps"] = {
            name: bundle_sizes("esp32", work / ("esp32-" + name), name)["total"]
            for name in EXAMPLES
        }
        unix = bundle_sizes("unix", work / "unix")
        res["bundle_unix_total"] = unix["total"]
        rig = Rig(work, mp, str(work / "unix" / "lib"))
        try:
            rig.romfs = romfs_image(rig.lib, work / "bundle.romfs")
            res["examples"], res["floor"] = programs(rig, runs, iterations, romfs=False)
            if rig.romfs:
                res["romfs"], res["romfs_floor"] = programs(rig, runs, iterations, romfs=True)
            speedup = args.speedup * (4 if args.quick else 1)
            print("soak: 1 simulated hour at %gx ..." % speedup, file=sys.stderr, flush=True)
            # the soak runs at the ad counter's smallest cap plus a margin: a device's budget
            cap = res["examples"]["ad_counter"]["smallest_heap_kb"]
            res["soak"] = soak(rig, speedup, "%dK" % (cap + 32) if cap else PROBE_HEAP, work)
        finally:
            rig.close()
    return res


def heap_table(ex: dict, fl: dict) -> str:
    def cap(kb, hi):
        return "%sK" % kb if kb else "> %dK" % hi

    rows = []
    for name in EXAMPLES:
        e = ex[name]
        rows.append(
            [
                "`%s`" % name,
                C.fmt_kb(e["peak"]),
                C.fmt_kb(e["base"]),
                C.fmt_kb(e["data"]),
                C.fmt_kb(e["end"] - e["base"]),
                cap(e["smallest_heap_kb"], 256),
                C.fmt_ratio(e["peak"] / fl["peak"]),
            ]
        )
    rows.append(
        [
            "floor: `lasp_device.mqtt` alone (connect, publish)",
            C.fmt_kb(fl["peak"]),
            C.fmt_kb(fl["imported"]),
            C.fmt_kb(fl["peak"] - fl["imported"]),
            C.fmt_kb(fl["end"] - fl["imported"]),
            cap(fl["smallest_heap_kb"], 64),
            "1.00",
        ]
    )
    return C.md_table(
        [
            "program",
            "peak heap",
            "after boot (code)",
            "app data at peak",
            "end − boot",
            "smallest `-X heapsize`",
            "peak ÷ floor",
        ],
        rows,
    )


def budgets(ex: dict) -> dict[str, tuple[str, bool]]:
    """The heap budgets of the device issue: (what was measured, met?)."""
    worst = max(EXAMPLES, key=lambda n: ex[n]["peak"])
    caps = [ex[n]["smallest_heap_kb"] or 10**6 for n in EXAMPLES]
    return {
        "cap": ("largest smallest cap %dK" % max(caps), max(caps) <= HEAP_CAP_KB),
        "peak": (
            "%s (`%s`)" % (C.fmt_kb(ex[worst]["peak"]), worst),
            ex[worst]["peak"] < PEAK_GOAL_KB * 1024,
        ),
    }


def markdown(res: dict, link: str | None) -> str:
    ex = res["examples"]
    fl = res["floor"]
    b = res["bundle_esp32"]
    sk = res["soak"]
    lines = ["## Device footprint on real MicroPython", ""]
    lines.append("Command: `%s`" % res["command"])
    lines.append("")
    lines.append(
        "Each firmware example's own `main.py` on the MicroPython %s unix port, importing the "
        "`.mpy` bundle (`lasp-edge bundle --target unix`), against a real mosquitto and a "
        "gateway node; %s updates with a sync round trip every 50 to 100, default flush "
        "policy. Heap = `gc.mem_alloc()` right after `gc.collect()` (the examples' "
        "`HeapProbe`), peak over the run at `-X heapsize=%s`, median of %d runs. Smallest cap: "
        "bisection over `-X heapsize` in %d KB steps (300 updates must end synchronised)."
        % (
            (res["machine"].get("micropython") or "").split(";")[-1].strip() or "",
            C.fmt_int(res["iterations"]),
            res["probe_heap"],
            res["runs"],
            STEP_KB,
        )
    )
    lines.append("")
    lines.append("From the `.mpy` bundle (bytecode loaded into the heap, as on this port):")
    lines.append("")
    lines.append(heap_table(ex, fl))
    lines.append("")
    if res.get("romfs"):
        lines.append(
            "From the same bundle packed as a ROMFS image with the app compiled into it "
            "(`lasp-edge bundle --target unix --romfs --app firmware_examples/<example>`, "
            "mapped outside the heap by `tests/device/romfs_launch.py`; the board compiles "
            "only a one-line main.py stub): the bytecode executes in place, as "
            "from a board's flash, and the heap holds only the objects the code creates. This "
            "is the figure a board's MicroPython heap must hold (on 64-bit objects):"
        )
        lines.append("")
        lines.append(heap_table(res["romfs"], res["romfs_floor"]))
        lines.append("")
    lines.append(
        "The floor is a program that only imports the runtime's umqtt.simple-compatible client "
        "(`lasp_device.mqtt`, `bench/_mp_mqtt_floor.py`), connects and publishes: umqtt.simple "
        "itself is not installable here, and ours adds keepalive and non-blocking polling."
    )
    lines.append("")
    lines.append(
        C.md_table(
            ["`.mpy` bundle (`lasp-edge bundle --target esp32`)", "bytes"],
            [
                ["portable core (`lasp_edge`)", C.fmt_int(b["core"])],
                ["device runtime (`lasp_device`, without an MQTT client)", C.fmt_int(b["runtime"])],
                ["**total**", "**%s** (%s)" % (C.fmt_int(b["total"]), C.fmt_kb(b["total"]))],
                [
                    "not in it: our MQTT client (`--with-mqtt`; boards use umqtt.simple)",
                    C.fmt_int(b["mqtt_client"]),
                ],
            ]
            + [
                [
                    "total with only the CRDT types `%s` uses (`--app`, `--types`)" % name,
                    "%s (%s)" % (C.fmt_int(n), C.fmt_kb(n)),
                ]
                for name, n in res.get("bundle_esp32_apps", {}).items()
            ],
        )
    )
    lines.append("")
    modes = [(".mpy in the heap", budgets(ex))]
    if res.get("romfs"):
        modes.append(("ROMFS (as on a board)", budgets(res["romfs"])))
    rows = []
    for key, label in (
        ("cap", "runs under a %d KB heap cap" % HEAP_CAP_KB),
        ("peak", "peak heap < %d KB" % PEAK_GOAL_KB),
    ):
        for i, (mode, bud) in enumerate(modes):
            rows.append([label if i == 0 else "", mode, bud[key][0], C.met(bud[key][1])])
    rows.append(
        [
            "bundle < %d KB" % BUNDLE_GOAL_KB,
            "`.mpy` files, every CRDT type",
            C.fmt_kb(b["total"]),
            C.met(b["total"] < BUNDLE_GOAL_KB * 1024),
        ]
    )
    apps = res.get("bundle_esp32_apps")
    if apps:
        biggest = max(apps.values())
        rows.append(
            [
                "",
                "`.mpy` files, an example's CRDT types (largest)",
                C.fmt_kb(biggest),
                C.met(biggest < BUNDLE_GOAL_KB * 1024),
            ]
        )
    lines.append("Budgets of the device issue (absolute budgets; the floor is the baseline):")
    lines.append("")
    lines.append(C.md_table(["budget", "code from", "measured", "verdict"], rows, right_from=2))
    lines.append("")
    ref = res["romfs"] if res.get("romfs") else ex
    worst_ref = max(EXAMPLES, key=lambda n: ref[n]["peak"])
    lines.append(
        "Against an ESP32: without PSRAM, MicroPython gets a heap of about %d KB "
        "(micropython/micropython#7962; not measured here). The heaviest example's peak %s "
        "(`%s`, code %s) is %.0f%% of it as measured on this 64-bit port, an upper bound; "
        "with 32-bit objects about half that (an estimate)."
        % (
            ESP32_HEAP_KB,
            C.fmt_kb(ref[worst_ref]["peak"]),
            worst_ref,
            "in flash (ROMFS)" if res.get("romfs") else "in the heap (.mpy)",
            100 * ref[worst_ref]["peak"] / (ESP32_HEAP_KB * 1024),
        )
    )
    lines.append("")
    lines.append(
        "Why the heap figures are what they are: imported from `.mpy` files, bytecode is loaded "
        'into the GC heap ("after boot" is mostly code); from ROMFS or frozen into the '
        "firmware (`micropython/manifest.py`) it stays in flash. And this port is 64-bit: "
        "objects, pointers and code tables take about twice what they take on a 32-bit ESP32 "
        "or RP2040 (an estimate, not measured here), so a board needs roughly half the figures "
        "above. The app's own data is the small part."
    )
    lines.append("")
    lines.append("### One hour on the device, compressed in time")
    lines.append("")
    lines.append(
        "The ad counter for one simulated hour at %gx speed (%s s of wall time): a viewer about "
        "every 3 s (%s impressions), sync every 10 s, flush after 100 updates or 10 s, all "
        "timers divided by %g; the live heap sampled once per simulated minute at "
        "`-X heapsize=%s`."
        % (sk["speedup"], sk["wall_seconds"], sk["updates"], sk["speedup"], sk["heapsize"])
    )
    lines.append("")
    if link:
        lines.append("![device heap over a 1-hour soak](%s)" % link)
        lines.append("")
    lines.append(
        C.md_table(
            ["figure", "value"],
            [
                ["heap samples", sk["samples"]],
                ["median live heap, first tenth of the hour", C.fmt_kb(sk["first_tenth_median"])],
                ["median live heap, last tenth of the hour", C.fmt_kb(sk["last_tenth_median"])],
                ["**growth over the hour**", "**%+d bytes**" % sk["growth_bytes"]],
                ["peak", C.fmt_kb(sk["peak"])],
                [
                    "flash writes (snapshots saved) per simulated hour",
                    C.fmt_num(sk["flash_writes_per_hour"], 1),
                ],
            ],
        )
    )
    lines.append("")
    lines.append(
        "No growth: %s (growth under 1 KB over the hour). Flash writes per hour on the device "
        "itself, at the default policy; `bench_device_flash.py` (next section) compares the "
        "policy with a flush-every-update baseline over several workloads."
        % C.met(abs(sk["growth_bytes"]) < 1024)
    )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per peak figure (median)")
    ap.add_argument("--speedup", type=float, default=60.0, help="soak time compression")
    C.add_contract_args(ap)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    res = measure(args)
    res["command"] = C.command_line()
    res["machine"] = C.machine()
    res["seconds"] = round(time.monotonic() - t0, 1)
    ref = res.get("romfs") or res["examples"]
    res["esp32_heap_reference_kb"] = ESP32_HEAP_KB
    res["peak_share_of_esp32_heap"] = max(e["peak"] for e in ref.values()) / (ESP32_HEAP_KB * 1024)
    mpy = budgets(res["examples"])
    res["goals"] = {
        "heap_cap_64k": mpy["cap"][1],
        "peak_under_32k": mpy["peak"][1],
        "bundle_under_40k": res["bundle_esp32"]["total"] < BUNDLE_GOAL_KB * 1024,
        "app_bundles_under_40k": max(res["bundle_esp32_apps"].values()) < BUNDLE_GOAL_KB * 1024,
        "soak_no_growth": abs(res["soak"]["growth_bytes"]) < 1024,
    }
    if res.get("romfs"):
        rom = budgets(res["romfs"])
        res["goals"]["romfs_heap_cap_64k"] = rom["cap"][1]
        res["goals"]["romfs_peak_under_32k"] = rom["peak"][1]
    link = plot_soak(res["soak"])
    md = markdown(res, link)
    print(md)
    C.write_outputs(args, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
