"""The seed programs run and print what the seed describes."""

from __future__ import annotations

import re
import subprocess
import sys

from lasp_edge.examples import ad_counter, leaderboard, map_set, sensor_windows


def test_map_set(capsys):
    assert map_set.main([]) == 0
    out = capsys.readouterr().out
    assert "map(S1, x*2, S2)  ->  S2 = {2, 4, 6}" in out
    assert "remove 2 from S1  ->  S1 = {1, 3}, S2 = {2, 6}" in out
    assert "a: S1 = {1}, S2 = {2}" in out


def test_ad_counter_bills_each_ad_once(capsys):
    assert ad_counter.main(["--impressions", "30"]) == 0
    out = capsys.readouterr().out
    assert "ads with contracts: ['riot1', 'rovio1', 'rovio2']" in out
    bills = re.findall(r"BILL (\w+)", out)
    assert sorted(bills) == ["riot1", "rovio1", "rovio2"]
    final = out.split("final")[1]
    assert final.count("displayable=-") == 4  # billed ads removed everywhere
    assert "each ad billed exactly once: True" in out


def test_ad_counter_durable_server_restart_does_not_bill_twice(capsys, tmp_path):
    assert ad_counter.main(["--impressions", "20", "--db", str(tmp_path / "server.db")]) == 0
    out = capsys.readouterr().out
    assert "restarting the server" in out
    assert len(re.findall(r"BILL", out)) == 3
    assert out.index("BILL") < out.index("restarting")


def test_leaderboard(capsys):
    assert leaderboard.main([]) == 0
    out = capsys.readouterr().out
    assert "global top-10 (10 entries):" in out
    assert "every replica sees the same leaderboard: True" in out
    assert "entries of dev3 left: 0" in out


def test_sensor_windows(capsys):
    assert sensor_windows.main([]) == 0
    out = capsys.readouterr().out
    assert "kept windows (last 3)" in out and "3 older windows pruned" in out
    assert "all replicas agree: True" in out


def test_examples_run_as_modules():
    res = subprocess.run(
        [sys.executable, "-m", "lasp_edge.examples.map_set"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "S2 = {2, 4, 6}" in res.stdout
