"""``lasp-edge mosquitto-conf``: the recommended config runs on a real mosquitto as stated."""

from __future__ import annotations

import signal
import subprocess
import sys

from gw_helpers import REPO, free_port, wait_until
from mosquitto import Watcher, find_mosquitto, require_or_skip

from lasp_gateway.emulator.services import listening
from lasp_gateway.mosquitto_conf import CHANGED_DEFAULTS, recommended_conf


def test_every_changed_default_is_stated_and_set():
    text = recommended_conf()
    for option, default, value, _why in CHANGED_DEFAULTS:
        assert "# %s: mosquitto's default is %s;" % (option, default) in text
        assert "\n%s %s\n" % (option, value) in text
    assert "allow_anonymous true" in text
    secured = recommended_conf(password_file="/etc/mosquitto/pw", acl_file="/etc/mosquitto/acl")
    assert (
        "allow_anonymous false\npassword_file /etc/mosquitto/pw\nacl_file /etc/mosquitto/acl\n"
        in (secured)
    )


def test_cli_prints_the_same_text():
    out = subprocess.run(
        [sys.executable, "-m", "lasp_edge.cli", "mosquitto-conf", "--port", "1999"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out == recommended_conf(port=1999)


def test_mosquitto_accepts_it_and_persists_on_shutdown(tmp_path):
    binary = require_or_skip("mosquitto", find_mosquitto())
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    # ``user root``: running as root in CI, mosquitto would otherwise switch to a user that
    # cannot write the temporary persistence directory.
    text = recommended_conf(port=port, bind="127.0.0.1", persistence_dir=str(tmp_path) + "/")
    conf.write_text("user root\n" + text)
    log = open(tmp_path / "broker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_until(lambda: proc.poll() is not None or listening(port), 20, "mosquitto up")
        assert proc.poll() is None, (tmp_path / "broker.log").read_text()
        w = Watcher(port, "le/u/+")
        try:
            w.publish("le/u/d1", b"\x83\x01\x02\xa0")
            assert w.expect("le/u/d1")[1] == b"\x83\x01\x02\xa0"
        finally:
            w.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert (tmp_path / "mosquitto.db").exists(), "persistence true saves the broker state"
