"""The leaderboard and the sensor windows as fleets: real and virtual devices, faults, oracle.

Short runs (a few seconds of play, four devices of which one is a MicroPython process
running the .mpy bundle) against real mosquitto, a real ``lasp-edge gateway`` and
``lasp-edge aggregator`` running the example's own ``server.py`` program. Each must end
with the gateway holding exactly what the devices flushed and the aggregator showing
exactly what the oracle recomputes from every score or reading. Together they take
about 40 s on a busy two-core machine.
"""

from __future__ import annotations

import pytest


def _kinds(report):
    return {e["kind"] for e in report.episodes}


@pytest.mark.parametrize("lasp_app", ["firmware_examples/leaderboard"])
def test_leaderboard_global_top_k_is_the_top_k_of_every_score(real_parts, fleet, aggregator):
    with pytest.raises(ValueError, match="lasp_app"):  # the aggregator serves another app
        fleet("firmware_examples/sensor_windows")
    run = fleet(
        "firmware_examples/leaderboard",
        devices=4,
        real=1,
        faults=["loss:0.1", "dup:0.1", "partition:0.5", "crash:2"],
        seed=5,
        duration=7,
        view_ms=300,
    )
    report = run.until_converged(timeout=60)
    assert run.oracle_matches()
    assert {"partition", "crash", "messages"} <= _kinds(report)
    top = report.values["aggregator"]["leaderboard"]
    assert top == report.values["expected_aggregator"]["leaderboard"] and len(top) == 5
    assert set(report.values["gateway"]["leaderboard"]) == {"mp01", "v0001", "v0002", "v0003"}
    assert not report.unsynced_real and not report.replica_gaps


def test_sensor_windows_averages_equal_a_recomputation_from_every_reading(real_parts, fleet):
    run = fleet(
        "firmware_examples/sensor_windows",
        devices=4,
        real=1,
        faults=["reorder:0.1", "delay:30", "offline:0.5", "gateway-kill:1", "crash:1"],
        seed=6,
        duration=8,
        view_ms=250,
    )
    report = run.until_converged(timeout=60)
    assert run.oracle_matches()
    assert {"offline", "gateway-kill", "crash"} <= _kinds(report)
    program = report.values["expected_aggregator"]
    assert report.values["aggregator"]["averages"] == program["averages"]
    assert len(program["averages"]) >= 3  # several windows: virtual devices pruned some
    assert sum(program["tcount"].values()) > 40 and not report.unsynced_real
