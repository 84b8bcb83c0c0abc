"""Bad input through the real MQTT path never crashes, stalls or corrupts the services.

A fuzzer publishes hundreds of broken messages (bit flips, truncations, splices of valid
messages, random CBOR, wrong types, unknown versions, oversized payloads, foreign senders)
on device topics and on the gateway's and aggregator's server topics, while an honest
device keeps counting. Afterwards: both services still run, every honest count arrived
exactly, nothing but the fuzzer's own replica slots changed, and the gateway's file
reopens to the same state it holds in memory.
"""

from __future__ import annotations

import random

from gw_helpers import wait_until
from simdevice import SimDevice, oracle
from test_gw_basic import start_aggregator, start_gateway

from lasp_edge import AWMap, GCounter, cbor
from lasp_edge.sync import Node
from lasp_gateway.nodedb import NodeDB


def valid_messages() -> list[bytes]:
    """Real messages of a device "fz", as raw material for mutations."""
    fz = Node("fz", 3, interests=["ads"], sync_period_ms=0)
    fz.declare("impressions", AWMap("gcounter"))
    fz.declare("junk@fz", GCounter())
    out = [fz.birth_message("gw", True), fz.death_message()]
    fz.peer("gw").online = True
    for k in range(5):
        fz.update("impressions", "update", "ad-%d" % k, "increment", "fz", k + 1)
        fz.update("junk@fz", "increment", "fz", 2)
        fz._send_to(fz.peers["gw"], k)  # a DELTA without waiting for acks
        out += [d for _p, d in fz.take()]
    out.append(cbor.dumps([1, 4, "fz", 3, 1, 5]))  # an ACK
    return out


def mutate(rng: random.Random, base: list[bytes]) -> bytes:
    m = bytearray(rng.choice(base))
    op = rng.randrange(8)
    if op == 0 and m:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(m))
            m[i] ^= 1 << rng.randrange(8)
    elif op == 1:  # truncation
        del m[rng.randrange(len(m) + 1) :]
    elif op == 2:  # splice two messages
        other = rng.choice(base)
        m = m[: rng.randrange(len(m) + 1)] + other[rng.randrange(len(other) + 1) :]
    elif op == 3:  # random bytes
        m = bytearray(rng.randbytes(rng.randint(0, 64)))
    elif op == 4:  # random CBOR structures of the right outer shape
        head = [rng.choice([1, 2, 0, 99]), rng.randint(0, 6), rng.choice(["fz", 5, None])]
        junk = [0, -1, 2**60, "x", [], {}, None, True, b"z"]
        m = bytearray(cbor.dumps(head + [rng.choice(junk) for _ in range(rng.randint(0, 8))]))
    elif op == 5:  # a declared length far beyond the input
        m = bytearray(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff") + m
    elif op == 6:  # oversized
        m = m + bytearray(rng.randint(70_000, 90_000))
    else:  # deep nesting
        m = bytearray(b"\x81" * 200 + b"\x01")
    return bytes(m)


def test_fuzz_through_mqtt(mosquitto_broker, tmp_path, monkeypatch):
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000000")
    port = mosquitto_broker.port
    agg = start_aggregator(port, tmp_path / "agg.db")
    gw = start_gateway(port, tmp_path / "gw.db", max_message=65536)
    honest = SimDevice("d0", port)
    fuzzer = SimDevice("fz", port, start=False)
    fuzzer.link.start()
    rng = random.Random(20240601)
    base = valid_messages()
    topics = ["le/u/fz", "le/u/fz", "le/u/fz", "le/u/x" * 1, "le/g/gw/agg", "le/g/gw/fz"]
    topics += ["le/g/agg/gw", "le/g/agg/zz", "le/u/" + "y" * 40, "le/g/gw/" + "z" * 40]
    try:
        assert fuzzer.link.wait_connected(10)
        wait_until(lambda: honest.ads(), 20, "honest session up")
        sent = 0
        to_gw = 0
        for i in range(600):
            topic = rng.choice(topics)
            to_gw += topic.startswith(("le/u/", "le/g/gw/"))
            if fuzzer.link.publish(topic, mutate(rng, base)):
                sent += 1
            if i % 20 == 0:
                honest.count("ad-%d" % (1 + i % 3), 1 + i % 5)
                threading_pause()
        assert sent == 600
        honest.count("ad-1", 7)
        want = oracle([honest])
        wait_until(lambda: gw.received >= to_gw, 30, "the gateway read everything")
        wait_until(lambda: agg.store.query("impressions") == want_with_fz(agg, want), 30, "agg")
        wait_until(lambda: honest.synced(), 20, "honest device acknowledged")
        assert gw.failed is None and agg.failed is None
        assert gw._thread is not None and gw._thread.is_alive()
        assert agg._thread is not None and agg._thread.is_alive()
        with gw.lock:
            imps = gw.node.vars["impressions"]
            for ad in imps.keys():  # noqa: SIM118 (AWMap.keys: the live keys)
                slots = imps.get(ad).to_wire()
                assert set(slots) <= {"d0", "fz"}, slots  # nobody else was written
                assert slots.get("d0", 0) == want.get(ad, 0)
            assert gw.rejected_total > 300
            assert gw.stats["d0"].rejected == 0
        # the file holds exactly what memory holds (after the service stopped)
        gw.stop()
        memory = {n: v.copy() for n, v in gw.node.vars.items()}
        db = NodeDB(str(tmp_path / "gw.db"))
        snap = db.load()
        db.close()
        assert snap is not None
        back = Node("gw", 9)
        back.restore(snap)
        assert back.vars == memory
    finally:
        honest.close()
        fuzzer.link.stop()
        if gw._thread is not None and gw._thread.is_alive():
            gw.stop()
        agg.stop()


def threading_pause() -> None:
    import time

    time.sleep(0.005)


def want_with_fz(agg, want: dict[str, int]) -> dict[str, int]:
    """The expected totals: the honest ones plus whatever fz validly counted for itself."""
    imps = agg.store.state("impressions")
    out = dict(want)
    for ad in imps.keys():  # noqa: SIM118 (AWMap.keys: the live keys)
        fz = imps.get(ad).to_wire().get("fz", 0)
        if fz:
            out[ad] = out.get(ad, 0) + fz
    return out
