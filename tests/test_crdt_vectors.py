"""The committed CRDT vectors still match the implementation (a wire change is caught here).

If a change to the bytes is intended, regenerate with tests/vectors/make_crdt_vectors.py and
review the diff; the same file is checked on MicroPython by tests/device/crdt_vectors_mp.py.
"""

import json
import os

import pytest
from crdt_laws import check_vector

import lasp_edge
from lasp_edge import wire

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "vectors", "crdt.json")) as _f:
    DOC = json.load(_f)
VECTORS = DOC["vectors"]


def test_format():
    assert DOC["version"] == 1
    assert "make_crdt_vectors.py" in DOC["comment"]
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)


def test_every_type_has_vectors():
    assert {lasp_edge.type_for(v["type"]) for v in VECTORS} == set(lasp_edge.TYPES)


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vec):
    check_vector(vec)


def test_vectors_are_generated_from_the_scripts():
    """crdt.json is exactly what the generator writes (no hand edits, no stale entries)."""
    import importlib.util

    path = os.path.join(HERE, "vectors", "make_crdt_vectors.py")
    spec = importlib.util.spec_from_file_location("make_crdt_vectors", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(HERE, "vectors", "crdt.json")) as f:
        assert f.read() == mod.dump(mod.build())


def test_a_changed_byte_is_caught():
    """The check can fail: flip one expected byte and it must complain."""
    vec = dict(VECTORS[0])
    h = vec["join"]
    vec["join"] = h[:-1] + ("0" if h[-1] != "0" else "1")
    with pytest.raises(AssertionError):
        check_vector(vec)
    assert wire.loads(bytes.fromhex(h)) is not None
