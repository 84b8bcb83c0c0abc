"""Seed program 1: ``S1 = {1,2,3}; map(S1, x*2, S2)``; removing 2 from S1 removes 4 from S2.

Two replicas run the same program; the removal happens on the other replica and reaches
this one as a delta, showing that the derived set follows remote changes too.
"""

from __future__ import annotations

import argparse

from lasp_edge.store import LocalNetwork, Store


def fmt(s: set[int]) -> str:
    return "{" + ", ".join(str(x) for x in sorted(s)) + "}"


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    a, b = Store("a"), Store("b")
    for s in (a, b):
        s.declare("S1", "awset")
        s.map("S1", lambda x: x * 2, "S2")
    for x in (1, 2, 3):
        a.update("S1", "add", x)
    print("S1 = %s" % fmt(a.query("S1")))
    print("map(S1, x*2, S2)  ->  S2 = %s" % fmt(a.query("S2")))

    a.update("S1", "remove", 2)
    print("remove 2 from S1  ->  S1 = %s, S2 = %s" % (fmt(a.query("S1")), fmt(a.query("S2"))))

    net = LocalNetwork()
    net.connect(a, b)
    net.sync()
    print("replica b after sync: S1 = %s, S2 = %s" % (fmt(b.query("S1")), fmt(b.query("S2"))))
    b.update("S1", "remove", 3)
    net.sync()
    print("remove 3 at b, sync  ->  a: S1 = %s, S2 = %s" % (fmt(a.query("S1")), fmt(a.query("S2"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
