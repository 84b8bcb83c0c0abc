"""enforce_once: exactly once in memory, across restarts, and across kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from lasp_edge.store import DataflowError, Store

WORKER = os.path.join(os.path.dirname(__file__), "store_worker.py")


def test_runs_once_the_first_time_the_threshold_is_met():
    s = Store("server")
    s.declare("c", "gcounter")
    calls: list[int] = []
    eff = s.enforce_once("c", 3, calls.append)
    s.update("c", "increment", 2)
    assert calls == [] and eff.status == "armed"
    s.update("c", "increment")
    s.update("c", "increment")
    assert calls == [3] and eff.status == "done"
    assert s.effects() == {eff.key: "done"}


def test_registering_after_the_threshold_runs_at_once_and_keys_are_unique():
    s = Store("server")
    s.declare("S", "awset")
    s.update("S", "add", 1)
    calls: list[set[int]] = []
    s.enforce_once("S", {"cardinality": 1}, calls.append)
    assert calls == [{1}]
    with pytest.raises(ValueError, match="already registered"):
        s.enforce_once("S", {"cardinality": 1}, calls.append)
    with pytest.raises(ValueError, match="explicit key"):
        s.enforce_once("S", lambda v: True, calls.append)
    s.enforce_once("S", lambda v: 2 in v, calls.append, key="has-2")
    s.update("S", "add", 2)
    assert calls == [{1}, {1, 2}]


def test_exactly_once_under_concurrent_updates():
    s = Store("server")
    s.declare("c", "gcounter")
    calls: list[int] = []
    s.enforce_once("c", 100, calls.append)

    def work() -> None:
        for _ in range(50):
            s.update("c", "increment")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and calls[0] >= 100


def test_a_failing_callback_stays_triggered_and_can_be_retried():
    s = Store("server")
    s.declare("c", "gcounter")
    attempts: list[int] = []

    def flaky(v: int) -> None:
        attempts.append(v)
        if len(attempts) == 1:
            raise ConnectionError("billing API down")

    eff = s.enforce_once("c", 1, flaky)
    s.update("c", "increment")
    assert eff.status == "triggered" and isinstance(eff.error, ConnectionError)
    assert s.retry_effects() == 1
    assert eff.status == "done" and len(attempts) == 2
    assert s.retry_effects() == 0


def test_done_survives_a_restart(tmp_path):
    path = str(tmp_path / "s.db")
    s = Store("server", path)
    s.declare("c", "gcounter")
    calls: list[int] = []
    s.enforce_once("c", 2, calls.append, key="bill")
    s.update("c", "increment", 2)
    s.close()
    r = Store("server", path)
    r.declare("c", "gcounter")
    eff = r.enforce_once("c", 2, calls.append, key="bill")
    assert calls == [2] and eff.status == "done"
    r.close()


def run_worker(path: str, ledger: str, when: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, WORKER, "effect", path, ledger, when],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ledger_lines(ledger: str) -> list[str]:
    with open(ledger) as f:
        return f.read().split()


def restart(path: str, ledger: str, on_crash: str = "retry") -> tuple[Store, list[int], str]:
    from store_worker import ledger_append

    s = Store("w", path)
    s.declare("c", "gcounter")
    calls: list[int] = []

    def bill(v: int) -> None:
        calls.append(v)
        ledger_append(ledger, "bill")

    eff = s.enforce_once("c", 3, bill, key="bill", on_crash=on_crash)
    return s, calls, eff.status


def test_kill_9_after_the_effect_completed_never_repeats_it(tmp_path):
    path, ledger = str(tmp_path / "s.db"), str(tmp_path / "ledger")
    proc = subprocess.Popen(
        [sys.executable, WORKER, "effect", path, ledger, "after"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "done"
    proc.kill()  # SIGKILL while it sleeps
    proc.wait()
    s, calls, status = restart(path, ledger)
    assert (calls, status, ledger_lines(ledger)) == ([], "done", ["bill"])
    s.close()


def test_kill_9_between_trigger_and_callback_runs_it_once_on_restart(tmp_path):
    path, ledger = str(tmp_path / "s.db"), str(tmp_path / "ledger")
    res = run_worker(path, ledger, "before")
    assert res.returncode == -9 and not os.path.exists(ledger)
    s, calls, status = restart(path, ledger, on_crash="skip")  # not ambiguous: runs anyway
    assert (calls, status, ledger_lines(ledger)) == ([3], "done", ["bill"])
    s.close()
    s, calls, status = restart(path, ledger)
    assert (calls, status) == ([], "done")
    s.close()


def test_kill_9_during_the_callback_follows_on_crash(tmp_path):
    path, ledger = str(tmp_path / "s.db"), str(tmp_path / "ledger")
    assert run_worker(path, ledger, "during").returncode == -9
    assert ledger_lines(ledger) == ["bill"]  # the effect happened, its record did not

    s, calls, status = restart(path, ledger, on_crash="retry")
    # retry: run again; the ledger deduplicates by the effect key: still one bill
    assert (calls, status, ledger_lines(ledger)) == ([3], "done", ["bill"])
    s.close()


def test_kill_9_during_the_callback_with_skip_marks_it_unknown(tmp_path):
    path, ledger = str(tmp_path / "s.db"), str(tmp_path / "ledger")
    assert run_worker(path, ledger, "during").returncode == -9
    s, calls, status = restart(path, ledger, on_crash="skip")
    assert (calls, status) == ([], "unknown")
    assert s.effects() == {"bill": "unknown"}
    s.close()


def test_a_raising_predicate_threshold_neither_fires_nor_breaks_the_store():
    s = Store("server")
    s.declare("c", "gcounter")
    calls: list[int] = []
    eff = s.enforce_once("c", lambda v: 1 // (v - 1) > 0 if v else False, calls.append, key="k")
    with pytest.raises(DataflowError, match="threshold of effect 'k' raised ZeroDivisionError"):
        s.update("c", "increment")  # v == 1: the predicate divides by zero
    assert s.query("c") == 1 and eff.status == "armed"
    s.update("c", "increment")
    assert calls == [2] and eff.status == "done"
