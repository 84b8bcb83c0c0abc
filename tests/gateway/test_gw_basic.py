"""Devices -> broker -> gateway -> aggregator, in one process, on a real broker.

The happy path and the wiring: deltas flow up and are acknowledged, the aggregator's
program sees the exact totals, its billing effect removes ads, and the removal reaches the
devices that declared interest in ``ads``. Run once on mosquitto and once on the embedded
amqtt broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gw_helpers import http_json, wait_until
from gw_programs import ad_counter
from simdevice import SimDevice, oracle

from lasp_gateway.aggregator import Aggregator, AggregatorConfig
from lasp_gateway.gateway import Gateway, GatewayConfig
from lasp_gateway.http_api import ApiServer, aggregator_routes
from lasp_gateway.settings import BrokerSettings


def start_gateway(port: int, db: Path, **kw: Any) -> Gateway:
    cfg = GatewayConfig(
        db=str(db),
        devices=kw.pop("devices", None) or BrokerSettings(port=port),
        forward_period_ms=kw.pop("forward_period_ms", 100),
        ack_timeout_ms=500,
        max_timeout_ms=2000,
        status_period_ms=kw.pop("status_period_ms", 200),
        synchronous="normal",
        **kw,
    )
    return Gateway(cfg).start()  # type: ignore[return-value]


def start_aggregator(port: int, db: Path, **kw: Any) -> Aggregator:
    cfg = AggregatorConfig(
        db=str(db),
        broker=kw.pop("broker", None) or BrokerSettings(port=port),
        program=kw.pop("program", ad_counter),
        trusted=kw.pop("trusted", True),
        sync_period_ms=100,
        ack_timeout_ms=500,
        max_timeout_ms=2000,
        synchronous="normal",
        **kw,
    )
    return Aggregator(cfg).start()  # type: ignore[return-value]


def run_fleet(port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASP_AD_THRESHOLD", "30")
    agg = start_aggregator(port, tmp_path / "agg.db")
    gw = start_gateway(port, tmp_path / "gw.db")
    api = ApiServer("127.0.0.1:0", aggregator_routes(agg)).start()
    devs = [SimDevice("d%d" % i, port) for i in range(3)]
    try:
        wait_until(lambda: all(d.ads() == {"ad-1", "ad-2", "ad-3"} for d in devs), 20, "ads")
        for round_ in range(20):
            for i, d in enumerate(devs):
                for ad in sorted(d.ads()):
                    if (round_ + i) % 2 == 0 or ad == "ad-3":
                        d.count(ad)
        want = oracle(devs)
        wait_until(lambda: agg.store.query("impressions") == want, 30, "aggregator totals")
        wait_until(lambda: all(d.synced() for d in devs), 20, "devices acknowledged")
        # the effect billed every ad that reached 30, once, and removed it everywhere
        billed = {ad for ad, n in want.items() if n >= 30}
        assert billed, want
        wait_until(lambda: {b[0] for b in agg.store.query("bills")} == billed, 20, "bills")
        wait_until(lambda: all(not (d.ads() & billed) for d in devs), 20, "removal to devices")
        assert agg.store.effects() == {"bill/" + ad: "done" for ad in billed} | {
            "bill/" + ad: "armed" for ad in set(want) - billed
        }
        # the HTTP API shows the same
        body = http_json(api.url + "/api/variables/impressions")
        assert body["value"] == want
        wait_until(lambda: len(http_json(api.url + "/api/devices")) == 3, 20, "device reports")
        rows = http_json(api.url + "/api/devices")
        assert {r["id"] for r in rows} == {"d0", "d1", "d2"}
        assert all(r["gateway"] == "gw" and r["rejected"] == 0 for r in rows)
        gws = http_json(api.url + "/api/gateways")
        assert [g["id"] for g in gws] == ["gw"] and gws[0]["online"]
        trig = http_json(api.url + "/api/triggers")
        assert trig["trusted"] and trig["effects"]["bill/" + sorted(billed)[0]] == "done"
        assert gw.node.vars["impressions"].value() == want
    finally:
        for d in devs:
            d.close()
        api.stop()
        gw.stop()
        agg.stop()


def test_fleet_on_mosquitto(mosquitto_broker, tmp_path, monkeypatch):
    run_fleet(mosquitto_broker.port, tmp_path, monkeypatch)


def test_fleet_on_embedded_amqtt_broker(amqtt_broker, tmp_path, monkeypatch):
    run_fleet(amqtt_broker.port, tmp_path, monkeypatch)
