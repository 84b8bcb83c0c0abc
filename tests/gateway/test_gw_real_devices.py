"""Issue 5's three fault conditions with a fleet of real MicroPython devices.

Every device is ``firmware_examples/ad_counter/main.py``, the file flashed on a board,
running the .mpy bundle (``lasp-edge bundle --target unix``) on the MicroPython unix port
with its heap capped. The devices speak MQTT to a real mosquitto. Behind the broker run a
real ``lasp-edge gateway`` and a real ``lasp-edge aggregator`` (the ad-counter program of
gw_programs.py, its threshold out of reach so no ad is taken down mid-test). Each service is
a subprocess that can be ``kill -9``'d and restarted on the same SQLite file.

1. **The gateway is kill -9'd** a few times while the devices count and sync, and
   restarted each time.
2. **The aggregator is down for a while.** The devices reboot and count a second batch while
   it is dead. The gateway keeps acknowledging them and holds the backlog in bounded space.
   It forwards the backlog when the aggregator returns.
3. **An adversarial device**, a raw paho client logged in with a provisioned device
   identity, sends forged deltas and malformed or replayed messages. The broker enforces
   the ACL that ``lasp-edge provision`` wrote.

The oracle. Each device appends to an oracle file (``fleet_helpers.parse_oracle``). Its last
``F epoch total ok`` line holds everything it counted, across all its boots. ``ok`` is 1 when
the gateway acknowledged all of it before the device stopped. A device increments only its
own slot of ``impressions``, so the aggregator's fleet total must equal the sum of the
device totals exactly. A lost acknowledged delta makes the aggregator's total smaller, and
a delta counted twice makes it larger. The totals are read through the aggregator's HTTP
API, as a user would read them.

Every wait polls with a generous deadline (a busy 2-core box); nothing asserts timing. The
kill moments are random; a failure prints the seed, and ``LASP_SEED=<seed>`` replays them.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from fleet_helpers import (  # noqa: F401 (unix_bundle is a fixture)
    DeviceProc,
    find_micropython,
    parse_oracle,
    reap,
    require,
    unix_bundle,
)
from gw_helpers import (
    RawDevice,
    aggregator_args,
    free_port,
    gateway_args,
    http_json,
    wait_until,
)
from test_firmware_examples import device_env, final

from lasp_edge import AWMap, AWSet, GCounter, LWWRegister, cbor, wire
from lasp_edge.sync import messages as M
from lasp_gateway.provision import provision

NO_BILLING = {"LASP_AD_THRESHOLD": str(10**9)}  # the ads stay up: the tests count, not bill
WAIT = 60  # seconds: the bound on any one wait; it times nothing
# The devices load the .mpy files of the bundle, and the 64-bit unix port copies their
# bytecode into the heap (~74 KB; on a board it runs in place from flash, and the 64 KB
# budget is test_firmware_examples' business). A cap still makes a leak fail the test.
HEAP = "160K"


@pytest.fixture(scope="module")
def micropython():
    return require(find_micropython(), "micropython (the unix port)")


@pytest.fixture(autouse=True)
def _reap():
    yield
    reap()  # devices a failed test left running


# -- the parts ---------------------------------------------------------------------------


class Services:
    """The aggregator and the gateway as ``lasp-edge`` subprocesses, each with its HTTP API."""

    def __init__(self, procs: Any, port: int, tmp_path: Path, creds: dict[str, str] | None = None):
        agg_http, gw_http = free_port(), free_port()
        self.api = "http://127.0.0.1:%d" % agg_http  # the aggregator's
        self.gw_api = "http://127.0.0.1:%d" % gw_http
        agg_kw: dict[str, Any] = {}
        gw_kw: dict[str, Any] = {"max_message": 16384}  # so an oversized message is cheap
        if creds is not None:
            agg_kw = {"username": "agg", "password": creds["agg"]}
            gw_kw.update(username="gw", password=creds["gw"])
        self.agg = procs(
            aggregator_args(port, tmp_path / "agg.db", agg_http, **agg_kw),
            tmp_path / "agg.log",
            NO_BILLING,
        ).start()
        self.gw = procs(
            gateway_args(port, tmp_path / "gw.db", http="127.0.0.1:%d" % gw_http, **gw_kw),
            tmp_path / "gw.log",
        ).start()

    def impressions(self, api: str | None = None) -> dict[str, int]:
        return http_json((api or self.api) + "/api/variables/impressions")["value"]

    def total(self, api: str | None = None) -> int:
        return sum(self.impressions(api).values())

    def device_rows(self) -> dict[str, dict[str, Any]]:
        """The aggregator's ``/api/devices``: every device as the gateway last reported it."""
        return {r["id"]: r for r in http_json(self.api + "/api/devices")}

    def converged(self, want_total: int) -> bool:
        """The aggregator holds the oracle total and the gateway holds the same values."""
        agg = self.impressions()
        return sum(agg.values()) == want_total and self.impressions(self.gw_api) == agg


class Fleet:
    """Real ad_counter devices, one working directory (flash, oracle, log) per device id."""

    def __init__(self, micropython: str, bundle: str, broker: Any, tmp_path: Path) -> None:
        self.micropython = micropython
        self.bundle = bundle
        self.broker = broker
        self.tmp_path = tmp_path
        self.passwords: dict[str, str] = {}

    def start(self, ids: list[str], **env: Any) -> list[DeviceProc]:
        """Boot the devices (again, on the same flash store, if they ran before)."""
        devs = []
        for dev_id in ids:
            wd = self.tmp_path / dev_id
            settings = device_env(self.broker, dev_id, wd, **env)
            if dev_id in self.passwords:
                settings.update(BROKER_USER=dev_id, BROKER_PASSWORD=self.passwords[dev_id])
            devs.append(
                DeviceProc(self.micropython, "ad_counter", wd, settings, self.bundle, HEAP).start()
            )
        return devs

    def finish(self, devs: list[DeviceProc]) -> dict[str, int]:
        """Wait for bounded runs to end; every device must end fully acknowledged.

        Returns ``{device: total}`` from the oracle files: what each device ever counted.
        """
        totals = {}
        for d in devs:
            assert d.wait(3 * WAIT) == 0, d.output()[-3000:]
            f = final(parse_oracle(d.dir / "oracle"))
            assert f[3] == 1, "%s ended with unacknowledged data:\n%s" % (
                d.dir.name,
                d.output()[-2000:],
            )
            totals[d.dir.name] = f[2]
        return totals


def no_rejections(services: Services, ids: list[str]) -> bool:
    rows = services.device_rows()
    return all(i in rows and rows[i]["rejected"] == 0 for i in ids)


# -- 1. the gateway is kill -9'd ----------------------------------------------------------

KILLS = 5
COUNT_MS = 15000  # devices count this long, then drain: time for KILLS restarts, several x


def counting_over(devs: list[DeviceProc]) -> bool:
    """Some device reached COUNT_MS (the runtime prints it) and now only drains."""
    return any("max run time reached" in d.output() for d in devs)


def test_gateway_kill9_mid_run_loses_nothing_acknowledged(
    micropython,
    unix_bundle,  # noqa: F811
    mosquitto_broker,
    procs,
    tmp_path,
):
    seed = int(os.environ.get("LASP_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    print("LASP_SEED=%d" % seed)  # shown with a failure: replays the kill moments
    svc = Services(procs, mosquitto_broker.port, tmp_path)
    fleet = Fleet(micropython, unix_bundle, mosquitto_broker, tmp_path)
    ids = ["kiosk-%d" % i for i in range(1, 5)]
    # ITERATIONS=0: count until COUNT_MS, then drain (wait for every ack) and stop.
    devs = fleet.start(ids, ITERATIONS=0, MAX_RUN_MS=COUNT_MS, VIEW_MS=5, DRAIN_MS=WAIT * 1000)
    seen = wait_until(svc.total, WAIT, "first impressions at the aggregator")
    kills = 0
    while kills < KILLS and not counting_over(devs):
        # Kill at a random moment once the (restarted) gateway has moved new impressions.
        # The devices count all the time, so some delta is always in flight somewhere.
        wait_until(
            lambda s=seen: svc.total() > s or counting_over(devs),
            WAIT,
            "impressions flowing (restart %d)" % kills,
        )
        seen = svc.total()
        time.sleep(rng.uniform(0.1, 1.2))
        svc.gw.kill9()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.5))
        svc.gw.start()
    # Several restarts mid-run (the first come within seconds of a 15 s run).
    assert kills >= 2, "seed %d: the devices finished counting after %d kills" % (seed, kills)
    totals = fleet.finish(devs)
    want = sum(totals.values())
    assert want > seen, "seed %d: the devices stopped counting before the last restart" % seed
    wait_until(lambda: svc.converged(want), WAIT, "aggregator == oracle (seed %d)" % seed)
    # A kill once everything was acknowledged loses nothing either.
    values = svc.impressions()
    svc.gw.kill9()
    svc.gw.start()
    assert svc.impressions(svc.gw_api) == values
    assert svc.gw.starts == kills + 2
    wait_until(lambda: no_rejections(svc, ids), WAIT, "honest devices reported, none rejected")


# -- 2. the aggregator is down for a while -------------------------------------------------


def test_aggregator_down_gateway_stores_and_forwards(
    micropython,
    unix_bundle,  # noqa: F811
    mosquitto_broker,
    procs,
    tmp_path,
):
    svc = Services(procs, mosquitto_broker.port, tmp_path)
    fleet = Fleet(micropython, unix_bundle, mosquitto_broker, tmp_path)
    ids = ["kiosk-%d" % i for i in range(1, 4)]
    first = fleet.finish(fleet.start(ids, ITERATIONS=40, VIEW_MS=3))
    wait_until(lambda: svc.converged(sum(first.values())), WAIT, "first batch at the aggregator")
    svc.agg.kill9()
    # The aggregator is gone. The devices reboot (epoch 2, same flash) and count a second
    # batch; each one ends only once the gateway has acknowledged all of it.
    totals = fleet.finish(fleet.start(ids, ITERATIONS=300, VIEW_MS=3))
    want = sum(totals.values())
    assert want == sum(first.values()) + 3 * 300
    assert svc.total(svc.gw_api) == want  # the gateway holds it all, durably
    report = http_json(svc.gw_api + "/api/gateway")
    assert report["uplink"]["peers"]["agg"]["backlog"] > 0, report["uplink"]
    # Bounded by the state, not by the 900 impressions: joined segments, a few per variable.
    n_vars = len(http_json(svc.gw_api + "/api/variables"))
    assert report["db"]["segments_rows"] <= 3 * n_vars + 8, report["db"]
    svc.agg.start()
    wait_until(lambda: svc.converged(want), WAIT, "the aggregator caught up")
    wait_until(
        lambda: http_json(svc.gw_api + "/api/gateway")["uplink"]["peers"]["agg"]["backlog"] == 0,
        WAIT,
        "gateway backlog drained",
    )
    wait_until(lambda: no_rejections(svc, ids), WAIT, "honest devices reported, none rejected")


# -- 3. an adversarial device ---------------------------------------------------------------

EVIL = "evil"
EVIL_EPOCH = 2


def evil_delta(seq: int, var: str, state: Any, sender: str = EVIL, epoch: int = EVIL_EPOCH):
    """A complete, well-formed DELTA (one part) carrying ``state`` as ``var``."""
    return M.delta(sender, epoch, seq, seq, 0, 1, False, {var: wire.to_typed(state)})


def forged_messages(gw_epoch: int) -> dict[str, bytes]:
    """Everything the adversary tries on its own topic; the gateway must reject each once."""
    slot = AWMap("gcounter")
    slot.update("ad-1", "increment", "kiosk-1", 1000)  # another device's counter slot
    mixed = AWMap("gcounter")
    mixed.update("ad-2", "increment", EVIL, 1)
    mixed.update("ad-2", "increment", "kiosk-2", 1000)  # its own slot plus a forged one
    dots = AWSet()
    dots.add("agg", "free-ad")  # a dot of the aggregator's replica
    shown = AWSet()
    shown.add("agg", "ad-1")
    takedown = shown.remove("ad-1")  # removes the aggregator's dot: a competitor's ad
    status = LWWRegister()
    status.set("all quiet", 1 << 50, EVIL)  # overwrite the gateway's report
    theirs = GCounter()
    theirs.increment(EVIL, 5)
    wrong_type = GCounter()
    wrong_type.increment(EVIL, 1)
    return {
        "forged slot": evil_delta(2, "impressions", slot),
        "own and forged slots": evil_delta(2, "impressions", mixed),
        "another replica's dot": evil_delta(2, "ads", dots),
        "removal of another replica's add": evil_delta(2, "ads", takedown),
        "another device's variable": evil_delta(2, "temp@kiosk-1", theirs),
        "the gateway's status": evil_delta(2, "status@gw", status),
        "wrong CRDT type": evil_delta(2, "impressions", wrong_type),
        "malformed CBOR": b"\xff\x00\x9f garbage",
        "CBOR but no message": cbor.dumps({"hello": 1}),
        "unknown version": cbor.dumps([9, 3, EVIL, EVIL_EPOCH, 2, 2, 0, 1, False, {}]),
        "wrong field types": cbor.dumps([1, 3, EVIL, "two", 2, 2, 0, 1, False, {}]),
        # its own variable, well formed, but past the gateway's --max-message
        "oversized": M.delta(EVIL, EVIL_EPOCH, 2, 2, 0, 1, False, {"big@evil": [3, ["x" * 20000]]}),
        "replayed as kiosk-1": evil_delta(1, "impressions", slot, sender="kiosk-1", epoch=1),
        "stale epoch": evil_delta(3, "impressions", AWMap("gcounter"), epoch=EVIL_EPOCH - 1),
        "epoch past 2**53": evil_delta(3, "impressions", AWMap("gcounter"), epoch=1 << 60),
        "birth claiming unsent data": M.birth(EVIL, EVIL_EPOCH, {}, ["ads"], 10**9, False),
        "ack for unsent data": M.ack(EVIL, EVIL_EPOCH, gw_epoch, 10**9),
    }


def test_adversarial_device_is_rejected_and_counted(
    micropython,
    unix_bundle,  # noqa: F811
    configured_mosquitto,
    procs,
    tmp_path,
):
    ids = ["kiosk-%d" % i for i in range(1, 4)]
    creds = provision(
        ids + [EVIL],
        str(tmp_path / "passwd"),
        str(tmp_path / "acl"),
        gateways=["gw"],
        aggregators=["agg"],
        hasher="python",
    )
    broker = configured_mosquitto(
        [
            "listener {port} 127.0.0.1",
            "allow_anonymous false",
            "password_file %s" % (tmp_path / "passwd"),
            "acl_file %s" % (tmp_path / "acl"),
        ]
    )
    svc = Services(procs, broker.port, tmp_path, creds)
    fleet = Fleet(micropython, unix_bundle, broker, tmp_path)
    fleet.passwords = creds
    devs = fleet.start(ids, ITERATIONS=400, VIEW_MS=4)
    evil = RawDevice(broker.port, EVIL, creds[EVIL])
    try:
        evil.subscribe("le/d/%s" % EVIL)
        # An honest session first: its BIRTH, then one delta of its own slot (5 impressions
        # of ad-1), which the gateway accepts and acknowledges like any device's.
        evil.publish("le/u/%s" % EVIL, M.birth(EVIL, EVIL_EPOCH, {}, ["ads"], 0, True))
        gw_birth = wait_until(lambda: _received(evil, M.BIRTH), WAIT, "the gateway's BIRTH")
        assert gw_birth.sender == "gw"
        own = AWMap("gcounter")
        own.update("ad-1", "increment", EVIL, 5)
        evil.publish("le/u/%s" % EVIL, evil_delta(1, "impressions", own))
        wait_until(lambda: _received(evil, M.ACK, 1), WAIT, "the honest delta acknowledged")
        forged = forged_messages(gw_birth.epoch)
        for payload in forged.values():
            evil.publish("le/u/%s" % EVIL, payload)
        # On another device's topic the broker's ACL drops it: had it reached the gateway,
        # kiosk-1's session would have taken 1000 impressions in kiosk-1's name.
        slot = AWMap("gcounter")
        slot.update("ad-3", "increment", "kiosk-1", 1000)
        evil.publish("le/u/kiosk-1", evil_delta(90, "impressions", slot, "kiosk-1", 1 << 40))
        totals = fleet.finish(devs)  # the honest devices kept counting meanwhile
    finally:
        evil.close()
    totals[EVIL] = 5
    want = sum(totals.values())
    wait_until(lambda: svc.converged(want), WAIT, "aggregator == oracle")
    want_rejected = len(forged)

    def counted() -> bool:
        rows = svc.device_rows()
        return EVIL in rows and rows[EVIL]["rejected"] >= want_rejected

    wait_until(counted, WAIT, "every forged message counted against %s" % EVIL)
    rows = svc.device_rows()
    assert rows[EVIL]["rejected"] == want_rejected, rows[EVIL]  # each once, nothing else
    assert all(rows[i]["rejected"] == 0 for i in ids), rows
    # Nothing forged was merged anywhere up the chain.
    variables = http_json(svc.api + "/api/variables")
    assert sorted(variables["ads"]["value"]) == ["ad-1", "ad-2", "ad-3"]
    for name in ("temp@kiosk-1", "big@evil"):
        assert name not in variables or not variables[name]["value"], name
    assert svc.converged(want)  # still, after every report went up


def _received(evil: RawDevice, kind: int, recv_to: int = 0) -> Any:
    """The first message of ``kind`` from the gateway (an ACK: up to ``recv_to``), if any
    arrived yet; what comes before it is dropped (the gateway also sends ``ads``)."""
    while not evil.messages.empty():
        _topic, payload, _retained = evil.messages.get_nowait()
        m = M.decode(payload)  # the gateway's own messages are well formed
        if m.kind == kind and m.sender == "gw" and (kind != M.ACK or m.recv_to >= recv_to):
            return m
    return None
