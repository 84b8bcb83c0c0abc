"""MicroPython: the CRDT laws over random histories, for every registered type.

    micropython -X heapsize=... tests/device/crdt_props_mp.py <repo root> [bundle dir]

Runs the same op table (tests/crdt_ops.py) and laws (tests/crdt_laws.py) as the hypothesis
tests, with a fixed seed and a bounded number of histories per type. Prints
"crdt props: N passed, M failed"; exits 1 on failure.
"""

import sys

ROOT = sys.argv[1]
sys.path.insert(0, ROOT + "/tests")
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else ROOT + "/sdk")

import gc  # noqa: E402
import random  # noqa: E402

from crdt_laws import check_history  # noqa: E402
from crdt_ops import SPECS  # noqa: E402

import lasp_edge  # noqa: E402

SEED = 20240601
HISTORIES = 100  # per spec
MAX_OPS = 16  # ops per history (4 ints each)
SHOWN = 3  # failures printed in full per spec


def ints(n):
    return [random.getrandbits(8) for _ in range(n)]


def main():
    print("lasp_edge from", lasp_edge.__file__)
    random.seed(SEED)
    covered = set(s.cls for s in SPECS)
    missing = [t.NAME for t in lasp_edge.TYPES if t not in covered]
    passed = failed = 0
    if missing:
        print("FAIL types without an op spec:", missing)
        failed += 1
    for spec in SPECS:
        bad = 0
        for _ in range(HISTORIES):
            script = ints(4 * random.randrange(0, MAX_OPS + 1))
            order = ints(8)
            try:
                check_history(spec, script, order)
                passed += 1
            except Exception as e:
                failed += 1
                bad += 1
                if bad <= SHOWN:
                    print("FAIL", spec.name, "script", script, "order", order)
                    sys.print_exception(e)
            gc.collect()
        print("%s: %d histories, %d failed" % (spec.name, HISTORIES, bad))
    print("crdt props: %d passed, %d failed" % (passed, failed))
    return failed


if main():
    sys.exit(1)
