"""Dataflow benchmarks for lasp_edge.store (CPython): incrementality, wake-up, throughput.

1. Incrementality: the cost of one update (add or remove one element of S) propagating
   through ``map -> filter -> fold`` when S holds 1,000 and 100,000 elements. The store
   updates derived variables from the delta, so the ratio 100k/1k must stay <= 2. A naive
   full recompute of the same pipeline (what Erlang Lasp did) runs in the same process
   for contrast; its cost grows with the input.
2. Threshold-read wake-up latency: a thread blocks in ``read(c, n)`` (and a coroutine in
   ``aread``); the time from just before the update that meets the threshold to the
   reader's return.
3. Throughput: updates/s through the 3-stage pipeline (new elements, each passing the
   filter half of the time), in memory and optionally with SQLite (``--sqlite``: a
   temporary directory, removed afterwards).

Every figure is the median of ``--runs`` runs, each timed like ``timeit``: after
``gc.collect()`` and with the cyclic collector paused during the timed loop.

    .venv/bin/python bench/bench_dataflow.py [--runs 5] [--quick] [--no-sqlite] [--json F] [--md F]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from _common import (
    add_contract_args,
    command_line,
    fmt_int,
    machine,
    md_table,
    met,
    write_outputs,
)

from lasp_edge.crdts import AWSet
from lasp_edge.store import Store


def pipeline(s: Store) -> None:
    s.map("S", lambda x: x * 2, "M")
    s.filter("M", lambda x: x % 4 == 0, "F")
    s.fold("F", lambda x: x, "total")


def filled_store(n: int, path: str | None = None) -> Store:
    s = Store("bench", path, synchronous="normal")
    s.declare("S", "awset")
    for i in range(n):
        s.update("S", "add", i)
    pipeline(s)
    s.ack(s.last_seq)  # a sync layer would have acknowledged the fill
    return s


def per_update_incremental(s: Store, n: int, k: int) -> float:
    """Mean seconds per update over k updates: add a new element, then remove it."""
    t = time.perf_counter()
    for i in range(k // 2):
        x = n + i
        s.update("S", "add", x)
        s.update("S", "remove", x)
    dt = time.perf_counter() - t
    s.ack(s.last_seq)  # between runs, as a sync layer would
    return dt / (2 * (k // 2))


class Naive:
    """The same pipeline recomputed from scratch after every update of S."""

    def __init__(self, n: int) -> None:
        self.s = AWSet()
        for i in range(n):
            self.s.add("bench", i)
        self.recompute()

    def recompute(self) -> None:
        m = {x * 2 for x in self.s.elements()}
        f = {x for x in m if x % 4 == 0}
        self.total = sum(f)

    def update(self, op: str, x: int) -> None:
        if op == "add":
            self.s.add("bench", x)
        else:
            self.s.remove(x)
        self.recompute()


def per_update_naive(nv: Naive, n: int, k: int) -> float:
    t = time.perf_counter()
    for i in range(k // 2):
        nv.update("add", n + i)
        nv.update("remove", n + i)
    return (time.perf_counter() - t) / (2 * (k // 2))


def read_latency(samples: int) -> float:
    """Median seconds from the update meeting the threshold to read() returning."""
    s = Store("bench")
    s.declare("c", "gcounter")
    out = []
    for i in range(1, samples + 1):
        done = threading.Event()
        woke: list[float] = []

        def reader(n: int = i, woke: list[float] = woke, done: threading.Event = done) -> None:
            s.read("c", n)
            woke.append(time.perf_counter())
            done.set()

        th = threading.Thread(target=reader)
        th.start()
        time.sleep(0.002)  # let the reader block
        t0 = time.perf_counter()
        s.update("c", "increment")
        done.wait()
        th.join()
        out.append(woke[0] - t0)
    return statistics.median(out)


def aread_latency(samples: int) -> float:
    s = Store("bench")
    s.declare("c", "gcounter")

    async def run() -> list[float]:
        out = []
        loop = asyncio.get_running_loop()
        for i in range(1, samples + 1):
            task = asyncio.ensure_future(s.aread("c", i))
            await asyncio.sleep(0.002)
            t0 = time.perf_counter()
            await loop.run_in_executor(None, s.update, "c", "increment")
            await task
            out.append(time.perf_counter() - t0)
        return out

    return statistics.median(asyncio.run(run()))


def throughput(n: int, path: str | None = None) -> float:
    s = Store("bench", path, synchronous="normal")
    s.declare("S", "awset")
    pipeline(s)
    t = time.perf_counter()
    for i in range(n):
        s.update("S", "add", i)
    dt = time.perf_counter() - t
    s.close()
    return n / dt


KEEP_GC = False


def median_of(runs: int, f: Callable[[], float]) -> float:
    """Median of ``runs`` timings, each taken like ``timeit`` does: after a collection and
    with the cyclic GC paused, so a full collection of whatever else lives in the process
    heap does not land in one run and not another (GC cost depends on the whole heap, not
    on the change being measured)."""
    out = []
    for _ in range(runs):
        gc.collect()
        if not KEEP_GC:
            gc.disable()
        try:
            out.append(f())
        finally:
            gc.enable()
    return statistics.median(out)


def paired(runs: int, small: Callable[[], float], big: Callable[[], float]) -> tuple[float, float]:
    """Medians of interleaved runs (small, big, small, big, ...) after one warm-up each,
    so that load from other processes on the machine hits both sizes alike."""
    small()
    big()
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(median_of(1, small))
        b.append(median_of(1, big))
    return statistics.median(a), statistics.median(b)


def us(x: float) -> str:
    return "%.1f µs" % (x * 1e6)


RATIO_GOAL = 2.0  # one update at |S| = 100k costs at most twice one at 1k


def measure(args: argparse.Namespace) -> dict:
    global KEEP_GC
    KEEP_GC = args.gc
    runs = 3 if args.quick and args.runs == 5 else args.runs
    k = 400 if args.quick else 4000
    k_naive_small = 200 if args.quick else 1000
    k_naive_big = 4 if args.quick else 20
    small, big = 1_000, 100_000
    res: dict = {"runs": runs, "gc_while_timing": args.gc}

    print("1. one update through map -> filter -> fold", file=sys.stderr, flush=True)
    s_small, s_big = filled_store(small), filled_store(big)
    inc_small, inc_big = paired(
        runs,
        lambda: per_update_incremental(s_small, small, k),
        lambda: per_update_incremental(s_big, big, k),
    )
    n_small, n_big = Naive(small), Naive(big)
    nai_small, nai_big = paired(
        runs,
        lambda: per_update_naive(n_small, small, k_naive_small),
        lambda: per_update_naive(n_big, big, k_naive_big),
    )
    res["incremental_us"] = {"1k": inc_small * 1e6, "100k": inc_big * 1e6}
    res["naive_us"] = {"1k": nai_small * 1e6, "100k": nai_big * 1e6}
    res["incremental_ratio_100k_1k"] = inc_big / inc_small
    res["naive_ratio_100k_1k"] = nai_big / nai_small
    res["ratio_goal_met"] = inc_big / inc_small <= RATIO_GOAL

    samples = 20 if args.quick else 100
    print("2. threshold-read wake-up latency, %d samples" % samples, file=sys.stderr, flush=True)
    res["read_samples"] = samples
    res["read_wakeup_us"] = median_of(runs, lambda: read_latency(samples)) * 1e6
    res["aread_wakeup_us"] = median_of(runs, lambda: aread_latency(samples)) * 1e6

    n = 2_000 if args.quick else 20_000
    print("3. throughput: %d new elements" % n, file=sys.stderr, flush=True)
    res["throughput_elements"] = n
    res["updates_per_s"] = {"memory": median_of(runs, lambda: throughput(n))}
    if args.sqlite:
        for sync in ("normal", "full"):

            def one(sync: str = sync) -> float:
                with tempfile.TemporaryDirectory() as d:
                    s = Store("bench", os.path.join(d, "b.db"), synchronous=sync)
                    s.declare("S", "awset")
                    pipeline(s)
                    m = n // 10
                    t = time.perf_counter()
                    for i in range(m):
                        s.update("S", "add", i)
                    dt = time.perf_counter() - t
                    s.close()
                    return m / dt

            res["updates_per_s"]["sqlite_" + sync] = median_of(runs, one)
    return res


def markdown(res: dict) -> str:
    inc, nai = res["incremental_us"], res["naive_us"]
    lines = ["## Lasp dataflow (CPython `Store`)", ""]
    lines.append("Command: `%s`" % res["command"])
    lines.append("")
    lines.append(
        "Median of %d runs, garbage collection %s while timing; 1k and 100k runs interleaved."
        % (res["runs"], "on" if res["gc_while_timing"] else "paused")
    )
    lines.append("")
    lines.append(
        md_table(
            [
                "one update through map → filter → fold",
                "\\|S\\| = 1,000",
                "\\|S\\| = 100,000",
                "ratio 100k / 1k",
            ],
            [
                [
                    "lasp-edge (from the delta)",
                    us(inc["1k"] / 1e6),
                    us(inc["100k"] / 1e6),
                    "**%.2f**" % res["incremental_ratio_100k_1k"],
                ],
                [
                    "naive full recompute (baseline, same run)",
                    us(nai["1k"] / 1e6),
                    us(nai["100k"] / 1e6),
                    "%.1f" % res["naive_ratio_100k_1k"],
                ],
            ],
        )
    )
    lines.append("")
    lines.append(
        "Goal: the ratio at most %g (updates are incremental): %s (%.2f). Lasp's full "
        "recomputation grows linearly with the input, as the baseline shows."
        % (RATIO_GOAL, met(res["ratio_goal_met"]), res["incremental_ratio_100k_1k"])
    )
    lines.append("")
    lines.append(
        md_table(
            ["threshold-read wake-up (update → reader returns)", "median"],
            [
                ["`read()` blocked in another thread", us(res["read_wakeup_us"] / 1e6)],
                [
                    "`await aread()` on an asyncio loop (includes the hop to the loop's thread)",
                    us(res["aread_wakeup_us"] / 1e6),
                ],
            ],
        )
    )
    lines.append("")
    names = {
        "memory": "in memory",
        "sqlite_normal": "SQLite WAL, `synchronous=normal` (survives kill -9)",
        "sqlite_full": "SQLite WAL, `synchronous=full` (survives power loss; the default)",
    }
    lines.append(
        md_table(
            [
                "updates/s through map → filter → fold (%s new elements)"
                % fmt_int(res["throughput_elements"]),
                "updates/s",
            ],
            [[names[k], fmt_int(v)] for k, v in res["updates_per_s"].items()],
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--sqlite",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure with SQLite (default: yes)",
    )
    p.add_argument("--gc", action="store_true", help="keep the cyclic GC on while timing")
    add_contract_args(p)  # --json, --md, --quick (fewer updates: a smoke run)
    args = p.parse_args(argv)
    res = measure(args)
    res["command"] = command_line()
    res["machine"] = machine()
    md = markdown(res)
    print(md)
    write_outputs(args, res, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
