"""Inflationary reads (blocking, async, strict, timeouts) and streams."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lasp_edge.crdts import AWSet, GCounter
from lasp_edge.store import Store


def counter_store() -> Store:
    s = Store("me")
    s.declare("c", "gcounter")
    s.declare("S", "awset")
    return s


def test_read_returns_at_once_when_the_threshold_is_met():
    s = counter_store()
    assert s.read("c") == 0  # no threshold: bottom is always reached
    s.update("c", "increment", 3)
    assert s.read("c", 3) == 3
    assert s.read("c", 2, strict=True) == 3
    with pytest.raises(TimeoutError, match="timed out"):
        s.read("c", 3, strict=True, timeout=0.01)
    with pytest.raises(TimeoutError):
        s.read("S", strict=True, timeout=0.01)  # strictly above bottom: not yet
    s.update("S", "add", "x")
    assert s.read("S", {"cardinality": 1}) == {"x"}
    with pytest.raises(TimeoutError):
        s.read("S", {"cardinality": 1}, strict=True, timeout=0.01)


def test_state_thresholds_use_the_lattice_order():
    s = counter_store()
    s.update("S", "add", "x")
    t = s.state("S")
    assert s.read("S", t) == {"x"}
    with pytest.raises(TimeoutError):
        s.read("S", t, strict=True, timeout=0.01)
    s.update("S", "remove", "x")  # a removal is an inflation of the AWSet state
    assert s.read("S", t, strict=True) == set()
    other = GCounter()
    other.increment("elsewhere", 1)
    with pytest.raises(TimeoutError):  # lattice order: slot "elsewhere" is not reached
        s.read("c", other, timeout=0.01)


def test_threshold_misuse_is_a_clear_error():
    s = counter_store()
    with pytest.raises(ValueError, match="int threshold applies to counters"):
        s.read("S", 3)
    with pytest.raises(ValueError, match="cardinality"):
        s.read("c", {"cardinality": 1})
    with pytest.raises(TypeError, match="threshold is a awset state"):
        s.read("c", AWSet())
    with pytest.raises(ValueError, match="strict"):
        s.read("c", lambda v: v > 1, strict=True)
    with pytest.raises(TypeError, match="threshold must be"):
        s.read("c", 2.5)


def test_read_blocks_until_another_thread_updates():
    s = counter_store()
    got: list[int] = []
    entered = threading.Event()

    def reader() -> None:
        entered.set()
        got.append(s.read("c", 5, timeout=10))

    th = threading.Thread(target=reader)
    th.start()
    entered.wait()
    for _ in range(5):
        s.update("c", "increment")
    th.join(10)
    assert got == [5]


def test_read_is_woken_by_bind_from_another_thread():
    a, b = counter_store(), Store("b")
    b.declare("S", "awset")
    result: list[set[str]] = []
    th = threading.Thread(target=lambda: result.append(a.read("S", {"cardinality": 2})))
    th.start()
    b.update("S", "add", "p")
    d = b.update("S", "add", "q")
    a.bind("S", b.state("S"))
    a.bind("S", d)
    th.join(10)
    assert result == [{"p", "q"}]


def test_many_threads_read_while_many_threads_update():
    s = counter_store()
    results: list[int] = []
    lock = threading.Lock()

    def reader(n: int) -> None:
        v = s.read("c", n, timeout=30)
        with lock:
            results.append(v >= n)

    def writer() -> None:
        for _ in range(50):
            s.update("c", "increment")

    readers = [threading.Thread(target=reader, args=(n,)) for n in (1, 50, 100, 200)]
    writers = [threading.Thread(target=writer) for _ in range(4)]
    for t in readers + writers:
        t.start()
    for t in readers + writers:
        t.join(30)
    assert s.query("c") == 200
    assert results == [True] * 4


def test_aread_awaits_without_blocking_the_loop():
    s = counter_store()

    async def main() -> tuple[int, int]:
        task = asyncio.ensure_future(s.aread("c", 2))
        await asyncio.sleep(0)
        assert not task.done()
        s.update("c", "increment")
        await asyncio.sleep(0)
        assert not task.done()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, s.update, "c", "increment")  # from another thread
        first = await asyncio.wait_for(task, 10)
        again = await s.aread("c", 1)  # already met: returns at once
        with pytest.raises(TimeoutError, match="aread"):
            await s.aread("c", 99, timeout=0.01)
        assert s._vars["c"].waiters == []  # a timed-out waiter is cleaned up
        return first, again

    assert asyncio.run(main()) == (2, 2)


def test_stream_fires_once_per_strict_inflation():
    s = counter_store()
    s.declare("mx", "maxregister")
    seen: list[int] = []
    unsubscribe = s.stream("mx", seen.append)
    assert seen == []  # not called for the current value
    s.update("mx", "set", 3)
    s.update("mx", "set", 2)  # not an inflation
    s.update("mx", "set", 3)  # equal: not strict
    s.update("mx", "set", 7)
    other = s.state("mx")
    s.bind("mx", other)  # already included: no call
    assert seen == [3, 7]
    unsubscribe()
    s.update("mx", "set", 9)
    assert seen == [3, 7]


def test_stream_sees_one_call_per_update_even_through_the_dataflow():
    s = counter_store()
    s.map("S", lambda x: x % 2, "parity")
    s.map("S", lambda x: x, "copy")
    s.product("parity", "copy", "pairs")  # a diamond: two paths from S
    calls: list[set[tuple[int, int]]] = []
    s.stream("pairs", calls.append)
    s.update("S", "add", 1)
    s.update("S", "add", 3)  # parity unchanged, copy grows: pairs grows once
    assert calls == [{(1, 1)}, {(1, 1), (1, 3)}]


def test_stream_callbacks_may_call_back_into_the_store():
    s = counter_store()
    s.declare("log", "gset")

    def echo(v: int) -> None:
        s.update("log", "add", v)

    s.stream("c", echo)
    s.update("c", "increment")
    s.update("c", "increment")
    assert s.query("log") == {1, 2}


def test_a_failing_stream_callback_does_not_break_the_update(caplog):
    s = counter_store()
    s.stream("c", lambda v: 1 / 0)
    assert s.update("c", "increment").value() == 1
    assert s.query("c") == 1
    assert "stream callback" in caplog.text


def test_close_wakes_blocked_readers():
    s = counter_store()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            s.read("c", 10)
        except Exception as exc:
            errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    while s._vars["c"].cond is None:
        threading.Event().wait(0.001)
    s.close()
    th.join(10)
    assert [type(e).__name__ for e in errors] == ["StoreClosedError"]


def test_a_stream_callback_taking_a_lock_does_not_deadlock_an_updating_thread():
    """A callback that takes lock L runs while another thread holds L and updates."""
    import threading

    from lasp_edge.store import Store

    s = Store("a")
    s.declare("c", "gcounter")
    app_lock = threading.Lock()
    seen = []
    in_callback = threading.Event()
    release = threading.Event()

    def cb(value):
        if value == 1:
            in_callback.set()
            release.wait(5)
        with app_lock:
            seen.append(value)

    s.stream("c", cb)
    t1 = threading.Thread(target=s.update, args=("c", "increment"))
    t1.start()
    assert in_callback.wait(5)
    done = threading.Event()

    def other():
        with app_lock:
            s.update("c", "increment")  # must not wait for the running callback
        done.set()

    t2 = threading.Thread(target=other)
    t2.start()
    assert done.wait(5), "the updating thread deadlocked behind a stream callback"
    release.set()
    t1.join(5)
    t2.join(5)
    assert seen == [1, 2]
