"""The emulator's knowledge of each firmware example: app code, oracle facts, program views."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lasp_gateway.emulator.app_leaderboard import K, top_k
from lasp_gateway.emulator.apps import KNOWN, AppError, load_app
from lasp_gateway.emulator.oracle import Oracle, diff
from lasp_gateway.emulator.report import Report


class Always:
    def pressed(self, now):
        return True


def _device(spec, tmp_path, dev_id="d1"):
    spec.namespace()  # puts the device runtime (micropython/) on the path
    from lasp_device.device import Device

    dev = Device(dev_id, path=str(tmp_path / dev_id))
    spec.declare(dev)
    dev.start()
    return dev


@pytest.mark.parametrize("app", ["no_such_app", "firmware_examples", "micropython"])
def test_an_unknown_app_is_refused_with_the_list_of_known_ones(app):
    with pytest.raises(AppError) as exc:
        load_app(app)
    for name in KNOWN:
        assert "firmware_examples/%s" % name in str(exc.value)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_every_known_app_is_a_firmware_example_with_a_server_program(name):
    spec = load_app("firmware_examples/%s" % name)
    assert spec.name == name and (spec.path / "main.py").is_file()
    target, _, fn = spec.program_spec().rpartition(":")
    if target.endswith(".py"):
        from lasp_gateway.aggregator import load_program

        assert callable(load_program(spec.program_spec())) and fn == "program"
    assert set(spec.bottoms()) == set(spec.written)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 1000)), max_size=12),
        min_size=1,
        max_size=4,
    )
)
def test_the_leaderboard_oracle_agrees_with_topk_joined_over_devices(devices):
    """The oracle's plain recomputation is the CRDT's semantics (best per player, ranked)."""
    from lasp_edge.crdts.topk import TopK

    joined = TopK(K)
    for scores in devices:
        local = TopK(K)
        for player, score in scores:
            local.add(player, score)
        joined.merge(local)
    assert [list(e) for e in joined.value()] == top_k([s for d in devices for s in d])


def test_a_virtual_leaderboard_device_plays_the_apps_own_game(tmp_path):
    spec = load_app("leaderboard", view_ms=10)
    dev = _device(spec, tmp_path)
    facts = []
    game = spec.make_app(dev, Always(), facts.append)
    assert type(game).__module__ == "lasp_emulated_leaderboard"
    now = 0
    while len(facts) < 30:
        now += 5
        game.step(now)
    # every game was recorded, and the device's slot is the top-k of exactly those
    assert spec.device_view("leaderboard", dev.var("leaderboard")) == top_k(facts)
    assert spec.held("d1", {"leaderboard": dev.var("leaderboard")}) == game.version > 0
    assert sorted(spec.real_facts("d1", {"leaderboard": dev.var("leaderboard")})) == sorted(
        tuple(e) for e in top_k(facts)
    )


def test_a_real_leaderboard_devices_store_counts_only_its_own_slot(tmp_path):
    spec = load_app("leaderboard")
    mine = _device(spec, tmp_path, "d1")
    other = _device(spec, tmp_path, "d2")
    for dev in (mine, other):
        spec.make_app(dev, Always()).record("ann", 500 if dev is mine else 900)
    mine.var("leaderboard").merge(other.var("leaderboard"))  # it heard of d2's slot
    own = spec.own("d1", {"leaderboard": mine.var("leaderboard")})
    assert list(own["leaderboard"].keys()) == ["d1"]
    assert spec.real_facts("d1", own) == [("ann", 500)]


def test_a_sensor_that_never_heard_the_server_clock_takes_no_readings(tmp_path):
    """Ticks alone are no time base: no window 1, 2, ... from a device booted offline."""
    spec = load_app("sensor_windows", duration=4.0, view_ms=10)
    dev = _device(spec, tmp_path)
    facts = []
    sensor = spec.make_app(dev, Always(), facts.append)
    sensor.base_at = sensor.next_sample = 0
    for now in range(0, 5 * spec.window_ms, 10):
        assert sensor.step(now) == 0
    assert dev.value("tcount") == {}
    dev.node.update("window", "set", 1000)  # the first announcement
    sensor.announced({"window"})
    sensor.base_at = sensor.next_sample = 0  # as if heard at tick 0
    assert sum(sensor.step(now) for now in range(0, 100, 10)) == 10
    assert dev.value("tcount") == {1000: 10}


def test_the_oracle_drops_unflushed_facts_at_a_crash():
    spec = load_app("sensor_windows")
    oracle = Oracle(spec.bottoms())
    d = oracle.device("d1")
    for w, ck in ((7, 29000), (7, 29100), (8, 29200)):
        args = (w, "increment", "d1", ck)
        for fact in spec.facts_of("tsum", "update", args):
            d.fact(fact)
        d.update("tsum", "update", args)
        d.update("tcount", "update", (w, "increment", "d1", 1))
        if w == 7:
            d.flushed()
    d.crashed()  # the window-8 reading was not flushed
    program = spec.program_expected(oracle.expected(), oracle.facts())
    assert program["tsum"] == {"7": 58100} and program["tcount"] == {"7": 2}
    assert program["averages"] == {"7": [(29050 - 27315) / 100.0, 2]}
    assert oracle.facts(durable=False) == [(7, 29000, 1), (7, 29100, 1)]


def test_sensor_averages_come_from_the_servers_own_code():
    spec = load_app("sensor_windows")
    values = {"tsum": {"7": 58100, "8": 29315}, "tcount": {"7": 2, "8": 1}}
    view = spec.program_view(values.get)
    assert view["averages"] == {"7": [17.35, 2], "8": [20.0, 1]}
    facts = [(7, 29000, 1), (7, 29100, 1), (8, 29315, 1)]
    assert not diff(spec.program_expected({}, facts)["averages"], view["averages"])
    values["tcount"]["8"] = 2  # a reading counted twice: the averages show it
    assert diff(
        spec.program_expected({}, facts)["averages"], spec.program_view(values.get)["averages"]
    )


def _report(**values):
    return Report(
        app="leaderboard", devices=1, real=0, duration_s=1.0, seed=1, faults="", broken=None,
        broker="embedded", episodes=[], converged=True, converged_at_s=1.0,
        last_fault_healed_s=0.0, oracle_match=True, mismatches={}, replica_gaps=[],
        waiting_for=[], unsynced_real=[], values=values, updates=1, lost_at_crash=0,
        crashes=0, messages_dropped=0, messages_duplicated=0, messages_reordered=0,
        emulator_cpu_s=0.0, state_bytes=0, gateway_db_bytes=0, emulator_peak_rss_mb=0.0,
        gateway_usage=None,
    )  # fmt: skip


def test_the_table_shows_the_programs_view_apart_and_flags_what_differs():
    slots = {"d1": [10, [K, ["ann", 900]]]}
    table = _report(
        expected={"leaderboard": slots},
        expected_aggregator={"leaderboard": [["ann", 900]]},
        gateway={"leaderboard": slots},
        aggregator={"leaderboard": [["ann", 900], ["bob", 5]]},  # one entry too many
    ).table()
    lines = table.splitlines()
    assert any(line.startswith("leaderboard ") and "d1" in line and line.endswith("ok")
               for line in lines)  # fmt: skip
    assert any("leaderboard (program)" in line and "#1" in line and line.endswith(" ok")
               for line in lines)  # fmt: skip
    assert any("(extra)" in line and "bob" in line and "MISMATCH" in line for line in lines)
