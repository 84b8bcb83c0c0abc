"""Tests for lasp_edge.cbor: byte identity with cbor2's canonical encoder, round trips,
liberal decoding of non-canonical forms, and a decoder that fails safely on hostile input.

The shared vectors in tests/vectors/cbor.json are checked here against both our codec and
cbor2, and on MicroPython by tests/device/cbor_vectors_mp.py.
"""

import contextlib
import json
import math
import struct
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lasp_edge.cbor as cbor
import lasp_edge.cbor_rare as cbor_rare

VECTORS_PATH = Path(__file__).parent / "vectors" / "cbor.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def from_json(v):
    """Undo the JSON wrappers described in the vector file's "comment"."""
    if isinstance(v, list):
        return [from_json(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "$bytes" in v:
        return bytes.fromhex(v["$bytes"])
    if "$tuple" in v:
        return tuple(from_json(x) for x in v["$tuple"])
    if "$map" in v:
        return {from_json(k): from_json(x) for k, x in v["$map"]}
    f = v["$float"]
    named = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0.0": -0.0}
    if f in named:
        return named[f]
    assert f.startswith("0x") and len(f) == 18, f
    return struct.unpack(">d", bytes.fromhex(f[2:]))[0]


def same(a, b):
    """Equality with exact types: 1 is not 1.0 or True, a list is not a tuple, -0.0 is not
    0.0, and NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return struct.pack(">d", a) == struct.pack(">d", b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for ka, va in a.items():
            kb = [k for k in b if same(ka, k)]
            if len(kb) != 1 or not same(va, b[kb[0]]):
                return False
        return True
    return a == b


def decoded_form(x, key=False):
    """What loads(dumps(x)) should give: arrays come back as lists, or as tuples inside map
    keys; byte-like values come back as bytes."""
    t = type(x)
    if t in (list, tuple):
        items = [decoded_form(v, key) for v in x]
        return tuple(items) if key else items
    if t is dict:
        return {decoded_form(k, True): decoded_form(v) for k, v in x.items()}
    if t in (bytearray, memoryview):
        return bytes(x)
    return x


def expect_decode_error(data, **kw):
    """loads must raise CBORDecodeError and nothing else (pytest.raises would also let
    another exception type escape, but as an error rather than a clear failure)."""
    try:
        value = cbor.loads(data, **kw)
    except cbor.CBORDecodeError:
        return
    except Exception as e:  # noqa: BLE001 - any other type is the failure under test
        pytest.fail(f"{type(e).__name__} instead of CBORDecodeError: {e!r}")
    pytest.fail(f"accepted {bytes(data)[:40].hex()}... as {value!r:.80}")


def nested(n, leaf=0):
    v = leaf
    for _ in range(n):
        v = [v]
    return v


# --------------------------------------------------------------------------------------------
# Shared vectors
# --------------------------------------------------------------------------------------------


def _ids(kind):
    return [f"{kind}{i}-{v.get('why') or v['hex'][:24]}" for i, v in enumerate(VECTORS[kind])]


def test_vector_file_shape():
    assert VECTORS["version"] == 1
    assert "comment" in VECTORS
    assert len(VECTORS["encode"]) >= 40
    assert len(VECTORS["decode"]) >= 20
    assert len(VECTORS["invalid"]) >= 20
    assert VECTORS["encode_invalid"]


def test_vector_file_is_one_vector_per_line():
    """The MicroPython runner streams the file a line at a time to fit a 64K heap; check that
    reading it that way finds exactly the vectors that json.load finds."""
    found: dict[str, list] = {}
    kind = None
    for line in VECTORS_PATH.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith('"') and line.endswith("["):
            kind = line.split('"')[1]
            found[kind] = []
        elif line.startswith("{") and kind is not None:
            found[kind].append(json.loads(line.rstrip(",")))
    for kind in ("encode", "decode", "invalid", "encode_invalid"):
        assert found[kind] == VECTORS[kind], kind


def test_vectors_cover_every_head_width():
    heads = {bytes.fromhex(v["hex"])[0] for v in VECTORS["encode"]}
    for major in range(6):
        for ai in (0, 24, 25, 26, 27):
            if major in (2, 3, 4, 5) and ai in (26, 27):
                continue  # lengths of 2**16 and more would bloat the file
            assert (major << 5 | ai) in heads, (major, ai)
    for h in (0xF9, 0xFA, 0xFB, 0xF4, 0xF5, 0xF6):
        assert h in heads


@pytest.mark.parametrize("vec", VECTORS["encode"], ids=_ids("encode"))
def test_encode_vector(vec):
    value = from_json(vec["value"])
    data = bytes.fromhex(vec["hex"])
    assert cbor.dumps(value).hex() == vec["hex"]
    assert cbor2.dumps(value, canonical=True) == data
    expect = from_json(vec["decodes_to"]) if "decodes_to" in vec else value
    assert same(cbor.loads(data), expect)
    assert same(cbor2.loads(data), expect)


@pytest.mark.parametrize("vec", VECTORS["decode"], ids=_ids("decode"))
def test_decode_vector(vec):
    data = bytes.fromhex(vec["hex"])
    value = from_json(vec["value"])
    assert same(cbor.loads(data), value)
    assert same(cbor2.loads(data), value)
    # a decode vector is non-canonical input: the canonical form must differ
    assert cbor.dumps(value) != data


@pytest.mark.parametrize("vec", VECTORS["invalid"], ids=_ids("invalid"))
def test_invalid_vector(vec):
    data = bytes.fromhex(vec["hex"])
    expect_decode_error(data)
    try:
        cbor2.loads(data)
        cbor2_rejects = False
    except Exception:  # noqa: BLE001 - cbor2 raises assorted types
        cbor2_rejects = True
    assert cbor2_rejects == vec["cbor2_rejects"]


@pytest.mark.parametrize("vec", VECTORS["encode_invalid"], ids=_ids("encode_invalid"))
def test_encode_invalid_vector(vec):
    with pytest.raises(cbor.CBOREncodeError):
        cbor.dumps(from_json(vec["value"]))


# --------------------------------------------------------------------------------------------
# Explicit encoding checks
# --------------------------------------------------------------------------------------------


def test_map_keys_sort_length_first():
    assert cbor.dumps({24: 1, -1: 2}).hex() == "a22002181801"
    assert cbor.dumps({-1: 2, 24: 1}).hex() == "a22002181801"
    # length first: "b" (2 bytes) before "aa" (3 bytes), despite "aa" < "b" bytewise
    assert cbor.dumps({"aa": 1, "b": 2}).hex() == "a2616202626161" + "01"


def test_insertion_order_does_not_matter():
    keys = [5, "x", b"y", -3, (1, 2), 1.5, None, 300, "", True]
    a = {k: i for i, k in enumerate(keys)}
    b = {k: a[k] for k in reversed(keys)}
    assert cbor.dumps(a) == cbor.dumps(b)


@pytest.mark.parametrize(
    ("value", "hexed"),
    [
        (math.nan, "f97e00"),
        (-math.nan, "f97e00"),
        (struct.unpack(">d", bytes.fromhex("7ff8000000000001"))[0], "f97e00"),
        (math.inf, "f97c00"),
        (-math.inf, "f9fc00"),
        (-0.0, "f98000"),
        (0.0, "f90000"),
        (2.0**-24, "f90001"),  # smallest half subnormal
        (1023 * 2.0**-24, "f903ff"),  # largest half subnormal
        (2.0**-25, "fa33000000"),  # below the half range: single
        (2.0**-149, "fa00000001"),  # smallest single subnormal
        (2.0**-150, "fb3690000000000000"),  # below the single range: double
        (65504.0, "f97bff"),
        (65520.0, "fa477ff000"),
        (1.0 + 2.0**-10, "f93c01"),
        (1.0 + 2.0**-11, "fa3f801000"),
        (1.0 + 2.0**-23, "fa3f800001"),
        (1.0 + 2.0**-24, "fb3ff0000010000000"),
    ],
)
def test_float_widths(value, hexed):
    assert cbor.dumps(value).hex() == hexed
    assert cbor2.dumps(value, canonical=True).hex() == hexed


def test_byte_like_values_encode_as_byte_strings():
    assert cbor.dumps(bytearray(b"ab")) == b"\x42ab"
    assert cbor.dumps(memoryview(b"abc")[1:]) == b"\x42bc"
    assert cbor.dumps({"k": bytearray(b"")}) == cbor.dumps({"k": b""})


@pytest.mark.parametrize(
    "value",
    [
        2**64,
        -(2**64) - 1,
        {1, 2},
        frozenset(),
        object(),
        1j,
        "\ud800",  # lone surrogate: not encodable as UTF-8
        nested(cbor.DEFAULT_MAX_DEPTH + 1),
        {math.nan: 1},
        {(1, math.nan): 1},
        [1, {"a": [2**70]}],
        True.__class__,  # a type object
    ],
    ids=repr,
)
def test_unencodable_values(value):
    with pytest.raises(cbor.CBOREncodeError):
        cbor.dumps(value)


def test_subclasses_are_refused():
    """Exact type checks: a subclass may carry meaning (an enum, an ordered mapping) that the
    wire form would silently drop."""

    class MyInt(int):
        pass

    class MyStr(str):
        pass

    class MyDict(dict):
        pass

    for value in (MyInt(3), MyStr("a"), MyDict(a=1), [MyInt(1)], {MyStr("k"): 1}):
        with pytest.raises(cbor.CBOREncodeError):
            cbor.dumps(value)


def test_self_reference_is_an_encode_error():
    a: list = [1]
    a.append(a)
    d: dict = {}
    d["self"] = d
    for value in (a, d):
        with pytest.raises(cbor.CBOREncodeError):
            cbor.dumps(value)


def test_encode_depth_bound_is_the_decode_depth_bound():
    limit = cbor.DEFAULT_MAX_DEPTH
    ok = cbor.dumps(nested(limit))
    assert same(cbor.loads(ok), nested(limit))
    key_t: object = 0
    for _ in range(limit - 1):
        key_t = (key_t,)
    assert same(cbor.loads(cbor.dumps({key_t: 1})), {key_t: 1})
    with pytest.raises(cbor.CBOREncodeError):
        cbor.dumps({(key_t,): 1})
    with pytest.raises(cbor.CBOREncodeError):
        cbor.dumps([{"a": nested(limit - 1)}])


def test_large_map_round_trip():
    """The CRDT wire form of a 10,000-key map (timed in the report, not here)."""
    value = {i: {0: i % 7, 1: 3, 2: 11} for i in range(10_000)}
    data = cbor.dumps(value)
    assert data == cbor2.dumps(value, canonical=True)
    assert cbor.loads(data) == value


# --------------------------------------------------------------------------------------------
# Explicit decoding checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hexed", "value"),
    [
        ("1817", 23),
        ("190017", 23),
        ("1a00000017", 23),
        ("1b0000000000000017", 23),
        ("3b0000000000000017", -24),
        ("3bffffffffffffffff", -(2**64)),
        ("1bffffffffffffffff", 2**64 - 1),
        ("5a0000000161", b"a"),
        ("7b000000000000000161", "a"),
        ("9a0000000101", [1]),
        ("bb00000000000000010102", {1: 2}),
    ],
)
def test_non_shortest_heads_are_accepted(hexed, value):
    assert same(cbor.loads(bytes.fromhex(hexed)), value)


@pytest.mark.parametrize(
    ("hexed", "value"),
    [
        ("9f01029f03ffff", [1, 2, [3]]),
        ("bf6161016162bfffff", {"a": 1, "b": {}}),
        ("5f41014102ff", b"\x01\x02"),
        ("7f616161626163ff", "abc"),
        ("bf9f01ff02ff", {(1,): 2}),
        ("a19f9f01ff80ff02", {((1,), ()): 2}),
        ("9f5f4161ff7f6162ffff", [b"a", "b"]),
    ],
)
def test_indefinite_lengths_are_accepted(hexed, value):
    assert same(cbor.loads(bytes.fromhex(hexed)), value)


def test_accepts_bytearray_and_memoryview():
    data = cbor.dumps({"a": [1, b"x"]})
    for form in (bytearray(data), memoryview(data), memoryview(b"\x00" + data)[1:]):
        assert cbor.loads(form) == {"a": [1, b"x"]}


@pytest.mark.parametrize("data", ["a0", 160, None, [0xA0], bytearray, object()], ids=repr)
def test_non_bytes_input_is_a_decode_error(data):
    expect_decode_error(data)


def test_max_depth_parameter():
    assert cbor.loads(b"\x00", max_depth=0) == 0
    expect_decode_error(b"\x80", max_depth=0)
    expect_decode_error(b"\x81\x80", max_depth=1)
    assert cbor.loads(b"\x81\x80", max_depth=2) == [[]]
    # The decoder is iterative: a large bound does not turn into deep recursion.
    deep = cbor.loads(b"\x81" * 50_000 + b"\x00", max_depth=100_000)
    for _ in range(50_000):
        deep = deep[0]
    assert deep == 0


# --------------------------------------------------------------------------------------------
# Hostile input: every case here would hang, recurse without bound, allocate without bound or
# leak another exception type in a naive decoder.
# --------------------------------------------------------------------------------------------

HOSTILE = [
    b"\x81" * 10_001 + b"\x00",
    b"\x9f" * 10_001 + b"\x00" + b"\xff" * 10_001,
    b"\xa1\x00" * 10_001 + b"\x00",
    b"\xbf\x00" * 10_001 + b"\x00" + b"\xff" * 10_001,
    b"\xa1" + b"\x81" * 10_001 + b"\x00" + b"\x00",  # a deep array as a map key
    b"\x9f" * 10_001,
    b"\x5b" + (2**63).to_bytes(8, "big"),
    b"\x7b" + (2**63).to_bytes(8, "big") + b"a",
    b"\x9b" + (2**63).to_bytes(8, "big") + b"\x00",
    b"\xbb" + (2**63).to_bytes(8, "big") + b"\x00\x00",
    b"\x5b" + (2**64 - 1).to_bytes(8, "big"),
    b"\x9b" + (2**64 - 1).to_bytes(8, "big"),
    b"\xbb" + (2**64 - 1).to_bytes(8, "big"),
    b"\x5f\x5b" + (2**63).to_bytes(8, "big") + b"\xff",
    b"\x7f\x7b" + (2**63).to_bytes(8, "big") + b"\xff",
    b"\x9a\x00\x01\x00\x00" + b"\x00" * 100,  # 65536 items declared, 100 present
    b"\xba\x00\x00\x01\x00" + b"\x00" * 300,  # 256 pairs need at least 512 bytes
    b"\x5f" + b"\x40" * 10_000,  # endless empty chunks, no break
    b"\xc0\x00",
    b"\xd8\x20\x60",
    b"\xc0" * 10_000 + b"\x00",
    b"\x00\x00",
    b"\xff",
    b"\x81\xff",
    b"\x9f\xbf\x00\xff\xff",
    b"\xbf\x00\xff",
    b"\x61\xff",
    b"\x62\xc0\x80",
    b"\x63\xed\xa0\x80",
    b"\xf7",
    b"\xf8\xff",
    b"\xfc",
    b"\xa2\x00\x00\x00\x00",
]


@pytest.mark.parametrize("data", HOSTILE, ids=lambda b: b[:12].hex())
def test_hostile_input_is_a_decode_error(data):
    expect_decode_error(data)
    expect_decode_error(bytearray(data))
    expect_decode_error(memoryview(data))


@pytest.mark.parametrize(
    "data",
    [
        b"\x5b" + (2**63).to_bytes(8, "big") + b"\x00" * 100,
        b"\x7a\x00\x01\x00\x00" + b"a" * 100,
        b"\x9b" + (2**63).to_bytes(8, "big") + b"\x00" * 100,
        b"\x99\x01\x00" + b"\x00" * 255,
        b"\xbb" + (2**63).to_bytes(8, "big") + b"\x00" * 100,
        b"\xb8\x80" + b"\x00" * 255,  # 128 pairs need 256 bytes
    ],
    ids=lambda b: b[:9].hex(),
)
def test_declared_length_is_checked_before_reading(data):
    """A length that the remaining input cannot satisfy is refused at the head, before any
    item is read or any memory is set aside for it."""
    with pytest.raises(cbor.CBORDecodeError, match="longer than the input"):
        cbor.loads(data)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_decode_error(data):
    try:
        value = cbor.loads(data)
    except cbor.CBORDecodeError:
        return
    # Whatever is accepted is in the data model: it re-encodes, and that re-encoding is
    # accepted to the same value.
    assert same(cbor.loads(cbor.dumps(value)), value)


# --------------------------------------------------------------------------------------------
# Property tests over the data model
# --------------------------------------------------------------------------------------------

EDGE_INTS = [
    0,
    23,
    24,
    255,
    256,
    65535,
    65536,
    2**32 - 1,
    2**32,
    2**63,
    2**64 - 1,
    -1,
    -24,
    -25,
    -256,
    -257,
    -65536,
    -65537,
    -(2**32),
    -(2**32) - 1,
    -(2**64),
]
SPECIAL_FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    2.0**-24,
    -(2.0**-24),
    1023 * 2.0**-24,
    2.0**-14,
    65504.0,
    65520.0,
    2.0**-149,
    2.0**-126,
    3.4028234663852886e38,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
]

ints = st.one_of(st.integers(-(2**64), 2**64 - 1), st.sampled_from(EDGE_INTS), st.integers(-30, 30))
floats = st.one_of(
    st.floats(),
    st.floats(width=16),
    st.floats(width=32),
    st.sampled_from(SPECIAL_FLOATS),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.binary(max_size=40), st.text())
key_scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats.filter(lambda f: not math.isnan(f)),
    st.binary(),
    st.text(),
)
keys = st.recursive(key_scalars, lambda inner: st.lists(inner, max_size=3).map(tuple), max_leaves=6)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=6),
    ),
    max_leaves=30,
)

slow_ok = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@slow_ok
@given(values)
def test_dumps_is_byte_identical_to_cbor2_canonical(x):
    assert cbor.dumps(x) == cbor2.dumps(x, canonical=True)


def _dumped(x, chunk):
    """What ``cbor.dump`` hands over, as a list of bytes (it reuses its buffer)."""
    pieces: list = []
    cbor.dump(x, lambda piece: pieces.append(bytes(piece)), chunk)
    return pieces


@slow_ok
@given(values, st.integers(1, 200))
def test_streaming_dump_writes_the_bytes_of_dumps(x, chunk):
    pieces = _dumped(x, chunk)
    assert b"".join(pieces) == cbor.dumps(x)
    assert all(pieces)  # never an empty write


def test_streaming_dump_hands_over_small_pieces():
    """The point of dump: a record made of arrays and text-keyed maps never needs a buffer
    much larger than ``chunk`` plus one leaf, however big the record."""
    record = [1, {"vars": {"v%d" % i: [i, b"x" * 40] for i in range(50)}, "log": list(range(300))}]
    pieces = _dumped(record, 64)
    assert b"".join(pieces) == cbor.dumps(record)
    assert len(pieces) > 20
    assert max(len(p) for p in pieces) < 64 + 45


def _lazy_answer():
    return [7, b"x"]


def test_streaming_dump_calls_lazy_values_when_their_turn_comes():
    """A function or closure value is built only when the encoder reaches it, in canonical
    key order, and encodes like the value it returns; other callables are refused."""
    calls = []

    def part(name, value):
        def build():
            calls.append(name)
            return value

        return build

    record = [1, {"bb": part("bb", {"x": 1}), "a": part("a", [1, 2]), "c": _lazy_answer}]
    plain = [1, {"bb": {"x": 1}, "a": [1, 2], "c": [7, b"x"]}]
    assert b"".join(_dumped(record, 4)) == cbor.dumps(plain)
    assert calls == ["a", "bb"]  # "a" sorts first (shorter), whatever the dict order
    for value in (bool, [len], {"k": str.upper}):
        with pytest.raises(cbor.CBOREncodeError):
            _dumped(value, 4)


@pytest.mark.parametrize(
    "value", [[1, {"a": [2**70]}], {"k": 1.5j}, [{"a": nested(cbor.DEFAULT_MAX_DEPTH)}]], ids=repr
)
def test_streaming_dump_refuses_what_dumps_refuses(value):
    with pytest.raises(cbor.CBOREncodeError):
        cbor.dumps(value)
    with pytest.raises(cbor.CBOREncodeError):
        _dumped(value, 16)


@slow_ok
@given(values)
def test_round_trip(x):
    assert same(cbor.loads(cbor.dumps(x)), decoded_form(x))


@slow_ok
@given(values)
def test_decodes_cbor2_non_canonical_output(x):
    data = cbor2.dumps(x)  # insertion-ordered keys, doubles for every float
    assert same(cbor.loads(data), decoded_form(x))
    assert cbor.dumps(cbor.loads(data)) == cbor.dumps(x)


@slow_ok
@given(values)
def test_every_truncation_is_a_decode_error(x):
    data = cbor.dumps(x)
    for i in range(len(data)):
        expect_decode_error(data[:i])
    expect_decode_error(data + b"\x00")


@slow_ok
@given(values, st.randoms(use_true_random=False))
def test_decodes_loose_encodings(x, rnd):
    """A deliberately sloppy encoder (random head widths, indefinite lengths, split strings)
    must decode to the same value."""
    out = bytearray()
    loose_encode(x, out, rnd)
    assert same(cbor.loads(bytes(out)), decoded_form(x))


@slow_ok
@given(values, st.data())
def test_mutations_decode_or_raise_decode_error(x, data):
    buf = bytearray(cbor.dumps(x))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(cbor.CBORDecodeError):
        cbor.loads(bytes(buf))


def utf8_like_cpython(raw):
    """The hand-written RFC 3629 check runs only on MicroPython, whose decoder accepts
    overlong forms, surrogates and code points above U+10FFFF. CPython's strict decoder is the
    reference. (Through loads, CPython's own decoder would reject first, hiding any bug in
    the check; hence the direct call.)"""
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert cbor_rare.utf8_ok(raw) is valid, raw.hex()


# Lead bytes and the edges of the continuation ranges that RFC 3629 treats specially.
UTF8_EDGES = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0]
UTF8_EDGES += [0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF]


@settings(max_examples=1500)
@given(st.binary(max_size=12) | st.lists(st.sampled_from(UTF8_EDGES), max_size=6).map(bytes))
def test_strict_utf8_check_agrees_with_cpython(raw):
    utf8_like_cpython(raw)


@pytest.mark.parametrize(
    "seqs",
    [
        "c280 dfbf c080 c1bf",
        "e0a080 e09fbf e08080 efbfbf",
        "ed9fbf eda080 edbfbf ee8080",
        "f0908080 f08fbfbf f48fbfbf f4908080 f5808080",
        "e282 f09f98 c3 80 bf",
    ],
)
def test_strict_utf8_edge_cases(seqs):
    for seq in seqs.split():
        utf8_like_cpython(bytes.fromhex(seq))
        utf8_like_cpython(b"a" + bytes.fromhex(seq) + b"z")


def test_micropython_utf8_path_keeps_valid_text(monkeypatch):
    """With the MicroPython-only check switched on, valid text still round-trips."""
    monkeypatch.setattr(cbor, "_CHECK_UTF8", True)
    for s in ["\u00e9", "\u6c34", "\U00010151", "a\u00e9\u6c34\U00010151z", "\x7f", ""]:
        assert cbor.loads(cbor.dumps(s)) == s
        assert cbor.loads(cbor.dumps({s: [s]})) == {s: [s]}
        assert cbor.loads(b"\x7f" + cbor.dumps(s) + cbor.dumps(s) + b"\xff") == s + s


def loose_encode(x, out, rnd):
    def head(mt, n):
        widths = [
            w for w, lim in ((0, 24), (1, 256), (2, 65536), (4, 2**32), (8, 2**64)) if n < lim
        ]
        w = rnd.choice(widths)
        if w == 0:
            out.append(mt << 5 | n)
        else:
            out.append(mt << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[w])
            out.extend(n.to_bytes(w, "big"))

    t = type(x)
    if t is bool:
        out.append(0xF5 if x else 0xF4)
    elif x is None:
        out.append(0xF6)
    elif t is int:
        if x >= 0:
            head(0, x)
        else:
            head(1, -1 - x)
    elif t is float:
        forms = [b"\xfb" + struct.pack(">d", x)]
        for code, fmt in ((b"\xfa", ">f"), (b"\xf9", ">e")):
            try:
                narrow = struct.pack(fmt, x)
            except OverflowError:
                continue
            if same(struct.unpack(fmt, narrow)[0], x):
                forms.append(code + narrow)
        out.extend(rnd.choice(forms))
    elif t in (bytes, str):
        raw = x if t is bytes else x.encode("utf-8")
        mt = 2 if t is bytes else 3
        if rnd.random() < 0.3:
            out.append(mt << 5 | 31)
            # split only between characters for text: every chunk is valid UTF-8 by itself
            parts = [x[i : i + 2] for i in range(0, len(x), 2)] or [x]
            for part in parts:
                p = part if t is bytes else part.encode("utf-8")
                head(mt, len(p))
                out.extend(p)
            out.append(0xFF)
        else:
            head(mt, len(raw))
            out.extend(raw)
    elif t in (list, tuple):
        indefinite = rnd.random() < 0.3
        if indefinite:
            out.append(0x9F)
        else:
            head(4, len(x))
        for v in x:
            loose_encode(v, out, rnd)
        if indefinite:
            out.append(0xFF)
    elif t is dict:
        indefinite = rnd.random() < 0.3
        if indefinite:
            out.append(0xBF)
        else:
            head(5, len(x))
        items = list(x.items())
        rnd.shuffle(items)
        for k, v in items:
            loose_encode(k, out, rnd)
            loose_encode(v, out, rnd)
        if indefinite:
            out.append(0xFF)
    else:
        raise AssertionError(t)
