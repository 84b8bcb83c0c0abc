"""The in-process pieces of virtual devices: transport states, delay line, oracle, app code."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lasp_gateway.emulator.apps import load_app
from lasp_gateway.emulator.faults import MessageFaults, parse_faults
from lasp_gateway.emulator.oracle import Oracle, diff
from lasp_gateway.emulator.virtual import DelayLine, VirtualTransport


class FakeLink:
    def __init__(self):
        self.sent = []

    def publish(self, topic, data):
        self.sent.append((topic, data))
        return True


class FakeMux:
    """What VirtualTransport reads of a Mux: connected, generation, link.publish."""

    def __init__(self):
        self.connected = False
        self.generation = 0
        self.link = FakeLink()

    def reconnect(self):
        self.connected = True
        self.generation += 1


def _transport(mux, faults="", now=lambda: 0.0):
    return VirtualTransport(mux, "le/u/d1", MessageFaults(parse_faults(faults), 1, "d1"),
                            DelayLine(), now)  # fmt: skip


def test_a_reconnection_always_shows_the_device_one_offline_poll():
    mux = FakeMux()
    t = _transport(mux)
    t.poll(0)
    assert not t.online and not t.publish("le/u/d1", b"x")
    mux.reconnect()
    t.poll(0)
    assert t.online
    mux.reconnect()  # the broker restarted between two polls: the device must see it
    assert not t.online
    t.poll(0)
    assert not t.online  # one poll offline: the Device says BIRTH again after it
    t.poll(0)
    assert t.online
    t.set_cut(True)
    t.poll(0)
    assert not t.online and not t.publish("le/u/d1", b"x")
    t.set_cut(False)
    t.poll(0)
    t.poll(0)
    assert t.online and t.publish("le/u/d1", b"y")
    assert mux.link.sent == [("le/u/d1", b"y")]


def test_lost_and_delayed_publishes_go_through_the_faults():
    mux = FakeMux()
    mux.reconnect()
    t = _transport(mux, "loss:0.5,delay:100")
    t.poll(0)
    t.poll(0)
    for i in range(200):
        assert t.publish("le/u/d1", b"%d" % i)  # a lost message still "went out"
    assert not mux.link.sent  # every kept one is delayed
    kept = len(t.outbox)
    assert 60 < kept < 140 and kept + t.faults.dropped == 200
    assert len(t.outbox.due(0.2)) == kept  # delay <= 1.5 x 100 ms


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 10, allow_nan=False), max_size=50))
def test_delay_line_releases_in_due_order_and_keeps_ties_fifo(dues):
    line = DelayLine()
    for i, d in enumerate(dues):
        line.put(d, None, i)
    out = [item for _, item in line.due(5.0)] + [item for _, item in line.due(10.0)]
    assert out == sorted(range(len(dues)), key=lambda i: (dues[i], i))


def test_oracle_rolls_a_crash_back_to_the_last_flush():
    spec = load_app("ad_counter")
    oracle = Oracle(spec.bottoms())
    d = oracle.device("d1")
    for _ in range(3):
        d.update("impressions", "update", ("ad-1", "increment", "d1"))
    d.flushed()
    d.update("impressions", "update", ("ad-2", "increment", "d1"))
    d.update("ads", "add", ("d1", "x"))  # not a variable devices write: ignored
    d.crashed()
    assert (d.made_n, d.durable_n, d.lost_at_crash) == (3, 3, 1)
    oracle.device("d2").update("impressions", "update", ("ad-1", "increment", "d2"))
    assert oracle.expected()["impressions"].value() == {"ad-1": 3}  # d2 never flushed
    assert diff({"ad-1": 4}, {"ad-1": 3}) == ["ad-1: expected 4, got 3 (lost 1)"]


def test_virtual_devices_run_the_apps_own_main_py(tmp_path):
    """App comes from firmware_examples/ad_counter/main.py, minus its main() call."""
    spec = load_app("firmware_examples/ad_counter")
    spec.namespace()  # puts the device runtime (micropython/) on the path
    from lasp_device.device import Device

    dev = Device("d1", path=str(tmp_path / "store"))
    spec.declare(dev)
    dev.start()
    dev.node.update("ads", "add", "gw", "ad-7")

    class Always:
        def pressed(self, now):
            return True

    app = spec.make_app(dev, Always())
    assert type(app).__module__ == "lasp_emulated_ad_counter"
    assert sum(app.step(0) for _ in range(5)) == 5
    assert dev.value("impressions") == {"ad-7": 5} and app.counted == 5
