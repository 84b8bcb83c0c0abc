"""Sliding windows in a store: per-device and global aggregates, pruning, late data."""

from __future__ import annotations

import pytest

from lasp_edge.store import LocalNetwork, SlidingWindow, Store


def devices(n: int, size: int = 3) -> tuple[list[Store], Store, LocalNetwork]:
    devs = [Store("d%d" % i) for i in range(n)]
    agg = Store("agg")
    net = LocalNetwork()
    for s in (*devs, agg):
        s.declare("temp", "window", size=size)
    for d in devs:
        net.connect(d, agg)
    return devs, agg, net


def test_per_device_and_global_averages():
    (a, b), agg, net = devices(2)
    for v in (20, 22):
        a.update("temp", "observe", 10, v)
    for v in (30, 31, 32):
        b.update("temp", "observe", 10, v)
    net.sync()
    w = agg.query("temp")[10]
    assert w["by_replica"]["d0"] == {"count": 2, "sum": 42, "min": 20, "max": 22, "mean": 21}
    assert w["by_replica"]["d1"]["mean"] == 31
    assert (w["count"], w["sum"], w["min"], w["max"]) == (5, 135, 20, 32)
    assert w["mean"] == 27  # sum of sums / sum of counts, not a mean of means
    assert agg.state("temp").aggregate(10, "d1")["max"] == 32


def test_only_the_last_w_windows_are_kept_and_late_data_is_dropped():
    (a,), agg, net = devices(1, size=3)
    for epoch in range(10):
        a.update("temp", "observe", epoch, epoch * 1.5)
    assert sorted(a.query("temp")) == [7, 8, 9]
    assert a.update("temp", "observe", 2, 99.0).is_bottom()  # below the floor: ignored
    net.sync()
    assert sorted(agg.query("temp")) == [7, 8, 9]
    assert agg.state("temp").floor() == 7


def test_an_offline_device_catches_up_and_old_windows_are_pruned_on_merge():
    (a, b), agg, net = devices(2, size=2)
    net.partition(b)
    a.update("temp", "observe", 1, 10)
    b.update("temp", "observe", 1, 20)
    a.update("temp", "observe", 5, 11)
    net.sync()
    b.update("temp", "observe", 2, 21)
    net.heal()
    net.sync()
    assert sorted(agg.query("temp")) == [5]  # epochs 1 and 2 arrive below the floor (4)
    assert agg.query("temp") == a.query("temp") == b.query("temp")
    assert 1 not in b.query("temp")  # b pruned its old windows after hearing of epoch 5


def test_observations_are_checked():
    w = SlidingWindow(size=2)
    with pytest.raises(TypeError):
        w.observe("r", 1, "hot")
    with pytest.raises(ValueError):
        w.observe("r", 1, float("nan"))
    with pytest.raises(ValueError):
        w.observe("r", -1, 1)
    with pytest.raises(ValueError):
        SlidingWindow(size=0)
    with pytest.raises(ValueError, match="malformed"):
        SlidingWindow.from_wire([2, 5, {1: {"r": [1, 1, 1, 1]}}])  # epoch below the floor
    with pytest.raises(ValueError, match="size"):
        SlidingWindow(2).join(SlidingWindow(3))
