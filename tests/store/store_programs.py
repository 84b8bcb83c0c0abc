"""A Lasp program exercising every combinator, and its from-scratch definition.

Shared by the property tests: each store declares the same program; ``expected`` recomputes
every derived variable from the store's own inputs with plain Python sets.
"""

from __future__ import annotations

from typing import Any

from lasp_edge.store import Store

DERIVED = ("M", "F", "U", "I", "P", "Mid", "D", "SS", "sum", "max", "gsum", "U2")


def declare_program(s: Store) -> None:
    s.declare("A", "awset")
    s.declare("B", "awset")
    s.declare("G", "gset")
    s.map("A", lambda x: x % 5, "M")  # many-to-one: provenance counts
    s.filter("A", lambda x: x % 2 == 0, "F")
    s.union("M", "B", "U")
    s.intersection("A", "B", "I")
    s.product("F", "B", "P")
    s.map("A", lambda x: x, "Mid")
    s.product("A", "Mid", "D")  # a diamond: both inputs change on one update of A
    s.product("B", "B", "SS")  # self-product
    s.fold("A", lambda x: x - 3, "sum")  # negative contributions too
    s.declare("max", "maxregister")
    s.fold("U", lambda x: ("set", x), "max")  # join-fold: must drop on removal
    s.declare("gsum", "gcounter")
    s.fold("G", lambda x: x, "gsum")  # gcounter over a grow-only set
    s.declare("T2", "twopset")
    s.union("T2", "B", "U2")


def expected(a: set[Any], b: set[Any], g: set[Any], t: set[Any]) -> dict[str, Any]:
    m = {x % 5 for x in a}
    f = {x for x in a if x % 2 == 0}
    u = m | b
    return {
        "M": m,
        "F": f,
        "U": u,
        "I": a & b,
        "P": {(x, y) for x in f for y in b},
        "Mid": set(a),
        "D": {(x, y) for x in a for y in a},
        "SS": {(x, y) for x in b for y in b},
        "sum": sum(x - 3 for x in a),
        "max": max(u, default=0),
        "gsum": sum(g),
        "U2": t | b,
    }


def check_program(s: Store) -> None:
    want = expected(s.query("A"), s.query("B"), s.query("G"), s.query("T2"))
    got = {name: s.query(name) for name in DERIVED}
    assert got == want, (s.replica, got, want)
