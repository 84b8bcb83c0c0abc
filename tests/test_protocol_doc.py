"""docs/PROTOCOL.md is a contract: every `hex:` example in it must be exact.

Each example must decode (as a typed state when it starts with the envelope, else as plain
CBOR) and re-encode to the very same bytes, so the document cannot drift from the code.
"""

import pathlib
import re

import pytest

from lasp_edge import cbor, wire

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md"
EXAMPLES = re.findall(r"^\s*hex: ([0-9a-f ]+)$", DOC.read_text(), re.M)


def test_the_document_has_examples():
    assert len(EXAMPLES) >= 14


@pytest.mark.parametrize("hexline", EXAMPLES)
def test_example_round_trips_exactly(hexline):
    data = bytes.fromhex(hexline.replace(" ", ""))
    obj = cbor.loads(data)
    assert cbor.dumps(obj) == data
    if isinstance(obj, list) and len(obj) == 3 and obj[0] == wire.VERSION:
        state = wire.loads(data)
        assert wire.dumps(state) == data
