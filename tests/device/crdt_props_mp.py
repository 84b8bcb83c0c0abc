"""MicroPython: the CRDT laws over random histories, for every registered type.

    micropython -X heapsize=64K tests/device/crdt_props_mp.py <repo root> [bundle dir]
        [--helpers=DIR] [--only=SPEC,...] [--parts]

Runs the same op table (tests/crdt_ops.py) and laws (tests/crdt_laws.py) as the hypothesis
tests, with a fixed seed and a bounded number of histories per spec. Prints
"crdt props: N passed, M failed"; exits 1 on failure.

With a bundle dir (lasp_edge compiled to .mpy) the package comes from there instead of
<root>/sdk; ``--helpers`` names a directory searched before <root>/tests for the test
helpers, so they too can be loaded compiled. ``--parts`` prints the spec names and exits;
``--only`` runs just those specs. The harness (tests/device/mp_harness.py) runs one
process per spec: each then loads only its own type's code (specs import their class on
first use), which is what lets the laws run on a 64 KB heap. The script itself stays
small for the same reason: every name it uses is interned in that heap.
"""

import sys

ARGS = []
FLAGS = {}
for _a in sys.argv[1:]:
    if _a.startswith("--"):
        _k, _, _v = _a[2:].partition("=")
        FLAGS[_k] = _v
    else:
        ARGS.append(_a)
sys.path.insert(0, ARGS[0] + "/tests")
if FLAGS.get("helpers"):
    sys.path.insert(0, FLAGS["helpers"])
sys.path.insert(0, ARGS[1] if len(ARGS) > 1 else ARGS[0] + "/sdk")

import gc  # noqa: E402
import random  # noqa: E402

from crdt_ops import spec_named, spec_rows  # noqa: E402

import lasp_edge  # noqa: E402
from lasp_edge.crdts.registry import TABLE  # noqa: E402

SEED = 20240601
HISTORIES = 100  # per spec
MAX_OPS = 16  # ops per history (4 ints each)
SHOWN = 3  # failures printed in full per spec


def main():
    rows = spec_rows()
    if "parts" in FLAGS:
        print("parts:", " ".join(r[0] for r in rows))
        return 0
    print("lasp_edge from", lasp_edge.__file__)
    failed = 0
    # Every registered type has a spec: checked on the registry's names, so that no type
    # has to be loaded for it.
    covered = [r[1] for r in rows]
    for row in TABLE:
        if row[1] not in covered:
            print("FAIL type without an op spec:", row[1])
            failed += 1
    names = FLAGS["only"].split(",") if FLAGS.get("only") else [r[0] for r in rows]
    rows = covered = None
    from crdt_laws import check_history

    passed = 0
    for name in names:
        spec = spec_named(name)
        spec.bottom()  # load the type's code now, before any history data is allocated
        random.seed(SEED)  # per spec: a spec sees the same histories alone or with others
        bad = 0
        for _ in range(HISTORIES):
            gc.collect()
            # bytearrays, not lists: the laws only index them, and a list of 64 ints is a
            # 512-byte block that a fragmented 64 KB heap may not have in one piece
            n = 4 * random.randrange(MAX_OPS + 1)
            script = bytearray(random.getrandbits(8) for _ in range(n))
            order = bytearray(random.getrandbits(8) for _ in range(8))
            try:
                check_history(spec, script, order)
            except Exception as e:
                bad += 1
                if bad <= SHOWN:
                    print("FAIL", name, "script", list(script), "order", list(order))
                    sys.print_exception(e)
            script = order = None
        print("%s: %d histories, %d failed" % (name, HISTORIES, bad))
        passed += HISTORIES - bad
        failed += bad
    print("crdt props: %d passed, %d failed" % (passed, failed))
    return failed


if main():
    sys.exit(1)
