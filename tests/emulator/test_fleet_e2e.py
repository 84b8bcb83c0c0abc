"""The project's end-to-end tests, written with its own emulator and pytest plugin.

Every fault of ``lasp-edge emulate`` runs at least once here against real mosquitto, with
real MicroPython devices (the .mpy bundle, heap capped) next to virtual ones, behind a
real ``lasp-edge gateway`` (SQLite) and ``lasp-edge aggregator``: message loss,
duplication, reordering and delay, devices offline, a partition, device crashes (kill -9
of a MicroPython process and an abrupt stop of a virtual device) with restarts from
flash, the gateway killed and restarted, the broker restarted, the aggregator
unreachable. Each run must converge to exactly the oracle. A deliberately broken variant
shows that the same check fails, loudly, when data is lost.

The fixtures ``fleet``, ``mqtt_broker``, ``gateway``, ``aggregator`` come from the
``lasp_edge.testing`` plugin (pytest11 entry point), as in a user's project; ``real_parts``
from conftest.py.
"""

from __future__ import annotations

import pytest


def _kinds(report):
    return {e["kind"] for e in report.episodes}


def test_network_faults_with_real_and_virtual_devices(real_parts, fleet, mqtt_broker):
    assert mqtt_broker.kind == "mosquitto"
    run = fleet(
        "firmware_examples/ad_counter",
        devices=10,
        real=2,
        faults=["loss:0.2", "dup:0.1", "reorder:0.1", "delay:30", "offline:0.2", "partition:0.3"],
        seed=11,
        duration=12,
        view_ms=300,
    )
    report = run.until_converged(timeout=60)
    assert run.oracle_matches()
    assert {"offline", "partition", "messages"} <= _kinds(report)
    assert report.messages_dropped and report.messages_duplicated and report.messages_reordered
    assert report.updates > 100 and not report.unsynced_real
    assert report.converge_after_heal_s is not None


def test_crashes_and_service_outages_with_real_devices(real_parts, fleet, mqtt_broker):
    """Also issue 5's scenario: MicroPython devices -> gateway (kill -9) -> aggregator."""
    run = fleet(
        "firmware_examples/ad_counter",
        devices=8,
        real=2,
        faults=["crash:2", "gateway-kill:1", "broker-restart:1", "aggregator-down:1", "loss:0.05"],
        seed=4,
        duration=15,
        view_ms=300,
    )
    report = run.until_converged(timeout=60)
    assert run.oracle_matches()
    assert {"crash", "gateway-kill", "broker-restart", "aggregator-down"} <= _kinds(report)
    assert mqtt_broker.restarts == 1
    emu = run.emulation
    crashed = {emu.devices[e["targets"][0]].kind for e in report.episodes if e["kind"] == "crash"}
    assert crashed == {"real", "virtual"}  # one kill -9, one abrupt in-process stop
    assert emu.gateway.proc.starts == 2  # killed once, restarted on its database
    assert all(r.boots >= 1 for r in emu.real)


def test_a_broken_device_makes_the_oracle_fail_loudly(fleet):
    """Flash writes that are lost at a crash: the fleet under-counts, and the check says so."""
    run = fleet(
        devices=6, faults=["crash:3"], seed=2, duration=8, view_ms=200, broken="lying-flash"
    )
    with pytest.raises(AssertionError, match="did not converge") as exc:
        run.until_converged(timeout=10)
    text = str(exc.value)
    assert "oracle: MISMATCH" in text and "lost" in text and "RESULT: FAILED" in text
    assert not run.oracle_matches()
