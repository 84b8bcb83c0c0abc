"""Helpers every ``bench/bench_*.py`` shares: the output contract, medians, tables, plots.

The contract (``bench/run_all.py`` relies on it): every script accepts

    --json PATH   write its figures as JSON (a dict; ``"machine"`` and ``"command"`` included)
    --md PATH     write its section of docs/BENCHMARKS.md: a ``## `` heading, the exact
                  command that reproduces it, medians of several runs, tables, and for each
                  figure with a goal whether it was met
    --quick       fewer repeats and smaller sizes (a smoke run; the figures are noisier)

``add_contract_args`` declares the three flags, ``command_line`` gives the command a
section must state, and ``write_outputs`` writes both files. Plots go to
``docs/img/<name>.png`` (``save_plot``) and are linked from the markdown as
``img/<name>.png``, which is relative to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"


# -- the contract ------------------------------------------------------------------------


def add_contract_args(parser) -> None:
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    parser.add_argument("--md", metavar="PATH", help="write the markdown section here")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and smaller sizes (smoke run)"
    )


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run, without the output flags (they only say where
    the figures go): what a section of docs/BENCHMARKS.md states."""
    args = list(sys.argv[1:] if argv is None else argv)
    kept: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--json", "--md"):
            skip = True
            continue
        if a.startswith(("--json=", "--md=")):
            continue
        kept.append(a)
    script = Path(sys.argv[0]).resolve()
    try:
        script_s = str(script.relative_to(ROOT))
    except ValueError:
        script_s = str(script)
    return " ".join([".venv/bin/python", script_s] + [shlex.quote(a) for a in kept])


def write_outputs(args, figures: dict[str, Any], markdown: str) -> None:
    """Write ``figures`` (plus the machine and the command) to ``--json`` and the section to
    ``--md``, when given. The markdown must start with a ``## `` heading."""
    assert markdown.startswith("## "), "a section starts with a '## ' heading"
    figures = dict(figures)
    figures.setdefault("command", command_line())
    figures.setdefault("machine", machine())
    if getattr(args, "json", None):
        p = Path(args.json)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    if getattr(args, "md", None):
        p = Path(args.md)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(markdown.rstrip() + "\n")


# -- the machine -------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def micropython_version() -> str | None:
    """e.g. "1.29.0-preview (9458e3a23f, 2026-07-05)": release and build of the binary."""
    from lasp_gateway.emulator.services import find_micropython

    mp = find_micropython()
    if not mp:
        return None
    code = (
        "import sys; v = sys.implementation.version; "
        "print('.'.join(str(x) for x in v[:3]) + ''.join('-' + str(x) for x in v[3:] if x)); "
        "print(sys.version)"
    )
    try:
        r = subprocess.run([mp, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = r.stdout.split("\n")
    if r.returncode != 0 or len(lines) < 2:
        return None
    build = lines[1].split("MicroPython", 1)[-1].strip().replace(" on ", ", ")
    return "%s (%s)" % (lines[0].strip(), build) if build else lines[0].strip()


_MACHINE: dict[str, Any] | None = None


def machine() -> dict[str, Any]:
    """What the figures were measured on (run_all prints it at the top of the file)."""
    global _MACHINE
    if _MACHINE is None:
        _MACHINE = {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "os": platform.platform(),
            "python": platform.python_version(),
            "micropython": micropython_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
    return _MACHINE


# -- medians -----------------------------------------------------------------------------


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def median_time(fn: Callable[[], Any], runs: int) -> float:
    """Median wall time of ``fn()`` over ``runs`` runs, in seconds."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


# -- markdown ----------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right_from: int = 1) -> str:
    """A markdown table; columns from ``right_from`` on are right-aligned (numbers)."""
    out = ["| " + " | ".join(headers) + " |"]
    out.append(
        "|" + "|".join("---:" if i >= right_from else "---" for i in range(len(headers))) + "|"
    )
    for r in rows:
        out.append("| " + " | ".join("%s" % (c,) for c in r) + " |")
    return "\n".join(out)


def fmt_int(x: float | None) -> str:
    return "n/a" if x is None else f"{int(round(x)):,}"


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return fmt_int(x)
    return "%.*f" % (digits, x)


def fmt_ratio(x: float | None) -> str:
    """Ratios keep two significant digits below 0.1 (0.00052, not 0.00)."""
    if x is None:
        return "n/a"
    if x < 0.1:
        return "%.2g" % x
    return "%.2f" % x


def fmt_rate(x: float | None) -> str:
    """Per-second rates: 3.1 M, 45.2 k, 812."""
    if x is None:
        return "n/a"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e4:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def fmt_kb(nbytes: float | None) -> str:
    return "n/a" if nbytes is None else "%.1f KB" % (nbytes / 1024)


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


# -- plots -------------------------------------------------------------------------------


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None when it is not installed
    (plots are optional: the tables carry every figure)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_plot(fig, name: str) -> str:
    """Save ``fig`` as docs/img/<name>.png; return the link relative to docs/."""
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / (name + ".png"), dpi=110, bbox_inches="tight")
    return "img/%s.png" % name
