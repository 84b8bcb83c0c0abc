"""MicroPython: replay tests/vectors/crdt.json and check every value and every byte.

    micropython -X heapsize=64K tests/device/crdt_vectors_mp.py <repo root> [bundle dir]
        [--helpers=DIR] [--only=TYPE,...] [--parts]

With a bundle dir (lasp_edge compiled to .mpy by mpy-cross) the package is imported from
there instead of <root>/sdk; ``--helpers`` names a directory searched before <root>/tests
for the test helpers (tests/crdt_replay.py), so they too can be loaded compiled. Prints
"crdt vectors: N passed, M failed"; exits 1 on failure.

``--parts`` prints the registered type names and exits; ``--only`` replays just the vectors
of those types (each must have at least one). The harness runs one process per type, so
each loads only the code of the type it checks.
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
ROOT = ARGS[0]
sys.path.insert(0, ROOT + "/tests")
if FLAGS.get("helpers"):
    sys.path.insert(0, FLAGS["helpers"])
sys.path.insert(0, ARGS[1] if len(ARGS) > 1 else ROOT + "/sdk")

import gc  # noqa: E402
import json  # noqa: E402

import lasp_edge  # noqa: E402
from lasp_edge.crdts.registry import TABLE  # noqa: E402


def main():
    if "parts" in FLAGS:
        print("parts:", " ".join(row[1] for row in TABLE))
        return 0
    print("lasp_edge from", lasp_edge.__file__)
    from crdt_replay import check_vector

    only = FLAGS["only"].split(",") if FLAGS.get("only") else None
    seen = {}
    passed = failed = 0
    total = 0
    count = -1
    # Streamed one line at a time (the generator writes one vector per line): the whole
    # file parsed at once would need more heap than the code under test.
    with open(ROOT + "/tests/vectors/crdt.json") as f:
        for line in f:
            line = line.strip()
            if count < 0:
                count = json.loads(line.rstrip(",") + "}")["count"]
                continue
            if line.endswith(","):
                line = line[:-1]
            if not (line.startswith("{") and line.endswith("}")):
                continue
            vec = json.loads(line)
            line = None
            total += 1
            t = vec["type"]
            if only is not None and t not in only:
                continue
            seen[t] = seen.get(t, 0) + 1
            gc.collect()
            try:
                check_vector(vec)
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL", vec["name"])
                sys.print_exception(e)
            vec = None
            gc.collect()
    if total != count:
        print("FAIL read %d vectors, the file says %d" % (total, count))
        failed += 1
    for t in only or ():
        if not seen.get(t):
            print("FAIL no vectors for type", t)
            failed += 1
    print("crdt vectors: %d passed, %d failed" % (passed, failed))
    return failed


if main():
    sys.exit(1)
