"""``lasp-edge provision``: a real mosquitto accepts the files and enforces the ACL."""

from __future__ import annotations

import queue
import shutil
import subprocess
from pathlib import Path

import pytest
from gw_helpers import wait_until
from simdevice import SimDevice, oracle
from test_gw_basic import start_aggregator, start_gateway

from lasp_gateway.mqtt_link import MqttLink
from lasp_gateway.provision import acl_text, check_password, hash_password, provision
from lasp_gateway.settings import BrokerSettings


def test_hash_matches_mosquitto_passwd_format(tmp_path):
    entry = hash_password("secret", salt=bytes(range(12)))
    assert entry.startswith("$7$101$AAECAwQFBgcICQoL$")
    assert check_password(entry, "secret") and not check_password(entry, "nope")
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed")
    pw = tmp_path / "pw"
    pw.touch()
    subprocess.run([tool, "-b", str(pw), "alice", "s3cret"], check=True, timeout=30)
    user, _, theirs = pw.read_text().strip().partition(":")
    assert user == "alice" and check_password(theirs, "s3cret")


def test_acl_text_names_only_own_topics():
    text = acl_text(["d1"], ["gw"], ["agg"])
    assert "pattern write le/u/%u" in text and "pattern read le/d/%u" in text
    assert "topic write le/g/+/gw" in text and "topic read le/g/agg/+" in text
    assert "le/#" not in text


def broker_with(configured_mosquitto, d: Path, hasher: str):
    chosen = provision(
        ["d1", "d2"],
        str(d / "passwd"),
        str(d / "acl"),
        gateways=["gw"],
        aggregators=["agg"],
        hasher=hasher,
    )
    broker = configured_mosquitto(
        [
            "listener {port} 127.0.0.1",
            "allow_anonymous false",
            "password_file %s" % (d / "passwd"),
            "acl_file %s" % (d / "acl"),
        ]
    )
    return broker, chosen


class Client:
    """An authenticated test client: queues what it receives."""

    def __init__(self, port: int, user: str, password: str, topics: list[str]) -> None:
        self.got: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self.link = MqttLink(
            "t-%s" % user,
            BrokerSettings(port=port, username=user, password=password),
            topics,
            lambda t, p: self.got.put((t, p)),
        ).start()

    def until(self, topic: str, payload: bytes, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        """Everything received up to and including ``(topic, payload)``."""
        seen: list[tuple[str, bytes]] = []
        wait_until(lambda: self._drain(seen) and (topic, payload) in seen, timeout, topic)
        return seen

    def _drain(self, seen: list[tuple[str, bytes]]) -> bool:
        while True:
            try:
                seen.append(self.got.get_nowait())
            except queue.Empty:
                return True

    def close(self) -> None:
        self.link.stop()


@pytest.mark.parametrize("hasher", ["python", "mosquitto_passwd"])
def test_mosquitto_enforces_the_provisioned_acl(configured_mosquitto, tmp_path, hasher):
    if hasher == "mosquitto_passwd" and shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed")
    broker, pw = broker_with(configured_mosquitto, tmp_path, hasher)
    port = broker.port
    bad = MqttLink("bad", BrokerSettings(port=port, username="d1", password="wrong"), [], print)
    bad.start()
    wait_until(lambda: bad.refused is not None, 10, "wrong password refused")
    assert not bad.connected
    bad.stop()
    gw = Client(port, "gw", pw["gw"], ["le/u/+"])
    d1 = Client(port, "d1", pw["d1"], ["le/d/d1", "le/d/d2", "le/u/+"])
    d2 = Client(port, "d2", pw["d2"], ["le/d/d2"])
    try:
        for c in (gw, d1, d2):
            assert c.link.wait_connected(10), c.link.refused
        # d1 may publish its own uplink, not d2's
        d1.link.publish("le/u/d2", b"forged")
        d1.link.publish("le/d/d2", b"forged-down")
        d1.link.publish("le/g/agg/gw", b"forged-server")
        d1.link.publish("le/u/d1", b"marker")
        seen = gw.until("le/u/d1", b"marker")
        assert ("le/u/d2", b"forged") not in seen
        # d1 may read its own downlink, not d2's (nor other devices' uplinks)
        gw.link.publish("le/d/d2", b"secret")
        gw.link.publish("le/d/d1", b"marker")
        seen = d1.until("le/d/d1", b"marker")
        assert ("le/d/d2", b"secret") not in seen
        assert not any(t.startswith("le/u/") for t, _ in seen)
        seen2 = d2.until("le/d/d2", b"secret")
        assert ("le/d/d2", b"forged-down") not in seen2
    finally:
        for c in (gw, d1, d2):
            c.close()


def test_services_run_under_the_acl(configured_mosquitto, tmp_path, monkeypatch):
    """Gateway, aggregator and devices, each with its own user: everything still flows."""
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000000")
    broker, pw = broker_with(configured_mosquitto, tmp_path, "python")
    port = broker.port
    agg = start_aggregator(
        port,
        tmp_path / "agg.db",
        broker=BrokerSettings(port=port, username="agg", password=pw["agg"]),
    )
    gw = start_gateway(
        port,
        tmp_path / "gw.db",
        devices=BrokerSettings(port=port, username="gw", password=pw["gw"]),
    )
    devs = [SimDevice(d, port, username=d, password=pw[d]) for d in ("d1", "d2")]
    try:
        wait_until(lambda: all(d.ads() for d in devs), 20, "ads reach devices")
        for d in devs:
            d.count("ad-1", 2)
        want = oracle(devs)
        wait_until(lambda: agg.store.query("impressions") == want, 20, "totals")
    finally:
        for d in devs:
            d.close()
        gw.stop()
        agg.stop()
