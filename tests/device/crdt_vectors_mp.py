"""MicroPython: replay tests/vectors/crdt.json and check every value and every byte.

    micropython -X heapsize=... tests/device/crdt_vectors_mp.py <repo root> [bundle dir]

With a bundle dir (lasp_edge compiled to .mpy by mpy-cross) the package is imported from
there instead of <root>/sdk. Prints "crdt vectors: N passed, M failed"; exits 1 on failure.
"""

import sys

ROOT = sys.argv[1]
sys.path.insert(0, ROOT + "/tests")
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else ROOT + "/sdk")

import gc  # noqa: E402
import json  # noqa: E402

from crdt_laws import check_vector  # noqa: E402

import lasp_edge  # noqa: E402


def main():
    print("lasp_edge from", lasp_edge.__file__)
    passed = failed = 0
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
            try:
                check_vector(vec)
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL", vec["name"])
                sys.print_exception(e)
            vec = None
            gc.collect()
    if passed + failed != count:
        print("FAIL read %d vectors, the file says %d" % (passed + failed, count))
        failed += 1
    print("crdt vectors: %d passed, %d failed" % (passed, failed))
    return failed


if main():
    sys.exit(1)
