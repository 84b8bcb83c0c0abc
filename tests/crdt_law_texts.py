"""The laws of tests/crdt_laws.py in words, by number: what a failure message names.

crdt_laws.py refers to each law by a ``const()`` number and imports this table only when a
law fails. A passing run on a device therefore never holds these sentences: as str objects
they would take ~3 KB of a 64 KB heap on the 64-bit unix port. Keep the numbers in step
with the ``_NAME = const(n)`` lines of crdt_laws.py (test_micropython.py checks both ways).
Portable: plain data.
"""

LAWS = {
    1: "from_wire(to_wire(s)) == s",
    2: "wire.loads returns the same type",
    3: "wire.loads(wire.dumps(s)) == s",
    4: "re-encoding a decoded state gives the same bytes",
    5: "params survive the wire",
    6: "a <= b iff a.join(b) == b",
    7: "b >= a iff a <= b",
    8: "both sides are <= their join",
    9: "the join is >= both sides",
    10: "bottom() is bottom",
    11: "bottom <= a",
    12: "a < a is false",
    13: "a <= b and a != b means a < b",
    14: "join is commutative",
    15: "join is associative",
    16: "join is idempotent",
    17: "joining again changes nothing",
    18: "bottom is the identity of join",
    19: "join does not mutate its inputs",
    20: "merge returns a bool",
    21: "merge leaves a.join(b)",
    22: "merge returns True iff the state strictly grew",
    23: "merge does not mutate its argument",
    24: "merging the same state again reports no growth",
    25: "a mutator returns a delta of the same type",
    26: "a delta has the state's parameters",
    27: "a mutator is an inflation (old <= new)",
    28: "old.join(delta) == new",
    29: "a delta is below the new state",
    30: "a mutator that changes nothing returns bottom",
    31: "a mutator that changes the state returns a delta",
    32: "deltas in any order converge",
    33: "duplicated deltas converge",
    34: "a receiver with gaps is below the full state",
    35: "dropped then resent deltas converge",
    36: "all deltas join to the joined full states",
    37: "merge order is irrelevant",
    38: "every replica is below the join of all",
}
