"""The fault language and the seeded schedule (sans-IO), and the proxy's MQTT framing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lasp_gateway.emulator.faults import (
    EPISODES,
    HEAL_BY,
    FaultSpecError,
    MessageFaults,
    parse_faults,
    plan_episodes,
)
from lasp_gateway.emulator.proxy import is_qos0_publish, split_packets


def test_parse_names_parameters_and_defaults():
    spec = parse_faults(["loss:0.2,dup:0.1", "partition:0.3", "gateway_kill", "crash:2"])
    assert spec.get("loss") == 0.2 and spec.get("dup") == 0.1
    assert spec.get("gateway-kill") == 1 and spec.get("crash") == 2
    assert "reorder" not in spec
    assert spec.text() == "loss:0.2,dup:0.1,partition:0.3,crash:2,gateway-kill:1"


@pytest.mark.parametrize("bad", ["los:0.1", "loss:1.5", "loss:x", "crash:-1", "partition:2"])
def test_parse_rejects_typos_and_ranges(bad):
    with pytest.raises(FaultSpecError):
        parse_faults(bad)


fault_lists = st.fixed_dictionaries(
    {},
    optional={
        "offline": st.floats(0.01, 1),
        "partition": st.floats(0.01, 1),
        "crash": st.integers(1, 5),
        "gateway-kill": st.integers(1, 3),
        "broker-restart": st.integers(1, 3),
        "aggregator-down": st.integers(1, 3),
        "loss": st.floats(0.01, 1),
    },
)


@settings(max_examples=200, deadline=None)
@given(fault_lists, st.integers(1, 300), st.floats(5, 120), st.integers(0, 2**31))
def test_schedule_is_reproducible_bounded_and_complete(params, devices, duration, seed):
    spec = parse_faults(",".join("%s:%s" % kv for kv in params.items()))
    real = list(range(0, devices, 7))
    plan = plan_episodes(spec, devices, duration, seed, real)
    assert plan == plan_episodes(spec, devices, duration, seed, real)  # same seed, same run
    for ep in plan:
        assert 0 <= ep.start < ep.end
        assert all(0 <= i < devices for i in ep.targets)
        if ep.kind != "crash":  # a crash's end is the restart, shortly after
            assert ep.end <= duration * HEAL_BY + 1e-9
    kinds = {ep.kind for ep in plan}
    for name in params:
        assert name in kinds or (name == "loss" and "messages" in kinds)
    for kind in ("gateway-kill", "broker-restart", "aggregator-down"):
        windows = sorted((e.start, e.end) for e in plan if e.kind == kind)
        assert all(a[1] <= b[0] for a, b in zip(windows, windows[1:], strict=False))
    crashes = [e.targets[0] for e in plan if e.kind == "crash"]
    if crashes and real:
        assert any(c in real for c in crashes)  # a kill -9 of a real device
        if len(crashes) > 1 and devices > len(real):
            assert any(c not in real for c in crashes)  # and an abrupt in-process stop
    assert set(kinds) <= set(EPISODES) | {"messages"}


def test_message_faults_rates_follow_the_parameters():
    f = MessageFaults(parse_faults("loss:0.2,dup:0.1,reorder:0.1,delay:100"), 5, "d1/up")
    out = [f.decide() for _ in range(20000)]
    assert 0.18 < sum(1 for o in out if not o) / len(out) < 0.22
    assert 0.07 < sum(1 for o in out if len(o) == 2) / len(out) < 0.11
    assert all(0.05 <= d <= 0.15 + 0.3 + 0.02 for o in out for d in o)
    again = MessageFaults(parse_faults("loss:0.2,dup:0.1,reorder:0.1,delay:100"), 5, "d1/up")
    assert [again.decide() for _ in range(20000)] == out
    f.healed = True
    assert f.decide() == [0.0]


def _packet(kind_byte: int, body: bytes) -> bytes:
    n, enc = len(body), bytearray()
    while True:
        b, n = n % 128, n // 128
        enc.append(b | (0x80 if n else 0))
        if not n:
            return bytes([kind_byte]) + bytes(enc) + body


packets = st.lists(
    st.tuples(st.sampled_from([0x30, 0x32, 0xC0, 0x82, 0x10]), st.binary(max_size=300)),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(packets, st.lists(st.integers(1, 400), max_size=30))
def test_split_packets_recovers_every_packet_whatever_the_reads(items, cuts):
    pkts = [_packet(k, b) for k, b in items]
    stream = b"".join(pkts)
    buf, got, pos = bytearray(), [], 0
    for c in cuts + [len(stream)]:
        buf += stream[pos : pos + c]
        pos += c
        got += split_packets(buf)
    buf += stream[pos:]
    got += split_packets(buf)
    assert got == pkts and not buf
    assert [is_qos0_publish(p) for p in got] == [k == 0x30 for k, _ in items]


def test_split_packets_handles_large_remaining_lengths():
    big = _packet(0x30, b"x" * 20000)  # three length bytes
    buf = bytearray(big[:3])
    assert split_packets(buf) == []
    buf += big[3:]
    assert split_packets(buf) == [big]
