"""The firmware examples on the MicroPython unix port against a real mosquitto.

The device side is the example's own ``main.py`` (what is flashed), configured through
``LASP_*`` environment variables; the gateway side is an in-test CPython ``Node`` on paho
(``fleet_helpers.Gateway``). The devices write an oracle file: ``R epoch v`` at boot (the
total recovered from flash), ``B epoch v`` / ``D epoch v`` before and after every flush,
``F epoch v ok`` at the end of a bounded run.

Exactness: a flush that was cut by ``kill -9`` may or may not have reached flash, so after a
kill the recovered total must be the last ``D`` or the ``B`` right after it, nothing else.
"Nothing counted twice" is checked on the gateway: the largest total it ever held for a
device during epoch ``e`` must not exceed what that device recovered at boot ``e + 1``
(otherwise the device would count those impressions again), and at the end the gateway
holds exactly the device's final total.
"""

import ast
import json
import os
import random
import time

import pytest
from fleet_helpers import (  # noqa: F401 (unix_bundle, unix_romfs, unix_romfs_app are fixtures)
    MOSQUITTO,
    ROOT,
    Broker,
    DeviceProc,
    Gateway,
    ServerProc,
    find_micropython,
    parse_oracle,
    reap,
    require,
    unix_bundle,
    unix_romfs,
    unix_romfs_app,
    wait_for,
)


@pytest.fixture(scope="module")
def micropython():
    return require(find_micropython(), "micropython (the unix port)")


@pytest.fixture(autouse=True)
def _reap():
    yield
    reap()  # devices and servers a failed test left running


@pytest.fixture
def broker(tmp_path):
    require(MOSQUITTO, "mosquitto")
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def gateway(broker):
    gw = Gateway(broker.port)
    assert gw.connected.wait(10), "the test gateway could not connect to mosquitto"
    yield gw
    gw.close()


def device_env(broker, dev_id, workdir, **kw):
    env = dict(
        BROKER_HOST="127.0.0.1",
        BROKER_PORT=broker.port,
        DEVICE_ID=dev_id,
        STORE_PATH="store",
        ORACLE=str(workdir / "oracle"),
        VIEW_MS=4,
        LOOP_MS=1,
        SYNC_PERIOD_MS=100,
        FLUSH_MS=100,
        FLUSH_EVERY=25,
        BACKOFF_CAP_MS=500,
        KEEPALIVE_S=5,
        DRAIN_MS=15000,
        MAX_RUN_MS=60000,
    )
    env.update(kw)
    return env


def final(oracle):
    fs = [x for x in oracle if x[0] == "F"]
    assert fs, "the device never finished: %s" % (oracle[-5:],)
    return fs[-1]


def test_devices_count_offline_and_converge_after_the_broker_returns(
    micropython, broker, gateway, tmp_path
):
    devs = []
    for i in (1, 2):
        wd = tmp_path / ("dev%d" % i)
        env = device_env(broker, "kiosk-%d" % i, wd, ITERATIONS=700)
        devs.append(DeviceProc(micropython, "ad_counter", wd, env).start())
    # both devices heard of the ads and synced something
    wait_for(
        lambda: all(gateway.total("kiosk-%d" % i) > 0 for i in (1, 2)),
        60,  # generous: the 2-core CI box may be busy; this bounds a hang, it times nothing
        what="first impressions at the gateway",
    )
    broker.stop()  # the whole network goes away; devices keep counting
    before = [len(parse_oracle(d.dir / "oracle")) for d in devs]
    wait_for(
        lambda: all(
            len(parse_oracle(d.dir / "oracle")) > b + 4 for d, b in zip(devs, before, strict=True)
        ),
        60,  # generous: the 2-core CI box may be busy; this bounds a hang, it times nothing
        what="devices flushing while offline",
    )
    offline_total = sum(gateway.total("kiosk-%d" % i) for i in (1, 2))
    broker.start()
    for d in devs:
        assert d.wait(90) == 0, d.output()[-3000:]
    counted = 0
    for i, d in enumerate(devs, 1):
        f = final(parse_oracle(d.dir / "oracle"))
        assert f[3] == 1, "device %d did not end synchronised:\n%s" % (i, d.output()[-2000:])
        assert "DONE counted=%d synced=True" % f[2] in d.output()
        counted += f[2]
        assert gateway.total("kiosk-%d" % i) == f[2]
    assert counted == 1400
    assert sum(gateway.per_ad().values()) == counted  # exactly the sum, fleet-wide
    assert offline_total < counted  # they did count while the broker was down


def check_kills(oracle, gateway, dev_id):
    """The exactness rules of the module docstring, over every boot of one device."""
    last_done, pending_b = 0, None
    boots = []
    for rec in oracle:
        kind, epoch, value = rec[0], rec[1], rec[2]
        if kind == "R":
            allowed = {last_done} | ({pending_b} if pending_b is not None else set())
            assert value in allowed, "boot %d recovered %d, allowed %s" % (epoch, value, allowed)
            boots.append((epoch, value))
            last_done, pending_b = value, None
        elif kind == "B":
            pending_b = value
        elif kind == "D":
            assert value == pending_b
            last_done, pending_b = value, None
    for (e, _), (_, recovered_next) in zip(boots, boots[1:], strict=False):
        held = gateway.max_total.get((dev_id, e), 0)
        assert held <= recovered_next, (
            "the gateway held %d from epoch %d but the device restarted at %d: those "
            "impressions would be counted twice" % (held, e, recovered_next)
        )
    return boots


def test_kill9_loses_nothing_flushed_and_counts_nothing_twice(
    micropython, broker, gateway, tmp_path
):
    seed = int(os.environ.get("LASP_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    wd = tmp_path / "dev"
    oracle = wd / "oracle"
    kills = 10
    for _k in range(kills):
        env = device_env(broker, "kiosk-k", wd, ITERATIONS=0, FLUSH_EVERY=7, VIEW_MS=2)
        d = DeviceProc(micropython, "ad_counter", wd, env).start()
        n0 = len(parse_oracle(oracle))
        wait_for(lambda n0=n0: len(parse_oracle(oracle)) > n0 + 3, 20, what="device flushing")
        time.sleep(rng.uniform(0, 0.4))
        d.kill9()
    env = device_env(broker, "kiosk-k", wd, ITERATIONS=150)
    d = DeviceProc(micropython, "ad_counter", wd, env).start()
    assert d.wait(60) == 0, d.output()[-3000:]
    records = parse_oracle(oracle)
    boots = check_kills(records, gateway, "kiosk-k")
    assert len(boots) == kills + 1 and [e for e, _ in boots] == list(range(1, kills + 2))
    f = final(records)
    assert f[3] == 1, d.output()[-2000:]
    assert gateway.total("kiosk-k") == f[2], "seed %d" % seed
    assert f[2] >= 150


# The device budget. Everything runs from ROMFS, executed in place as on a board
# (romfs_launch.py): the bundle and the app itself (`lasp-edge bundle --romfs --app
# firmware_examples/ad_counter`; the board compiles only the one-line main.py stub, not the
# ~3 KB app). Loaded as .mpy files instead, the 64-bit unix port copies ~74 KB of bytecode
# into the heap and the app needs 128K. From ROMFS the live heap after boot is ~55.5 KB
# (function, class and module objects, the qstr pools, device objects); the boot-only
# recovery code (lasp_device.recovery) is unloaded after start(). The high-water point is a
# flush: cbor.dump streams the snapshot to flash in 64-byte pieces, walking it without
# recursion and building each CRDT state in it only when it is reached
# (Node.snapshot(lazy=True)); sampled peak ~61 KB. HEAP is issue 4's budget, 64K; the floor
# today is 63K (62K runs out in the first flush; micropython/README.md, "RAM", says where
# the heap goes), so this test fails as soon as the app grows by more than ~1 KB. To look
# for the floor after a change: LASP_TEST_HEAP=62K pytest ... -k heap_budget_run. Beware the
# qstr cliff: the ad counter interns ~600 names and the 620th allocates a new ~7 KB pool.
HEAP = os.environ.get("LASP_TEST_HEAP", "64K")
# The goal for the peak live heap (gc.mem_alloc() after gc.collect()), recorded, not asserted:
# the assertion is that the app runs at all in HEAP, which fails the moment it stops fitting.
PEAK_GOAL = 32 * 1024


def test_heap_budget_run(micropython, broker, gateway, tmp_path, unix_romfs_app):  # noqa: F811
    """10,000 updates and 100 sync round trips in a ``HEAP`` heap, from the bundle as ROMFS.

    The figure is the peak of gc.mem_alloc() right after gc.collect(), sampled every 50
    loop passes and at the device's high-water point (snapshot encoded, before the write).
    """
    wd = tmp_path / "heap"
    env = device_env(
        broker,
        "kiosk-h",
        wd,
        ITERATIONS=10000,
        SYNC_EVERY=100,
        VIEW_MS=0,
        LOOP_MS=0,
        HEAP_PROBE=1,
        SYNC_PERIOD_MS=10000,
        FLUSH_MS=10000,
        FLUSH_EVERY=100,
        MAX_RUN_MS=90000,
    )
    image, stub = unix_romfs_app
    d = DeviceProc(micropython, "ad_counter", wd, env, heap=HEAP, romfs=image, script=stub)
    t0 = time.monotonic()
    d.start()
    assert d.wait(110) == 0, d.output()[-3000:]
    out = d.output()
    assert "DONE counted=10000 synced=True" in out, out[-2000:]
    sync = [ln for ln in out.splitlines() if ln.startswith("SYNC ")][-1]
    fields = dict(kv.split("=") for kv in sync.split()[1:])
    assert int(fields["syncs"]) == 100
    heap = dict(kv.split("=") for kv in out.split("HEAP ")[1].split()[:6])
    assert gateway.total("kiosk-h") == 10000
    # steady: after 10,000 updates the live heap is back near where it started
    assert int(heap["end"]) - int(heap["base"]) < 8192, heap
    # the heap the device saw is the capped one (the launcher must not have widened it)
    assert int(heap["total"]) <= int(HEAP[:-1]) * 1024, heap
    record = {
        "command": "python tests/device/romfs_launch.py bundle.romfs -X heapsize=%s "
        "tests/device/romfs_boot.py firmware_examples/ad_counter/main.py (bundle --target "
        "unix packed by bundle.romfs_image; LASP_ITERATIONS=10000 LASP_SYNC_EVERY=100 "
        "LASP_HEAP_PROBE=1)" % HEAP,
        "heapsize": HEAP,
        "code_from": "ROMFS image of the unix bundle, executed in place (as on a board)",
        "updates": 10000,
        "sync_cycles": int(fields["syncs"]),
        "peak_mem_alloc": int(heap["peak"]),
        "peak_goal": PEAK_GOAL,
        "peak_goal_met": int(heap["peak"]) < PEAK_GOAL,
        "code_and_boot": int(heap["base"]),
        "peak_data": int(heap["data"]),
        "end_live": int(heap["end"]),
        "heap_total": int(heap["total"]),
        "flushes": int(fields["flushes"]),
        "seconds": round(time.monotonic() - t0, 1),
        "port": "unix x86-64 (64-bit objects: about twice a 32-bit board)",
    }
    out_dir = ROOT / "build"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "device_heap.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))


# -- the server programs (lasp_edge.store.Store behind server_bridge.py) ---------------------


def test_ad_server_bills_each_ad_exactly_once(micropython, broker, tmp_path):
    state = tmp_path / "server"
    srv = ServerProc("ad_counter", broker, state, "--threshold", 60, "--ads", "ad-1,ad-2,ad-3")
    srv.start()
    wait_for(lambda: "serving ads" in srv.output(), 20, what="server start")
    devs = []
    for i in (1, 2):
        wd = tmp_path / ("dev%d" % i)
        env = device_env(broker, "ak-%d" % i, wd, ITERATIONS=10**6, VIEW_MS=6, MAX_RUN_MS=5000)
        devs.append(DeviceProc(micropython, "ad_counter", wd, env).start())
    try:
        for d in devs:
            assert d.wait(60) == 0, d.output()[-3000:]
    finally:
        srv.stop()
    counted = 0
    for d in devs:
        f = final(parse_oracle(d.dir / "oracle"))
        assert f[3] == 1, d.output()[-2000:]
        counted += f[2]
        assert "active ads: \n" in d.output()  # every ad was billed and taken down
    bills = [json.loads(x) for x in (state / "bills.jsonl").read_text().splitlines()]
    assert sorted(b["key"] for b in bills) == ["bill/ad-1", "bill/ad-2", "bill/ad-3"]
    assert all(b["impressions"] >= 60 for b in bills)
    last = [ln for ln in srv.output().splitlines() if ln.startswith("ads [] impressions")][-1]
    per_ad = ast.literal_eval(last.split("impressions ", 1)[1])  # the server's own dict repr
    assert sum(per_ad.values()) == counted, (per_ad, counted)
    # a restart re-registers the effects: nothing is billed again
    again = ServerProc("ad_counter", broker, state, "--threshold", 60, "--ads", "ad-1,ad-2,ad-3")
    again.start()
    wait_for(lambda: srv.output().count("serving ads") == 2, 20, what="server restart")
    again.stop()
    assert len((state / "bills.jsonl").read_text().splitlines()) == 3
    assert srv.output().count("BILL ") == 3


def test_leaderboard_server_folds_every_device_top_k(micropython, broker, tmp_path):
    from lasp_edge.crdts import TopK

    srv = ServerProc("leaderboard", broker, tmp_path / "server", "--k", 5).start()
    devs = []
    for i in (1, 2, 3):
        wd = tmp_path / ("dev%d" % i)
        env = device_env(
            broker,
            "lb-%d" % i,
            wd,
            K=5,
            PLAYERS="p%d,q%d,r%d" % (i, i, i),
            ITERATIONS=30,
            ROUND_MS=20,
            VIEW_MS=60,
        )
        devs.append(DeviceProc(micropython, "leaderboard", wd, env).start())
    try:
        for d in devs:
            assert d.wait(60) == 0, d.output()[-3000:]
        expect = TopK(5)
        for d in devs:
            out = d.output()
            assert "synced=True" in out, out[-2000:]
            local = ast.literal_eval(out.split("LOCAL ", 1)[1].splitlines()[0])
            expect.merge(TopK.from_wire(local))
        want = "GLOBAL %s" % (expect.value(),)

        def last_global():
            lines = [ln for ln in srv.output().splitlines() if ln.startswith("GLOBAL ")]
            return lines and lines[-1] == want

        wait_for(last_global, 10, what=want)
    finally:
        srv.stop()


def test_sensor_windows_server_averages_every_reading(micropython, broker, tmp_path):
    srv = ServerProc("sensor_windows", broker, tmp_path / "server", "--window-ms", 400).start()
    devs = []
    for i in (1, 2):
        wd = tmp_path / ("dev%d" % i)
        env = device_env(
            broker,
            "th-%d" % i,
            wd,
            WINDOW_MS=400,
            KEEP_WINDOWS=2,
            SAMPLE_MS=15,
            ITERATIONS=150,
            LOOP_MS=2,
        )
        devs.append(DeviceProc(micropython, "sensor_windows", wd, env).start())
    try:
        for d in devs:
            assert d.wait(60) == 0, d.output()[-3000:]
    finally:
        srv.stop()
    total = 0
    for d in devs:
        out = d.output()
        assert "DONE readings=150 synced=True" in out, out[-2000:]
        kept = ast.literal_eval(out.split("KEPT ", 1)[1].splitlines()[0])
        assert 1 <= len(kept) <= 2  # old windows were pruned once acknowledged
        total += int(out.split("TOTAL n=", 1)[1].split()[0])
    assert "TOTAL readings=%d" % total in srv.output()
    assert total == 300
