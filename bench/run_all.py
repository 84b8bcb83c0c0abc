"""Run every benchmark and regenerate docs/BENCHMARKS.md from their figures.

    make bench                                   (installs .[dev,bench], then runs this)
    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--timeout S]

Each ``bench/bench_*.py`` runs in its own process with ``--json build/bench/<stem>.json
--md build/bench/<stem>.md`` (the contract in ``bench/_common.py``); its progress (stderr)
is echoed here, its full output kept in ``build/bench/<stem>.log``. Then docs/BENCHMARKS.md
is assembled: a header (the machine, the date, the command), a summary that answers issue
7's questions with numbers read from the JSON files, and the scripts' sections in the fixed
order of ``ORDER`` (scripts not listed there follow, by name), numbered here.

Nothing stale is shown silently. A script's old outputs are deleted before it runs, so a
script that fails (non-zero exit, timeout, or no section written) gets a section saying it
failed, with the end of its output, and this script exits non-zero. With ``--only`` the
other sections are taken from ``build/bench`` as their last run left them, each marked with
the date it was measured (or "not run" if there is none).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import _common as C

HERE = Path(__file__).resolve().parent
OUT = C.ROOT / "build" / "bench"
DOC = C.ROOT / "docs" / "BENCHMARKS.md"

# Issue 7's order: wire, merge, broker pipeline, device, scaling; then the dataflow.
ORDER = (
    "bench_crdt",
    "bench_merge",
    "bench_gateway",
    "bench_device_footprint",
    "bench_device_flash",
    "bench_emulator_scale",
    "bench_overshoot",
    "bench_dataflow",
)
TITLES = {  # for the section of a script that failed before writing its own
    "bench_crdt": "Wire bytes per synced update",
    "bench_merge": "Merge throughput at the aggregator",
    "bench_gateway": "Gateway ingest and the broker pipeline",
    "bench_device_footprint": "Device footprint on real MicroPython",
    "bench_device_flash": "Flash writes per hour at the default flush policy",
    "bench_emulator_scale": "Fleet scaling curves",
    "bench_overshoot": "Overshoot against the sync period",
    "bench_dataflow": "Lasp dataflow (CPython `Store`)",
}
REGENERATE = "make bench"


def scripts() -> list[str]:
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [s for s in ORDER if s in found] + [s for s in found if s not in ORDER]


def matches(stem: str, names: list[str]) -> bool:
    short = stem[len("bench_") :]
    return any(n in (stem, short, stem + ".py") for n in names)


# -- running -----------------------------------------------------------------------------


class Result:
    def __init__(self, stem: str, ran: bool, rc: int | None, seconds: float, tail: str = ""):
        self.stem = stem
        self.ran = ran  # run in this invocation
        self.rc = rc
        self.seconds = seconds
        self.tail = tail

    @property
    def failed(self) -> bool:
        return self.ran and self.rc != 0


def run_one(stem: str, quick: bool, timeout: float, index: str) -> Result:
    """Run one script, echoing its stderr (progress) with a prefix; keep a log."""
    js, md, log = (OUT / (stem + ext) for ext in (".json", ".md", ".log"))
    for p in (js, md):
        p.unlink(missing_ok=True)  # a failure must not leave the previous figures behind
    cmd = [sys.executable, str(HERE / (stem + ".py")), "--json", str(js), "--md", str(md)]
    if quick:
        cmd.append("--quick")
    print("\n=== %s %s" % (index, " ".join([".venv/bin/python", "bench/%s.py" % stem] + cmd[2:])))
    t0 = time.monotonic()
    lines: list[str] = []
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            cmd,
            cwd=str(C.ROOT),
            stdout=logf,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )

        def echo() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line.rstrip("\n"))
                print("    | " + line.rstrip("\n"), flush=True)

        t = threading.Thread(target=echo, daemon=True)
        t.start()
        try:
            rc: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
            rc = None
            lines.append("run_all: killed after the %g s timeout" % timeout)
        t.join(30)
    seconds = time.monotonic() - t0
    if rc == 0 and not md.exists():
        rc = -1
        lines.append("run_all: the script exited 0 but wrote no markdown section (--md)")
    out_tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    tail = "\n".join(out_tail + ["--- stderr ---"] + lines[-25:])
    print(
        "=== %s %s in %.0f s"
        % (
            stem,
            "ok" if rc == 0 else "FAILED (exit %s)" % ("timeout" if rc is None else rc),
            seconds,
        )
    )
    return Result(stem, True, rc, seconds, tail)


# -- assembling --------------------------------------------------------------------------


def load_json(stem: str) -> dict | None:
    """A script's figures, only when its section is there too (a failed run has neither)."""
    if not (OUT / (stem + ".md")).exists():
        return None
    try:
        return json.loads((OUT / (stem + ".json")).read_text())
    except (OSError, ValueError):
        return None


def section(n: int, res: Result) -> str:
    """The section of one script, numbered; failures and absences say so."""
    stem = res.stem
    md_path = OUT / (stem + ".md")
    if res.failed or not md_path.exists():
        title = TITLES.get(stem, stem)
        if not res.ran:
            return (
                "## %d. %s\n\n**Not measured**: no figures of `bench/%s.py` in build/bench "
                "(never run here, or it failed in its last run); run `%s`.\n"
                % (n, title, stem, REGENERATE)
            )
        why = "timed out" if res.rc is None else "exited with %s" % res.rc
        return (
            "## %d. %s\n\n**FAILED in the last run**: `bench/%s.py` %s, so this section has no "
            "figures (the previous ones were removed, not kept). The end of its output:\n\n"
            "```\n%s\n```\n" % (n, title, stem, why, res.tail.strip())
        )
    text = md_path.read_text().strip()
    heading, _, body = text.partition("\n")
    title = heading[3:].strip()
    if title[:1].isdigit() and ". " in title[:5]:
        title = title.split(". ", 1)[1]  # our numbering replaces the script's own
    out = "## %d. %s\n%s\n" % (n, title, body)
    if not res.ran:
        data = load_json(stem) or {}
        when = (data.get("machine") or {}).get("date", "an earlier run")
        out = out.replace(
            "\n", "\n\n_Not re-run by the last `run_all.py --only`: measured %s._\n" % when, 1
        )
    return out


def header(results: list[Result], quick: bool, total_s: float) -> str:
    m = C.machine()
    mem = "%s GiB" % m["memory_gib"] if m.get("memory_gib") else "unknown memory"
    lines = [
        "# Benchmarks",
        "",
        "<!-- GENERATED by bench/run_all.py from build/bench/*.json and *.md: do not edit by "
        "hand; run `%s`. -->" % REGENERATE,
        "",
        "Regenerate this file with one command: **`%s`** (it installs `.[dev,bench]`, the "
        "peers `loro` and `pycrdt` included, then runs `bench/run_all.py`; `--quick` for a "
        "smoke run, `--only NAME` for one script). Every section states the command that "
        "reproduces it; every figure is a median of several runs; every goal is judged on a "
        "ratio to a baseline measured in the same run, unless the section says it is an "
        "absolute budget." % REGENERATE,
        "",
        "Machine: %s, %s cores, %s; %s; CPython %s; MicroPython %s (unix port, 64-bit). "
        "Generated %s%s in %.0f s."
        % (
            m["cpu"],
            m["cores"],
            mem,
            m["os"],
            m["python"],
            m.get("micropython") or "(not found)",
            m["date"],
            " (**quick run**: fewer repeats, smaller sizes)" if quick else "",
            total_s,
        ),
        "",
        "The machine is shared: 2 cores with other work running, so absolute rates are lower "
        "and noisier than on an idle box; the ratios, measured side by side, are the figures "
        "to compare.",
        "",
    ]
    failed = [r.stem for r in results if r.failed]
    if failed:
        lines.append(
            "**%d benchmark(s) failed in this run: %s.** Their sections say so."
            % (len(failed), ", ".join("`%s`" % f for f in failed))
        )
        lines.append("")
    return "\n".join(lines)


SECTION: dict[str, int] = {}  # stem -> its section number in the file being assembled


def see(stem: str) -> str:
    return "section %d" % SECTION[stem] if stem in SECTION else "its section"


def _range(xs: list[float]) -> str:
    lo, hi = min(xs), max(xs)
    return C.fmt_ratio(lo) if abs(hi - lo) < 0.005 else "%s–%s" % (C.fmt_ratio(lo), C.fmt_ratio(hi))


def summary_wire(d: dict | None) -> str:
    if not d:
        return "- **Wire bytes**: not measured (see its section)."
    r = d["lasp_edge_over_peer_mqtt"]
    wire = d["wire"]
    parts = []
    for peer in ("Loro", "pycrdt"):
        xs = [r[wl][peer] for wl in r if r[wl].get(peer) is not None]
        if not xs:
            parts.append("%s: not measured (not installed)" % peer)
            continue
        pay = [
            wire[wl]["lasp-edge"]["crdt"] / wire[wl][peer]["crdt"]
            for wl in wire
            if wire[wl].get(peer)
        ]
        wins = sum(x < 1 for x in xs)
        verdict = "**yes**" if wins == len(xs) else ("**no**" if wins == 0 else "**partly**")
        parts.append(
            "%s %s: lasp-edge's MQTT packets are %s× %s's (smaller on %d of %d "
            "workloads); CRDT payloads alone %s×"
            % (peer, verdict, _range(xs), peer, wins, len(xs), _range(pay))
        )
    full = [r[wl]["full state"] for wl in r if r[wl].get("full state") is not None]
    text = "- **Is lasp-edge smaller on the wire?** Than %s." % "; than ".join(parts)
    if full:
        text += " Full-state sync of the same data takes %.0f–%.0f× lasp-edge's bytes." % (
            1 / max(full),
            1 / min(full),
        )
    if any(r[wl].get("pycrdt", 0) > 1 for wl in r):
        text += (
            " Where pycrdt is smaller, the difference is lasp-edge's sync envelope (variable "
            "name, epoch, sequence interval: what acknowledging only after persisting needs), "
            "not the CRDT delta"
        )
    return text + " (%s)." % see("bench_crdt")


def summary_merge(d: dict | None) -> str:
    if not d:
        return "- **Merge throughput**: not measured (see its section)."
    m = d["merge"]
    one = m["counter_1"]
    bits = []
    for peer in ("Loro", "pycrdt"):
        if peer in one:
            bits.append(
                "%s× %s"
                % (C.fmt_ratio(one["lasp-edge"]["deltas_per_s"] / one[peer]["deltas_per_s"]), peer)
            )
    return (
        "- **Merge at the aggregator**: %s single-increment deltas/s decoded and merged "
        "(%s); a 10,000-key delta merges at %s keys/s (%s with decoding). The peers "
        "merge in compiled Rust (%s)."
        % (
            C.fmt_rate(one["lasp-edge"]["deltas_per_s"]),
            ", ".join(bits) or "no peers installed",
            C.fmt_rate(d.get("merge_only_keys_per_s")),
            C.fmt_rate(m["map_all_keys"]["lasp-edge"]["units_per_s"]),
            see("bench_merge"),
        )
    )


def summary_gateway(d: dict | None) -> str:
    if not d:
        return (
            "- **How close is the gateway to raw paho and to the broker's limit?** Not "
            "measured in this run (see the broker pipeline section)."
        )
    med = d.get("median", {})
    ratio = d.get("ratio", {})
    g, p, c = med.get("gateway_msgs"), med.get("baseline_msgs"), med.get("c_clients_msgs")
    vs_paho = ratio.get("gateway")
    vs_c = None if not (g and c) else g / c
    text = (
        "- **How close is the gateway to raw paho and to the broker's limit?** The gateway "
        "ingests %s msg/s, each acknowledged after its SQLite commit: **%s×** raw paho "
        "publish→subscribe (%s msg/s)" % (C.fmt_rate(g), C.fmt_ratio(vs_paho), C.fmt_rate(p))
    )
    if c:
        text += (
            " and **%s×** the broker's limit measured with the C clients (%s msg/s; paho "
            "reaches %s× of it)"
            % (C.fmt_ratio(vs_c), C.fmt_rate(c), C.fmt_ratio(ratio.get("paho_vs_c_clients")))
        )
    bud = d.get("budget")
    if ratio.get("durable") is not None:
        text += (
            "; an echo on the same MQTT code that only commits each batch and ACKs it after "
            "the fsync reaches %s× paho" % C.fmt_ratio(ratio["durable"])
        )
        if ratio["durable"] <= 0.8:
            text += ", so no gateway that ACKs after its commit reaches 0.80× here"
        elif bud:
            text += (
                ", which leaves a gateway about %s µs of CPU per DELTA for decoding, "
                "authorizing and merging at 0.80× (it spends %s)"
                % (C.fmt_num(bud["own_us_at_goal"], 0), C.fmt_num(bud["own_us"], 0))
            )  # fmt: skip
    if med.get("updates"):
        text += "; with devices batching, %s updates/s are absorbed end to end (%s× paho)" % (
            C.fmt_rate(med["updates"]),
            C.fmt_ratio(ratio.get("updates")),
        )
    return text + " (%s)." % see("bench_gateway")


def summary_device(d: dict | None) -> str:
    if not d:
        return "- **How much of an ESP32's heap does the runtime need?** Not measured."
    ex = d["examples"]
    worst = max(ex, key=lambda k: ex[k]["peak"])
    caps = {k: v.get("smallest_heap_kb") for k, v in ex.items()}
    fl = d["floor"]
    text = (
        "- **How much heap does the device runtime need?** On this 64-bit unix port, from "
        "the `.mpy` bundle: peak %s (`%s`, the heaviest example; %s of it is code loaded "
        "into the heap at boot, %s the app's data); smallest heap caps %s; the floor, "
        "an MQTT client alone, peaks at %s. Budgets of the device issue (64 KB cap, peak "
        "under 32 KB): %s and %s."
        % (
            C.fmt_kb(ex[worst]["peak"]),
            worst,
            C.fmt_kb(ex[worst]["base"]),
            C.fmt_kb(ex[worst]["data"]),
            ", ".join("%sK (`%s`)" % (caps[k], k) for k in ex),
            C.fmt_kb(fl["peak"]),
            C.met(d["goals"]["heap_cap_64k"]),
            C.met(d["goals"]["peak_under_32k"]),
        )
    )
    romfs = d.get("romfs")
    if romfs:
        rw = max(romfs, key=lambda k: romfs[k]["peak"])
        text += (
            " With the code executed in place from flash, as on a board (ROMFS image): peak "
            "%s (`%s`), smallest caps %s (64 KB cap: %s; peak under 32 KB: %s)."
            % (
                C.fmt_kb(romfs[rw]["peak"]),
                rw,
                " / ".join("%sK" % romfs[k].get("smallest_heap_kb") for k in romfs),
                C.met(d["goals"].get("romfs_heap_cap_64k")),
                C.met(d["goals"].get("romfs_peak_under_32k")),
            )
        )
    else:
        text += (
            " A 32-bit ESP32 needs about half (4-byte pointers; an estimate), and frozen "
            "modules keep the code out of the heap."
        )
    share = d.get("peak_share_of_esp32_heap")
    if share:
        text += (
            " **Of an ESP32's heap** (about %d KB without PSRAM): %.0f%% as measured on this "
            "64-bit port, about half that with a board's 32-bit objects (an estimate)."
            % (d["esp32_heap_reference_kb"], 100 * share)
        )
    text += (
        " Bundle: %s of `.mpy` with every CRDT type (goal < 40 KB: %s), at most %s with only "
        "the types an example uses (%s). Live heap over a 1-hour soak: %+d bytes "
        "of growth (no growth: %s) (%s)."
        % (
            C.fmt_kb(d["bundle_esp32"]["total"]),
            C.met(d["goals"]["bundle_under_40k"]),
            C.fmt_kb(max(d.get("bundle_esp32_apps", {"-": 0}).values())),
            C.met(d["goals"].get("app_bundles_under_40k")),
            d["soak"]["growth_bytes"],
            C.met(d["goals"].get("soak_no_growth")),
            see("bench_device_footprint"),
        )
    )
    return text


def summary(results: list[Result]) -> str:
    lines = ["## Summary", ""]
    lines.append(summary_wire(load_json("bench_crdt")))
    lines.append(summary_merge(load_json("bench_merge")))
    lines.append(summary_gateway(load_json("bench_gateway")))
    lines.append(summary_device(load_json("bench_device_footprint")))
    lines.append("")
    lines.append("| section | script | result | time |")
    lines.append("|---|---|---|---:|")
    for i, r in enumerate(results, 1):
        state = "FAILED" if r.failed else ("ok" if r.ran else "from an earlier run")
        if not r.ran and not (OUT / (r.stem + ".md")).exists():
            state = "not run"
        lines.append(
            "| %d | `bench/%s.py` | %s | %s |"
            % (i, r.stem, state, "%.0f s" % r.seconds if r.ran else "")
        )
    lines.append("")
    return "\n".join(lines)


def assemble(results: list[Result], quick: bool, total_s: float) -> str:
    SECTION.clear()
    SECTION.update({r.stem: i for i, r in enumerate(results, 1)})
    parts = [header(results, quick, total_s), summary(results)]
    parts += [section(i, r) for i, r in enumerate(results, 1)]
    return "\n".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every script")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this script (bench_crdt, crdt or bench_crdt.py); repeatable",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="per script, seconds")
    ap.add_argument("--doc", type=Path, default=DOC, help="the file to write (%(default)s)")
    ap.add_argument("--no-doc", action="store_true", help="do not write it")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stems = scripts()
    unknown = [n for n in args.only if not any(matches(s, [n]) for s in stems)]
    if unknown:
        ap.error("no bench script named %s (have: %s)" % (", ".join(unknown), ", ".join(stems)))
    todo = [s for s in stems if not args.only or matches(s, args.only)]
    print(
        "run_all: %d of %d benchmark(s)%s; machine: %s, %s cores"
        % (
            len(todo),
            len(stems),
            " (quick)" if args.quick else "",
            C.machine()["cpu"],
            C.machine()["cores"],
        )
    )
    t0 = time.monotonic()
    results = []
    k = 0
    for stem in stems:
        if stem in todo:
            k += 1
            results.append(run_one(stem, args.quick, args.timeout, "[%d/%d]" % (k, len(todo))))
        else:
            results.append(Result(stem, False, None, 0.0))
    total = time.monotonic() - t0
    failed = [r.stem for r in results if r.failed]
    if not args.no_doc:
        args.doc.write_text(assemble(results, args.quick, total).rstrip() + "\n")
        print("\nwrote %s" % args.doc)
    print(
        "run_all: %d ran in %.0f s (%s); %s"
        % (
            len(todo),
            total,
            datetime.timedelta(seconds=int(total)),
            "FAILED: " + ", ".join(failed) if failed else "all ok",
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
