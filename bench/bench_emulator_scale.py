"""Fleet scaling: how many emulated devices one 2-core machine handles, and what each costs.

Two parts, each run through ``lasp-edge emulate`` exactly as a user runs it (one process
per run, mosquitto as the broker, a real ``lasp-edge gateway`` and ``aggregator``), each
run's figures read from its ``--report`` JSON:

1. **The issue 6 scenario**: 1,000 virtual devices counting for 60 s (each about once a
   second) under loss 0.2, duplication 0.1 and a partition of 30% of the fleet. Figures:
   device updates handled per second, the emulator's and the gateway's memory, whether
   the fleet converged to exactly the oracle, and how long convergence took.
2. **Scaling curves** (issue 7, item 5): 10, 100, 1,000 and 5,000 devices for 20 s under
   the same faults: gateway CPU and memory, the state size (wire bytes of the converged
   variable, the gateway's SQLite files), convergence time, and the emulator's own cost
   per device, as a ratio to the 100-device run measured side by side.

The goal (issue 6: "1,000 virtual devices for 60 s ... must run on this 2-core machine")
is met when the run converged, the oracle matched exactly, and each device counted at
least 0.8 times as often as in the 100-device baseline (so the emulator kept up).

    .venv/bin/python bench/bench_emulator_scale.py [--quick] [--runs N] [--json P] [--md P]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as C

FAULTS = "loss:0.2,dup:0.1,partition:0.3"
VIEW_MS = 1000


def emulate(devices: int, duration: float, seed: int, plot: str | None = None) -> dict[str, Any]:
    """One ``lasp-edge emulate`` run in its own process; its JSON report."""
    with tempfile.TemporaryDirectory(prefix="bench-emu-") as tmp:
        out = Path(tmp) / "report.json"
        cmd = [
            sys.executable, "-m", "lasp_edge.cli", "emulate", "--devices", str(devices),
            "--duration", str(duration), "--seed", str(seed), "--faults", FAULTS,
            "--broker", "mosquitto", "--view-ms", str(VIEW_MS), "--drain-timeout", "180",
            "--report", str(out),
        ]  # fmt: skip
        if plot:
            cmd += ["--plot", plot]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 900)
        if not out.exists():
            raise RuntimeError("emulate failed (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
        rep = json.loads(out.read_text())
    gw = rep.get("gateway_usage") or {}
    return {
        "devices": devices,
        "ok": rep["ok"],
        "converged": rep["converged"],
        "oracle_match": rep["oracle_match"],
        "updates": rep["updates"],
        "updates_per_s": rep["updates"] / duration,
        "per_device_rate": rep["updates"] / duration / devices,
        "converge_s": rep["converge_after_stop_s"],
        "emulator_cpu_s": rep["emulator_cpu_s"],
        "emulator_rss_mb": rep["emulator_peak_rss_mb"],
        "gateway_cpu_s": gw.get("cpu_s"),
        "gateway_rss_mb": gw.get("peak_rss_mb"),
        "state_bytes": rep["state_bytes"],
        "gateway_db_bytes": rep["gateway_db_bytes"],
        "dropped": rep["messages_dropped"],
        "duplicated": rep["messages_duplicated"],
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": len(runs), "all_ok": all(r["ok"] for r in runs)}
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [r[k] for r in runs if r[k] is not None]
            out[k] = C.median(vals) if vals else None
    return out


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_contract_args(ap)
    ap.add_argument("--runs", type=int, help="runs per size (default 3, --quick 1)")
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    big_s = 20.0 if args.quick else 60.0
    curve_s = 10.0 if args.quick else 20.0
    sizes = [10, 100, 1000] if args.quick else [10, 100, 1000, 5000]

    curve: dict[int, dict[str, Any]] = {}
    for n in sizes:
        rs = []
        for k in range(runs):
            progress("scaling: %d devices, run %d/%d" % (n, k + 1, runs))
            rs.append(emulate(n, curve_s, seed=k + 1))
        curve[n] = medians(rs)
    base = curve[100]
    for m in curve.values():
        m["emulator_cpu_ms_per_update"] = m["emulator_cpu_s"] / m["updates"] * 1000
        m["cost_ratio_vs_100"] = m["emulator_cpu_ms_per_update"] / (
            base["emulator_cpu_s"] / base["updates"] * 1000
        )
        m["rate_ratio_vs_100"] = m["per_device_rate"] / base["per_device_rate"]
        m["gateway_cpu_per_1k_updates_s"] = (
            None if not m["gateway_cpu_s"] else m["gateway_cpu_s"] / m["updates"] * 1000
        )

    big_runs = []
    plot_link = None
    for k in range(runs):
        progress("1,000 devices for %.0f s, run %d/%d" % (big_s, k + 1, runs))
        plot_path = str(C.IMG / "emulator_1000.png") if k == 0 else None
        if plot_path:
            C.IMG.mkdir(parents=True, exist_ok=True)
            plot_link = "img/emulator_1000.png"
        big_runs.append(emulate(1000, big_s, seed=k + 1, plot=plot_path))
    big = medians(big_runs)
    keep_up = big["per_device_rate"] / base["per_device_rate"]
    goal = bool(big["all_ok"] and keep_up >= 0.8)

    curve_png = _plot(curve)
    figures = {
        "faults": FAULTS,
        "view_ms": VIEW_MS,
        "runs": runs,
        "fleet_1000": dict(big, duration_s=big_s, keep_up_ratio=keep_up),
        "scaling": {str(n): dict(m, duration_s=curve_s) for n, m in curve.items()},
        "goals": {"thousand_devices_60s": goal},
    }
    C.write_outputs(args, figures, _markdown(figures, big, keep_up, goal, curve, plot_link,
                                             curve_png, big_s, curve_s))  # fmt: skip
    print(json.dumps(figures["fleet_1000"], indent=1))
    return 0


def _plot(curve: dict[int, dict[str, Any]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ns = sorted(curve)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(ns, [curve[n]["emulator_cpu_s"] for n in ns], "o-", label="emulator (all devices)")
    a.plot(ns, [curve[n]["gateway_cpu_s"] or 0 for n in ns], "s-", label="gateway")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("devices")
    a.set_ylabel("CPU seconds per run")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    b.plot(ns, [curve[n]["converge_s"] or 0 for n in ns], "o-", color="green")
    b.set_xscale("log")
    b.set_xlabel("devices")
    b.set_ylabel("seconds to converge after counting stopped")
    b.grid(alpha=0.3)
    fig.suptitle("lasp-edge emulate, faults %s" % FAULTS, fontsize=10)
    link = C.save_plot(fig, "emulator_scale")
    plt.close(fig)
    return link


def _markdown(
    fig: dict[str, Any],
    big: dict[str, Any],
    keep_up: float,
    goal: bool,
    curve: dict[int, dict[str, Any]],
    plot_link: str | None,
    curve_png: str | None,
    big_s: float,
    curve_s: float,
) -> str:
    lines = [
        "## Fleet scaling curves",
        "",
        "Reproduce: `%s` (each run is `lasp-edge emulate --broker mosquitto --faults %s "
        "--view-ms %d`: virtual devices running the ad_counter app's own code on the device "
        "runtime, a real gateway and aggregator). Medians of %d run(s) per row."
        % (C.command_line(), FAULTS, VIEW_MS, fig["runs"]),
        "",
        "### 1,000 virtual devices for %.0f s (issue 6)" % big_s,
        "",
        C.md_table(
            ["figure", "median"],
            [
                ["device updates handled per second", C.fmt_num(big["updates_per_s"], 0)],
                [
                    "updates per device per second (100-device baseline: %.2f)"
                    % curve[100]["per_device_rate"],
                    "%.2f" % big["per_device_rate"],
                ],
                ["keeps up: ratio to the 100-device baseline", "%.2f" % keep_up],
                [
                    "converged to exactly the oracle",
                    "all %d runs" % big["runs"] if big["all_ok"] else "NO",
                ],
                ["seconds to converge after the counting stopped", C.fmt_num(big["converge_s"])],
                [
                    "emulator peak memory (MB, all 1,000 devices)",
                    C.fmt_num(big["emulator_rss_mb"], 1),
                ],
                ["gateway peak memory (MB)", C.fmt_num(big["gateway_rss_mb"], 1)],
                [
                    "messages dropped / duplicated by the faults",
                    "%s / %s" % (C.fmt_int(big["dropped"]), C.fmt_int(big["duplicated"])),
                ],
            ],
        ),  # fmt: skip
        "",
        "Goal (1,000 virtual devices for 60 s with loss, duplication and partitions on this "
        "2-core machine, converging exactly, each device keeping at least 0.8 of its "
        "100-device rate): **%s**." % ("met" if goal else "NOT met"),
        "",
    ]
    if plot_link:
        lines += ["![divergence of the 1,000-device run](%s)" % plot_link, ""]
    base = curve[100]
    rows = []
    for n in sorted(curve):
        m = curve[n]
        rows.append([
            C.fmt_int(n), C.fmt_num(m["updates_per_s"], 0), "%.2f" % m["per_device_rate"],
            C.fmt_num(m["gateway_cpu_s"]), C.fmt_num(m["gateway_cpu_per_1k_updates_s"], 3),
            C.fmt_num(m["gateway_rss_mb"], 1), C.fmt_int(m["state_bytes"]),
            C.fmt_int(m["gateway_db_bytes"]), C.fmt_num(m["converge_s"]),
            C.fmt_num(m["emulator_cpu_s"]), "%.3f" % m["emulator_cpu_ms_per_update"],
            "%.2f" % m["cost_ratio_vs_100"], C.fmt_num(m["emulator_rss_mb"], 1),
            "yes" if m["all_ok"] else "NO",
        ])  # fmt: skip
    saturated = [n for n in sorted(curve) if curve[n]["rate_ratio_vs_100"] < 0.8]
    if saturated:
        n = saturated[0]
        m = curve[n]
        verdict = (
            "At %s devices this machine saturates: the emulator and the gateway share its "
            "two cores, so each device counted %.2f times a second instead of %.2f (%.0f%% of "
            "the 100-device rate), and the gateway needed %s s after the counting stopped to "
            "hold everything. The fleet still converged exactly. Up to the largest size below "
            "that, every device kept its rate."
            % (C.fmt_int(n), m["per_device_rate"], base["per_device_rate"],
               100 * m["rate_ratio_vs_100"], C.fmt_num(m["converge_s"]))
        )  # fmt: skip
    else:
        verdict = "Every size kept at least 0.8 of the 100-device rate per device."
    lines += [
        "### Scaling: %s devices for %.0f s each (issue 7)"
        % (", ".join(C.fmt_int(n) for n in sorted(curve)), curve_s),
        "",
        C.md_table(
            [
                "devices",
                "updates/s",
                "updates/device/s",
                "gateway CPU s",
                "gateway CPU s / 1k updates",
                "gateway MB",
                "state bytes",
                "gateway DB bytes",
                "converge s",
                "emulator CPU s",
                "emulator CPU ms / update",
                "emulator cost per update vs 100",
                "emulator MB",
                "exact",
            ],
            rows,
        ),  # fmt: skip
        "",
        "How cost grows, per unit of work (ratios to the 100-device run measured in the same "
        "run): the emulator's CPU per update is %s; the gateway's CPU per 1,000 updates is %s. "
        "Memory grows with the number of devices (each virtual device holds its runtime, its "
        "sync node and its app). The state is one GCounter slot per device and ad, so its "
        "wire size grows linearly with the fleet; the gateway's SQLite files start at a few "
        "MB (WAL)."
        % (
            ", ".join(
                "%.2f× at %s" % (curve[n]["cost_ratio_vs_100"], C.fmt_int(n)) for n in sorted(curve)
            ),
            ", ".join(
                "%s× at %s" % (C.fmt_num(_ratio(curve[n], base), 2), C.fmt_int(n))
                for n in sorted(curve)
            ),
        ),  # fmt: skip
        "",
        verdict,
    ]
    if curve_png:
        lines += ["", "![scaling curves](%s)" % curve_png]
    return "\n".join(lines) + "\n"


def _ratio(m: dict[str, Any], base: dict[str, Any]) -> float | None:
    a, b = m["gateway_cpu_per_1k_updates_s"], base["gateway_cpu_per_1k_updates_s"]
    return None if a is None or not b else a / b


if __name__ == "__main__":
    sys.exit(main())
