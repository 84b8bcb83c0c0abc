"""Subprocess half of the crash tests: writes to a store, then gets killed (-9).

Usage: python store_worker.py MODE PATH [ARGS...]. It prints one line per completed step
and flushes, so the parent knows exactly what each call had returned before the kill.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from lasp_edge.store import Store, core


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def ledger_append(ledger: str, key: str) -> None:
    """An idempotent external effect: a line per key, written at most once."""
    try:
        with open(ledger) as f:
            if key in f.read().split():
                return
    except FileNotFoundError:
        pass
    with open(ledger, "a") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())


def updates(path: str, synchronous: str) -> None:
    core.MIN_CHECKPOINT_BYTES = 256  # checkpoint often, so kills land inside them too
    s = Store("w", path, synchronous=synchronous)
    s.declare("S", "awset")
    s.declare("c", "gcounter")
    s.map("S", lambda x: x * 2, "T")
    i = 0
    while True:
        s.update("S", "add", i)
        if i % 3 == 0:
            s.update("S", "remove", i - 1)
        s.update("c", "increment")
        print(i, flush=True)
        i += 1


def effect(path: str, ledger: str, when: str) -> None:
    s = Store("w", path)
    s.declare("c", "gcounter")

    def bill(value: int) -> None:
        if when == "during":
            ledger_append(ledger, "bill")
            kill_self()  # the effect happened, its record did not
        ledger_append(ledger, "bill")

    if when == "before":
        # A stream runs before the effect's callback: crash with the trigger on disk only.
        s.stream("c", lambda v: kill_self() if v >= 3 else None)
    s.enforce_once("c", 3, bill, key="bill")
    for _ in range(3):
        s.update("c", "increment")
    print("done", flush=True)
    time.sleep(60)  # wait to be killed


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "updates":
        updates(path, sys.argv[3])
    else:
        effect(path, sys.argv[3], sys.argv[4])
