"""TLS to the broker: the settings reach paho, and a real TLS listener works end to end."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from gw_helpers import wait_until
from simdevice import SimDevice, oracle
from test_gw_basic import start_aggregator, start_gateway

from lasp_edge.cli import build_parser
from lasp_gateway.cli import broker_settings
from lasp_gateway.mqtt_link import MqttLink, configure_client
from lasp_gateway.settings import BrokerSettings, parse_hostport


class Recorder:
    """Stands in for a paho client: records what configure_client asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        return lambda *a, **kw: self.calls.append((name, a, kw))


def test_tls_and_credentials_reach_paho():
    s = BrokerSettings(
        "broker.lan",
        8883,
        username="gw",
        password="pw",
        tls_ca="/ca.pem",
        tls_cert="/c.pem",
        tls_key="/k.pem",
        tls_insecure=True,
    )
    rec = Recorder()
    configure_client(rec, s)
    assert ("username_pw_set", ("gw", "pw"), {}) in rec.calls
    tls = [c for c in rec.calls if c[0] == "tls_set"]
    assert tls and tls[0][2]["ca_certs"] == "/ca.pem" and tls[0][2]["certfile"] == "/c.pem"
    assert tls[0][2]["keyfile"] == "/k.pem" and tls[0][2]["cert_reqs"] == ssl.CERT_REQUIRED
    assert ("tls_insecure_set", (True,), {}) in rec.calls
    rec2 = Recorder()
    configure_client(rec2, BrokerSettings())
    assert rec2.calls == []


def test_cli_options_become_settings():
    args = build_parser().parse_args(
        [
            "gateway",
            "--broker",
            "pi.local:8883",
            "--tls-ca",
            "ca.pem",
            "--username",
            "gw",
            "--password",
            "x",
            "--upstream",
            "[::1]:1884",
            "--upstream-username",
            "gw2",
        ]
    )
    dev = broker_settings(args.broker, args)
    assert (dev.host, dev.port, dev.tls_ca, dev.username, dev.uses_tls) == (
        "pi.local",
        8883,
        "ca.pem",
        "gw",
        True,
    )
    up = broker_settings(args.upstream, args, "upstream-")
    assert (up.host, up.port, up.username, up.uses_tls) == ("::1", 1884, "gw2", False)
    assert parse_hostport("h") == ("h", 1883)
    with pytest.raises(ValueError):
        parse_hostport("h:99999")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> Path:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("certs")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)

    run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=lasp-test-ca",
    )  # fmt: skip
    run(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
    )  # fmt: skip
    return d


def test_gateway_over_a_real_tls_listener(configured_mosquitto, tls_files, tmp_path, monkeypatch):
    """Gateway and aggregator speak TLS to the broker; devices use its plain listener."""
    monkeypatch.setenv("LASP_AD_THRESHOLD", "1000000")
    from gw_helpers import free_port

    tls_port = free_port()
    broker = configured_mosquitto(
        [
            "listener {port} 127.0.0.1",
            "allow_anonymous true",
            "listener %d 127.0.0.1" % tls_port,
            "allow_anonymous true",
            "cafile %s" % (tls_files / "ca.pem"),
            "certfile %s" % (tls_files / "server.pem"),
            "keyfile %s" % (tls_files / "server.key"),
        ]
    )
    wait_until(lambda: "Opening ipv4 listen socket on port %d" % tls_port in broker.log(), 10)
    tls = BrokerSettings(port=tls_port, tls_ca=str(tls_files / "ca.pem"))
    # a client that does not trust the CA is refused by the handshake
    untrusting = MqttLink("untrusting", BrokerSettings(port=tls_port, tls=True), [], print)
    untrusting.start()
    agg = start_aggregator(broker.port, tmp_path / "agg.db", broker=tls)
    gw = start_gateway(broker.port, tmp_path / "gw.db", devices=tls)
    devs = [SimDevice("d%d" % i, broker.port) for i in range(2)]
    try:
        assert gw.device_link.wait_connected(10) and gw.uplink.wait_connected(10)
        assert agg.link.wait_connected(10)
        wait_until(lambda: all(d.ads() for d in devs), 20, "ads over TLS")
        for d in devs:
            d.count("ad-2", 3)
        want = oracle(devs)
        wait_until(lambda: agg.store.query("impressions") == want, 20, "totals over TLS")
        assert not untrusting.connected
    finally:
        untrusting.stop()
        for d in devs:
            d.close()
        gw.stop()
        agg.stop()
