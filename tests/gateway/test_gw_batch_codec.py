"""The gateway stores states with cbor2's C encoder (``nodedb.state_blob``), reads them back
with the portable decoder: every CRDT type must come back equal, whatever its history.

Histories are the op scripts of tests/crdt_ops.py (every registered type, values that
compare equal but encode differently, NaN, nested maps), so a new type is covered as soon
as it has a spec there. The bignum guard is checked on its own: an int beyond 64 bits must
raise at write time, never be written as a tag the reader refuses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crdt_ops import SPECS, run  # noqa: E402

from lasp_edge import cbor, wire  # noqa: E402
from lasp_edge.crdts.gcounter import GCounter  # noqa: E402
from lasp_gateway.nodedb import state_blob  # noqa: E402


def read_back(blob: bytes):
    return wire.from_typed(cbor.loads(blob))


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
@settings(max_examples=60, deadline=None)
@given(ints=st.lists(st.integers(0, 40), min_size=4, max_size=48))
def test_state_blob_reads_back_equal(spec, ints):
    history = run(spec, ints)
    for state in [*history.states, *history.deltas()]:
        back = read_back(state_blob(state))
        # equal as CRDT states, and equal in their canonical bytes (the wire form)
        assert back == state
        assert wire.dumps(back) == wire.dumps(state)


def test_latin_text_takes_the_portable_encoder_and_still_reads_back():
    # "é" is c3 a9 in UTF-8: the 0xc3 scan sends it to cbor.dumps, same value either way
    g = GCounter()
    g.increment("capteur-é", 5)
    assert read_back(state_blob(g)) == g


class _BigInt:
    """A state-shaped object whose wire form holds an int beyond 64 bits (the CRDTs bound
    theirs, so only a future type could do this)."""

    TAG = 1

    def to_wire(self):
        return {"d": 1 << 64}


def test_an_int_beyond_64_bits_is_refused_when_written():
    with pytest.raises(ValueError):
        state_blob(_BigInt())
