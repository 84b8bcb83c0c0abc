"""The aggregator: replicas converging, effects once (trusted only, across kill -9), the API."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import urllib.request

from gw_helpers import REPO, aggregator_args, free_port, http_json, wait_until
from simdevice import SimDevice, oracle
from test_gw_basic import start_aggregator, start_gateway

from lasp_gateway.http_api import ApiServer, aggregator_routes


def test_replicas_converge_and_only_the_trusted_one_bills(mosquitto_broker, tmp_path, monkeypatch):
    """gw1 -> agg1 (trusted), gw2 -> agg2; agg1 and agg2 are peers of each other."""
    monkeypatch.setenv("LASP_AD_THRESHOLD", "25")
    port = mosquitto_broker.port
    agg1 = start_aggregator(port, tmp_path / "a1.db", replica="agg1", peer_aggregators=["agg2"])
    agg2 = start_aggregator(
        port, tmp_path / "a2.db", replica="agg2", trusted=False, peer_aggregators=["agg1"]
    )
    gw1 = start_gateway(port, tmp_path / "g1.db", replica="gw1", upstream_ids=["agg1"])
    gw2 = start_gateway(port, tmp_path / "g2.db", replica="gw2", upstream_ids=["agg2"])
    devs1 = [SimDevice("a%d" % i, port, gateway="gw1") for i in range(2)]
    devs2 = [SimDevice("b%d" % i, port, gateway="gw2") for i in range(2)]
    devs = devs1 + devs2
    try:
        wait_until(lambda: all(len(d.ads()) == 3 for d in devs), 20, "ads everywhere")
        for k in range(12):
            for d in devs:
                d.count("ad-1")
                if k % 3 == 0:
                    d.count("ad-2")
        want = oracle(devs)
        assert want["ad-1"] >= 25 > want["ad-2"]
        for agg in (agg1, agg2):
            wait_until(lambda agg=agg: agg.store.query("impressions") == want, 30, "totals")
        # billed once, by agg1; agg2 only learns the bill and the removal by sync
        wait_until(lambda: agg2.store.query("bills") == {("ad-1", 25)}, 20, "bill replicated")
        assert agg1.store.effects()["bill/ad-1"] == "done"
        assert "bill/ad-1" not in agg2.store.effects()
        assert agg2.triggers()["effects"]["bill/ad-1"] == "untrusted"
        wait_until(lambda: all(d.ads() == {"ad-2", "ad-3"} for d in devs), 20, "removal")
        peers = {r["id"]: r["kind"] for r in agg1.peers_report()}
        assert peers == {"agg2": "aggregator", "gw1": "gateway"}
    finally:
        for d in devs:
            d.close()
        for s in (gw1, gw2, agg1, agg2):
            s.stop()


def test_effects_fire_once_across_aggregator_kill9(mosquitto_broker, procs, tmp_path):
    port = mosquitto_broker.port
    http = free_port()
    ledger = tmp_path / "ledger"
    env = {"LASP_AD_THRESHOLD": "60", "LASP_LEDGER": str(ledger)}
    agg = procs(aggregator_args(port, tmp_path / "agg.db", http), tmp_path / "agg.log", env)
    agg.start()
    gw = start_gateway(port, tmp_path / "gw.db")
    devs = [SimDevice("d%d" % i, port) for i in range(3)]
    rng = random.Random(3)
    stop = threading.Event()

    def count() -> None:
        while not stop.wait(0.003):
            d = rng.choice(devs)
            shown = sorted(d.ads())
            if shown:
                d.count(rng.choice(shown))

    counter = threading.Thread(target=count, daemon=True)
    api = "http://127.0.0.1:%d" % http
    try:
        wait_until(lambda: all(d.ads() for d in devs), 20, "ads")
        counter.start()
        for _ in range(4):
            threading.Event().wait(rng.uniform(0.2, 0.7))
            agg.kill9()
            agg.start()
        # every ad crosses the threshold, is billed and disappears from the devices
        wait_until(lambda: all(not d.ads() for d in devs), 60, "all ads billed and removed")
        stop.set()
        counter.join(5)
        want = oracle(devs)
        wait_until(
            lambda: http_json(api + "/api/variables/impressions")["value"] == want, 30, "totals"
        )
        effects = http_json(api + "/api/triggers")["effects"]
        assert effects == {"bill/ad-1": "done", "bill/ad-2": "done", "bill/ad-3": "done"}
        bills = http_json(api + "/api/variables/bills")["value"]
        assert sorted(map(tuple, bills)) == [("ad-1", 60), ("ad-2", 60), ("ad-3", 60)]
        lines = ledger.read_text().split()
        assert sorted(lines) == ["bill/ad-1", "bill/ad-2", "bill/ad-3"]
        runs = (tmp_path / "ledger.runs").read_text().split()
        # Exactly once, unless a kill landed inside a callback (then retried: the receiver
        # deduplicates by key, see docs/LASP.md); never more than that.
        assert all(1 <= runs.count(k) <= 2 for k in lines), runs
        # `lasp-edge query` reads the same API
        out = subprocess.run(
            [sys.executable, "-m", "lasp_edge.cli", "query", "impressions", "--url", api],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
        )
        assert out.returncode == 0, out.stderr
        import json

        assert json.loads(out.stdout) == want
        missing = subprocess.run(
            [sys.executable, "-m", "lasp_edge.cli", "query", "nope", "--url", api],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert missing.returncode == 1 and "not found" in missing.stderr
    finally:
        stop.set()
        for d in devs:
            d.close()
        gw.stop()


def test_http_api_shapes(mosquitto_broker, tmp_path, monkeypatch):
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000")
    port = mosquitto_broker.port
    agg = start_aggregator(port, tmp_path / "agg.db")
    gw = start_gateway(port, tmp_path / "gw.db")
    api = ApiServer("127.0.0.1:0", aggregator_routes(agg)).start()
    d = SimDevice("d1", port)
    try:
        wait_until(lambda: d.ads(), 20, "session")
        d.count("ad-1", 2)
        wait_until(lambda: agg.store.query("impressions") == {"ad-1": 2}, 20, "sync")
        allv = http_json(api.url + "/api/variables")
        assert allv["ads"]["value"] == ["ad-1", "ad-2", "ad-3"]
        assert allv["impressions"]["type"].startswith("source awmap")
        assert http_json(api.url + "/api/variables/bills") == {
            "name": "bills",
            "type": "source gset",
            "value": [],
        }
        wait_until(lambda: http_json(api.url + "/api/devices"), 20, "device rows")
        row = http_json(api.url + "/api/devices")[0]
        assert {"id", "gateway", "online", "epoch", "backlog", "rejected", "last_seen_ms"} <= set(
            row
        )
        gws = http_json(api.url + "/api/gateways")
        assert gws[0]["id"] == "gw" and "uplink" in gws[0]["report"]
        assert http_json(api.url + "/api/status")["replica"] == "agg"
        with urllib.request.urlopen(api.url + "/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        for name in ("received", "bytes_in", "deltas"):
            assert re.search(r'^lasp_%s_total\{role="aggregator"\} [1-9]' % name, text, re.M)
        assert 'lasp_device_rejected_total{device="d1",gateway="gw"} 0' in text
        assert re.search(r'^lasp_device_sync_lag_seconds\{device="d1",gateway="gw"\} ', text, re.M)
        try:
            http_json(api.url + "/api/variables/nope")
        except Exception as exc:  # urllib raises HTTPError for 404
            assert "404" in str(exc)
        else:
            raise AssertionError("expected a 404")
    finally:
        d.close()
        api.stop()
        gw.stop()
        agg.stop()
