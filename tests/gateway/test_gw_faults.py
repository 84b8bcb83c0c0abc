"""End to end under faults: devices -> mosquitto -> gateway -> (broker) -> aggregator.

1. The gateway process is ``kill -9``'d at random moments while devices keep counting, and
   restarted on the same SQLite file: nothing it acknowledged may be lost (the devices
   forget what was acknowledged, so a lost ack would show as a total below the oracle).
2. The aggregator is down for a while: the gateway keeps accepting and acknowledging
   devices, holds the backlog durably in bounded space, and forwards it when the
   aggregator returns (on a second broker: the gateway's uplink).
3. An adversarial device sends forged deltas (another device's counter slot, another
   replica's dots, another's register write, a variable it does not own), replays, and
   malformed messages: all rejected and counted against it, none merged.

In each, the aggregator's (and the gateway's) final values equal the oracle exactly: the
join of what every honest device counted.
"""

from __future__ import annotations

import random
import threading

from gw_helpers import aggregator_args, free_port, gateway_args, http_json, wait_until
from gw_programs import ad_counter
from simdevice import SimDevice, oracle
from test_gw_basic import start_aggregator, start_gateway

from lasp_edge import AWSet, GCounter, LWWRegister, MaxRegister, cbor
from lasp_edge.sync import messages as M


class Counting:
    """Devices counting in a background thread until stopped."""

    def __init__(self, devs: list[SimDevice], seed: int = 1) -> None:
        self.devs = devs
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            d = self.rng.choice(self.devs)
            d.count("ad-%d" % self.rng.randint(1, 3), self.rng.randint(1, 3))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def test_gateway_kill9_loses_nothing_acknowledged(mosquitto_broker, procs, tmp_path, monkeypatch):
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000000")  # no billing here: just counting
    port = mosquitto_broker.port
    agg = start_aggregator(port, tmp_path / "agg.db")
    http = free_port()
    gw = procs(
        gateway_args(port, tmp_path / "gw.db", http="127.0.0.1:%d" % http),
        tmp_path / "gw.log",
    ).start()
    devs = [SimDevice("d%d" % i, port) for i in range(4)]
    counting = Counting(devs)
    rng = random.Random(7)
    try:
        wait_until(lambda: sum(d.acks for d in devs) > 10, 20, "first acks")
        for _ in range(8):
            threading.Event().wait(rng.uniform(0.1, 0.7))
            gw.kill9()
            threading.Event().wait(rng.uniform(0.0, 0.3))
            gw.start()
        counting.stop()
        want = oracle(devs)
        assert sum(want.values()) > 100
        wait_until(lambda: agg.store.query("impressions") == want, 60, "aggregator == oracle")
        gw_url = "http://127.0.0.1:%d/api/variables/impressions" % http
        wait_until(lambda: http_json(gw_url)["value"] == want, 20, "gateway == oracle")
        wait_until(lambda: all(d.synced() for d in devs), 20, "devices acknowledged")
        # Once more: a kill after everything was acknowledged loses nothing either.
        gw.kill9()
        gw.start()
        assert http_json(gw_url)["value"] == want
        assert gw.starts == 10
        # The devices forgot what was acknowledged, and never had to fall back to full
        # state: every restarted gateway still held all it had acknowledged.
        assert sum(d.full_sends for d in devs) == 0
        assert all(d.node.log.trimmed_to > 0 for d in devs)
    finally:
        counting.stop()
        for d in devs:
            d.close()
        agg.stop()
    assert not any(d.rejected for d in devs)


def test_aggregator_down_store_and_forward(
    mosquitto_broker, second_broker, procs, tmp_path, monkeypatch
):
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000000")
    dev_port, up_port = mosquitto_broker.port, second_broker.port
    agg_http = free_port()
    agg = procs(
        aggregator_args(up_port, tmp_path / "agg.db", agg_http),
        tmp_path / "agg.log",
        {"LASP_AD_THRESHOLD": "1000000"},
    ).start()
    gw = start_gateway(dev_port, tmp_path / "gw.db", upstream=_settings(up_port))
    devs = [SimDevice("d%d" % i, dev_port) for i in range(3)]
    api = "http://127.0.0.1:%d" % agg_http
    try:
        wait_until(lambda: all(d.ads() for d in devs), 20, "ads from the aggregator")
        for d in devs:
            d.count("ad-1", 5)
        want = oracle(devs)
        wait_until(
            lambda: http_json(api + "/api/variables/impressions")["value"] == want, 20, "first"
        )
        agg.kill9()
        # The aggregator is gone: devices keep counting and are still acknowledged.
        for i in range(300):
            devs[i % 3].count("ad-%d" % (1 + i % 3))
            if i % 30 == 0:
                threading.Event().wait(0.05)
        wait_until(lambda: all(d.synced() for d in devs), 20, "acks while upstream is down")
        with gw.lock:
            assert gw.backlog("agg") > 0
            segs = gw.node.log.size()
        sizes = gw.db.sizes()
        # Bounded by the state, not by the 300 messages: a few joined segments per var.
        assert segs <= 3 * len(gw.node.vars) + 8, segs
        assert sizes["segments_rows"] <= 3 * len(gw.node.vars) + 8, sizes
        for i in range(300):
            devs[i % 3].count("ad-2")
        wait_until(lambda: all(d.synced() for d in devs), 20, "acks while upstream is down")
        assert gw.db.sizes()["segments_rows"] <= 3 * len(gw.node.vars) + 8
        want = oracle(devs)
        assert gw.node.vars["impressions"].value() == want
        agg.start()
        wait_until(
            lambda: http_json(api + "/api/variables/impressions")["value"] == want,
            30,
            "aggregator caught up",
        )
        wait_until(lambda: gw.backlog("agg") == 0, 20, "gateway backlog drained")
        gws = http_json(api + "/api/gateways")
        assert gws[0]["id"] == "gw" and gws[0]["rejected"] == 0
    finally:
        for d in devs:
            d.close()
        gw.stop()


def _settings(port: int):
    from lasp_gateway.settings import BrokerSettings

    return BrokerSettings(port=port)


def _forged_messages(evil: str) -> dict[str, bytes]:
    """Deltas an adversary may try, each as a complete, well-formed DELTA from ``evil``."""

    def delta(var: str, state) -> bytes:
        from lasp_edge import wire

        return M.delta(evil, 1, 1, 1, 0, 1, False, {var: wire.to_typed(state)})

    from lasp_edge import AWMap

    slot = AWMap("gcounter")
    slot.update("ad-1", "increment", "d0", 1000)  # d0's counter slot
    both = AWMap("gcounter")
    both.update("ad-2", "increment", evil, 1)
    both.update("ad-2", "increment", "d1", 1000)  # own slot plus a forged one
    ads = AWSet()
    ads.add("agg", "free-ad")  # a dot of the aggregator
    lww = LWWRegister()
    lww.set("pwned", 10, "d0")
    peak = MaxRegister()
    peak.set(99)
    other = GCounter()
    other.increment(evil, 5)
    return {
        "slot": delta("impressions", slot),
        "mixed": delta("impressions", both),
        "dots": delta("ads", ads),
        "lww": delta("motd", lww),
        "maxreg": delta("peak", peak),
        "owned": delta("temp@d0", other),  # d0's own variable
        "status": delta("status@gw", lww),
    }


def test_adversarial_device_is_rejected_and_counted(mosquitto_broker, tmp_path, monkeypatch):
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000000")
    port = mosquitto_broker.port
    agg = start_aggregator(port, tmp_path / "agg.db", program=ad_counter)
    gw = start_gateway(port, tmp_path / "gw.db", max_message=4096)
    devs = [SimDevice("d%d" % i, port) for i in range(2)]
    evil = SimDevice("evil", port, interests=None, auto_declare=True)
    try:
        wait_until(lambda: evil.ads() and all(d.ads() for d in devs), 20, "sessions up")
        # honest traffic, including from evil: its own slot and its own variable are fine
        for d in devs + [evil]:
            d.count("ad-1", 3)
        own = MaxRegister()
        own.set(7)
        evil.write("peak@evil", own)
        temp = GCounter()
        temp.increment("d0", 4)
        devs[0].write("temp@d0", temp)  # d0's own variable: must never reach evil
        wait_until(lambda: evil.synced() and devs[0].synced(), 20, "honest data acknowledged")
        # captured before: a real message of d0 (to replay from evil's topic)
        d0_msg = M.delta("d0", 1, 1, 1, 0, 1, False, {})
        forged = _forged_messages("evil")
        bad = {
            "garbage": b"\xff\x00garbage",
            "not-a-message": cbor.dumps({"hello": 1}),
            "version": cbor.dumps([9, 3, "evil", 1, 1, 1, 0, 1, False, {}]),
            "types": cbor.dumps([1, 3, "evil", "one", 1, 1, 0, 1, False, {}]),
            "oversized": M.delta("evil", 1, 1, 1, 0, 1, False, {"x": [3, ["a" * 5000]]}),
            "replay-of-d0": d0_msg,
            "stale-epoch": M.delta("evil", 0, 1, 1, 0, 1, False, {}),
        }
        with gw.lock:
            before = gw.stats["evil"].rejected
        for payload in list(forged.values()) + list(bad.values()):
            assert evil.publish_raw(payload)
        n_bad = len(forged) + len(bad)
        wait_until(lambda: gw.stats["evil"].rejected - before >= n_bad, 20, "all rejected")
        # honest devices keep going, afterwards too
        for d in devs:
            d.count("ad-2", 2)
        want = oracle(devs + [evil])
        wait_until(lambda: agg.store.query("impressions") == want, 30, "aggregator == oracle")
        assert gw.node.vars["impressions"].value() == want
        assert "free-ad" not in agg.store.query("ads")
        for name in ("motd", "peak", "x"):
            assert name not in agg.store.variables() or agg.store.state(name).is_bottom(), name
        assert agg.store.query("temp@d0") == 4
        assert gw.node.vars["status@gw"].value()["gateway"] == "gw"  # not overwritten
        wait_until(lambda: "peak@evil" in agg.store.variables(), 20, "evil's own variable")
        assert agg.store.query("peak@evil") == 7
        with gw.lock:
            assert gw.stats["evil"].rejected - before == n_bad
            assert gw.stats["d0"].rejected == 0 and gw.stats["d1"].rejected == 0
        # reported per device, up to the aggregator's API
        reported = wait_until(
            lambda: (
                {k: v["rejected"] for k, v in agg.gateway_reports()["gw"]["devices"].items()}.get(
                    "evil"
                )
                == gw.stats["evil"].rejected
            ),
            10,
            "reject count reported upstream",
        )
        assert reported
        # devices never receive variables owned by others: evil wants everything, yet
        assert "peak@evil" in evil.node.vars
        wait_until(
            lambda: evil.node.vars["impressions"].value() == want, 20, "shared data reaches evil"
        )
        assert not [n for n in evil.node.vars if "@" in n and not n.endswith("@evil")]
    finally:
        for d in devs + [evil]:
            d.close()
        gw.stop()
        agg.stop()
