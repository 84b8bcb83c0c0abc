"""``lasp-edge emulate`` as a user runs it: exit status, table, JSON report, PNG plot."""

from __future__ import annotations

import json
import subprocess
import sys


def _emulate(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lasp_edge.cli", "emulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_emulate_writes_report_and_plot_and_exits_0(tmp_path):
    report, plot = tmp_path / "out.json", tmp_path / "out.png"
    r = _emulate(
        "--app", "firmware_examples/ad_counter", "--devices", "4", "--duration", "5",
        "--seed", "3", "--faults", "loss:0.2,dup:0.1,partition:0.5", "--view-ms", "300",
        "--report", str(report), "--plot", str(plot),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RESULT: OK" in r.stdout and "impressions" in r.stdout
    data = json.loads(report.read_text())
    assert data["ok"] and data["converged"] and data["oracle_match"]
    assert data["faults"] == "loss:0.2,dup:0.1,partition:0.5" and data["seed"] == 3
    assert data["values"]["aggregator"]["impressions"] == data["values"]["expected"]["impressions"]
    assert sum(data["values"]["expected"]["impressions"].values()) == data["updates"] > 0
    assert any(e["kind"] == "partition" for e in data["episodes"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_emulate_exits_1_when_the_oracle_does_not_match(tmp_path):
    report = tmp_path / "out.json"
    r = _emulate(
        "--devices", "4", "--duration", "6", "--seed", "2", "--faults", "crash:3",
        "--view-ms", "200", "--broken", "lying-flash", "--drain-timeout", "8",
        "--report", str(report),
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "RESULT: FAILED" in r.stdout
    assert not json.loads(report.read_text())["oracle_match"]


def test_emulate_rejects_an_unknown_fault_before_starting_anything():
    r = _emulate("--faults", "los:0.2", timeout=60)
    assert r.returncode == 2
    assert "unknown fault 'los'" in r.stderr


def test_emulate_names_the_apps_it_knows_when_given_another():
    r = _emulate("--app", "firmware_examples/no_such_app", timeout=60)
    assert r.returncode == 2
    for app in ("ad_counter", "leaderboard", "sensor_windows"):
        assert "firmware_examples/%s" % app in r.stderr
