"""Regenerate tests/vectors/crdt.json from the CPython implementation.

    .venv/bin/python tests/vectors/make_crdt_vectors.py

Run it only when a change to the wire format is intended: tests/test_crdt_vectors.py fails
while the committed JSON and the implementation disagree, and the MicroPython script
tests/device/crdt_vectors_mp.py checks the device against the same file. The scripts below
are the source of truth; expected values and bytes are computed, never typed by hand.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for crdt_replay

from crdt_replay import replay  # noqa: E402

COMMENT = (
    "Shared CRDT vectors for lasp_edge.crdts (CPython: tests/test_crdt_vectors.py, "
    "MicroPython: tests/device/crdt_vectors_mp.py); regenerate with "
    "tests/vectors/make_crdt_vectors.py. Each vector makes 'replicas' (default 1) bottom "
    "states of 'type' (a registry name) with constructor 'params', then runs 'calls' in "
    "order. A call is [replica, method, arg, ...]: the state of that replica runs the "
    "mutator; [r, 'merge', s] merges replica s's full state into r; [r, 'deliver', i] merges "
    "the delta returned by call i into r. Arguments are JSON, except that a JSON array is "
    "a tuple and {\"$bytes\": hex} is a byte string. Expected: 'deltas' = hex of "
    "wire.dumps(delta) per call (null for merge/deliver); 'states' = hex of wire.dumps of "
    "each replica at the end; 'join' = hex of the join of all replicas; 'value' = that "
    'join\'s value() as JSON, where a set is {"$set": [...]} and a map {"$map": [[k, v], '
    "...]} in canonical CBOR order of elements/keys, a tuple is an array and bytes are "
    '{"$bytes": hex}. Every hex must also decode with wire.loads and re-encode unchanged.'
)

# (name, type, params, replicas, calls)
# fmt: off
SCRIPTS = [
    ("gcounter-slots", "gcounter", {}, 1, [
        [0, "increment", 1, 2],
        [0, "increment", "a", 3],
        [0, "increment", 1, 0],
        [0, "increment", 1],
    ]),
    ("gcounter-wide-ints", "gcounter", {}, 1, [
        [0, "increment", 0, 24],
        [0, "increment", 1000000, 300],
        [0, "increment", "dev-7", 70000],
        [0, "increment", 3, 4294967296],
    ]),
    ("gcounter-concurrent", "gcounter", {}, 2, [
        [0, "increment", 0, 5],
        [1, "increment", "b", 7],
        [1, "merge", 0],
        [0, "increment", 0, 1],
    ]),
    ("pncounter-negative", "pncounter", {}, 2, [
        [0, "increment", 0, 4],
        [1, "decrement", "x", 6],
        [0, "decrement", 0, 1],
        [1, "deliver", 0],
    ]),
    ("gset-elements", "gset", {}, 1, [
        [0, "add", 3],
        [0, "add", "b"],
        [0, "add", {"$bytes": "00ff"}],
        [0, "add", [1, "a"]],
        [0, "add", None],
        [0, "add", -24],
        [0, "add", 3],
    ]),
    ("twopset-final-removal", "twopset", {}, 1, [
        [0, "add", "x"],
        [0, "add", "y"],
        [0, "remove", "x"],
        [0, "add", "x"],
        [0, "remove", "z"],
        [0, "add", "z"],
    ]),
    ("awset-add-remove-readd", "awset", {}, 1, [
        [0, "add", 1, "x"],
        [0, "add", 1, "y"],
        [0, "remove", "x"],
        [0, "add", 1, "x"],
        [0, "remove", "nope"],
    ]),
    ("awset-add-wins", "awset", {}, 2, [
        [0, "add", 0, "x"],
        [1, "merge", 0],
        [1, "remove", "x"],
        [0, "add", 0, "x"],
        [1, "add", "b", [7, "t"]],
        [0, "merge", 1],
    ]),
    ("awset-out-of-order", "awset", {}, 2, [
        [0, "add", "r", 10],
        [0, "add", "r", 20],
        [0, "add", "r", 30],
        [1, "deliver", 2],
        [1, "deliver", 0],
    ]),
    ("lwwregister-ties", "lwwregister", {}, 3, [
        [0, "set", "first", 5, 1],
        [1, "set", "second", 5, "a"],
        [2, "set", "old", 4, 9],
        [0, "set", "older", 3, 1],
        [2, "set", [1, 2], 5, 1],
    ]),
    ("mvregister-concurrent", "mvregister", {}, 2, [
        [0, "set", 0, "red"],
        [1, "set", "b", "blue"],
        [0, "merge", 1],
        [1, "set", "b", "green"],
    ]),
    ("mvregister-supersede", "mvregister", {}, 2, [
        [0, "set", 0, "red"],
        [1, "set", "b", "blue"],
        [0, "merge", 1],
        [0, "set", 0, {"$bytes": "cafe"}],
        [1, "merge", 0],
    ]),
    ("maxregister", "maxregister", {}, 2, [
        [0, "set", 5],
        [0, "set", 3],
        [1, "set", 300],
        [0, "set", 5],
    ]),
    ("ewflag-enable-wins", "ewflag", {}, 2, [
        [0, "enable", 0],
        [1, "merge", 0],
        [1, "disable"],
        [0, "enable", 0],
    ]),
    ("ewflag-disabled", "ewflag", {}, 2, [
        [0, "enable", 0],
        [1, "enable", "b"],
        [1, "merge", 0],
        [1, "disable"],
        [0, "merge", 1],
    ]),
    ("topk-truncate", "topk", {"k": 2}, 1, [
        [0, "add", "a", 5],
        [0, "add", "b", 3],
        [0, "add", "c", 4],
        [0, "add", "b", 9],
        [0, "add", "a", 1],
        [0, "add", 7, 5],
        [0, "add", "d", 2.5],
    ]),
    ("topk-scores", "topk", {"k": 3}, 2, [
        [0, "add", 1, 4.0],
        [1, "add", 1, 4],
        [1, "add", 2, 0.5],
        [0, "add", "z", -3],
        [0, "merge", 1],
    ]),
    ("awmap-gcounter-remove", "awmap", {"vtype": "gcounter"}, 2, [
        [0, "update", "ad1", "increment", 0, 2],
        [0, "update", "ad2", "increment", 0, 1],
        [1, "merge", 0],
        [1, "remove", "ad1"],
        [0, "update", "ad1", "increment", 0, 1],
        [1, "remove", "ad2"],
        [1, "update", 5, "increment", "b", 1],
    ]),
    ("awmap-awset", "awmap", {"vtype": "awset"}, 1, [
        [0, "update", "room", "add", 1, "alice"],
        [0, "update", "room", "add", 1, "bob"],
        [0, "update", "room", "remove", "alice"],
        [0, "update", [1, "x"], "add", 1, 3],
        [0, "remove", [1, "x"]],
    ]),
    ("awmap-topk", "awmap", {"vtype": "topk", "vparams": {"k": 2}}, 1, [
        [0, "update", "g", "add", "p", 3],
        [0, "update", "g", "add", "q", 5],
        [0, "update", "g", "add", "r", 4],
        [0, "update", "h", "add", "p", 1.5],
    ]),
]
# fmt: on


def build():
    vectors = []
    for name, tname, params, replicas, calls in SCRIPTS:
        vec = {"name": name, "type": tname, "params": params, "replicas": replicas}
        vec["calls"] = calls
        vec.update(replay(vec))
        vectors.append(vec)
    return {"version": 1, "count": len(vectors), "comment": COMMENT, "vectors": vectors}


def dump(doc):
    """One vector per line: diffable, and a device can stream it line by line.

    The first line is ``{"version": 1, "count": N,`` so a streaming reader can check it
    saw every vector; each vector line is one JSON object followed by a comma (but the last).
    """
    lines = [
        '{"version": %d, "count": %d,' % (doc["version"], len(doc["vectors"])),
        ' "comment": %s,' % json.dumps(doc["comment"]),
    ]
    lines.append(' "vectors": [')
    body = [json.dumps(v, sort_keys=True) for v in doc["vectors"]]
    lines.append(",\n".join("  " + b for b in body))
    lines.append(" ]}")
    return "\n".join(lines) + "\n"


def main():
    path = os.path.join(HERE, "crdt.json")
    text = dump(build())
    with open(path, "w") as f:
        f.write(text)
    print("wrote %s (%d bytes, %d vectors)" % (path, len(text), len(SCRIPTS)))


if __name__ == "__main__":
    main()
