"""``firmware_examples/sensor_windows`` in the emulator: windowed temperature averages.

Each device (its ``Sensor``) takes a reading every ``view_ms`` into the current window:
``tsum[w]`` grows by the reading (centi-kelvin) and ``tcount[w]`` by one, in its own
slots. The window index comes from the server's clock (``window``, a MaxRegister the
devices ask for) and advances on the device's own ticks in between; windows older than
``KEEP_WINDOWS`` are pruned on the device once the gateway has them (the gateway keeps
them all). The aggregator runs ``firmware_examples/sensor_windows/server.py:program``,
with windows short enough for a few of them per run and a clock that stops at 80% of
the counting, so that every device can converge on the last announced window.

The oracle checks:

* the gateway holds exactly ``tsum`` and ``tcount`` as the devices flushed them (the
  oracle's CRDT copies, which are never pruned);
* the aggregator's ``tsum``, ``tcount`` and the server's own ``averages()`` over them
  equal a recomputation from every reading (the facts ``(window, centi-kelvin, 1)``, one
  per ``tsum`` update). A real device reports at the end from its flash store, as one
  ``(window, sum, count)`` per window; real devices keep every window for that
  (KEEP_WINDOWS very large), virtual ones prune.
"""

from __future__ import annotations

from typing import Any

from lasp_gateway.emulator.apps import AppSpec
from lasp_gateway.emulator.oracle import plain

KEEP_WINDOWS = 2  # virtual devices: prune all but the last two windows
KELVIN_CC = 27315  # server.py's KELVIN_CC: averages are printed in degrees C


class Spec(AppSpec):
    name = "sensor_windows"
    program = "firmware_examples/sensor_windows/server.py:program"
    written = ("tsum", "tcount")
    interests = ("window",)
    measured = "tcount"
    unit = "readings"
    _server_averages: Any = None

    @property
    def window_ms(self) -> int:
        """About six windows per run, so that pruning and new windows happen even when the
        devices hear the first window late (a loaded machine)."""
        return max(1000, int(self.duration * 1000) // 6)

    @property
    def program_env(self) -> dict[str, str]:
        return {
            "LASP_WINDOW_MS": str(self.window_ms),
            "LASP_CLOCK_S": "%.1f" % (0.8 * self.duration),
        }

    def settings(self) -> dict[str, Any]:
        return {"WINDOW_MS": self.window_ms, "KEEP_WINDOWS": KEEP_WINDOWS,
                "SAMPLE_MS": self.view_ms}  # fmt: skip

    def real_settings(self) -> dict[str, Any]:
        return {"KEEP_WINDOWS": 1 << 20}  # the end-of-run flash read needs every window

    def declare(self, dev: Any) -> None:
        from lasp_edge.crdts.awmap import AWMap
        from lasp_edge.crdts.maxregister import MaxRegister

        dev.declare("tsum", AWMap("gcounter"))
        dev.declare("tcount", AWMap("gcounter"))
        dev.declare("window", MaxRegister())

    def bottoms(self) -> dict[str, Any]:
        from lasp_edge.crdts.awmap import AWMap

        return {"tsum": AWMap("gcounter"), "tcount": AWMap("gcounter")}

    def make_app(self, dev: Any, button: Any, record: Any = None) -> Any:
        ns = self.namespace()
        s = self.settings()
        sensor = ns["Sensor"](dev, s["WINDOW_MS"], KEEP_WINDOWS, s["SAMPLE_MS"], ns["Oracle"](None))
        dev.on_change = sensor.announced
        return sensor

    def facts_of(self, name: str, op: str, args: tuple[Any, ...]) -> list[Any]:
        if name == "tsum" and op == "update":  # (window, "increment", replica, centi-kelvin)
            return [(args[0], args[3], 1)]
        return []

    def real_facts(self, dev_id: str, states: dict[str, Any]) -> list[Any]:
        sums = states["tsum"].value() if "tsum" in states else {}
        counts = states["tcount"].value() if "tcount" in states else {}
        return [(w, sums.get(w, 0), n) for w, n in counts.items()]

    def held(self, dev_id: str, states: dict[str, Any]) -> int:
        """Readings in the store: the ``F`` line's number (the device prunes none here)."""
        return sum(states["tcount"].value().values()) if "tcount" in states else 0

    def program_expected(self, expected: dict[str, Any], facts: list[Any]) -> dict[str, Any]:
        sums: dict[int, int] = {}
        counts: dict[int, int] = {}
        for w, ck, n in facts:
            sums[w] = sums.get(w, 0) + ck
            counts[w] = counts.get(w, 0) + n
        avg = {w: ((sums[w] / n - KELVIN_CC) / 100.0, n) for w, n in counts.items() if n}
        return {"tsum": plain(sums), "tcount": plain(counts), "averages": plain(avg)}

    def program_view(self, read: Any) -> dict[str, Any]:
        """The aggregator's variables, and the server's ``averages()`` computed over them."""
        tsum, tcount = read("tsum"), read("tcount")
        out = {"tsum": tsum, "tcount": tcount, "averages": None}
        if isinstance(tsum, dict) and isinstance(tcount, dict):
            values = {"tsum": _int_keys(tsum), "tcount": _int_keys(tcount)}
            out["averages"] = plain(self._averages()(_Values(values)))
        return out

    def _averages(self) -> Any:
        """``averages`` of the app's own server.py (loaded once)."""
        if self._server_averages is None:
            from lasp_gateway.aggregator import load_program

            self._server_averages = load_program("%s:averages" % (self.path / "server.py"))
        return self._server_averages

    def measure_made(self, made: int, facts: list[Any], real_counted: int) -> int:
        return sum(n for _, _, n in facts) + real_counted


def _int_keys(d: dict[str, Any]) -> dict[int, Any]:
    """JSON made the window indexes strings; the server's code works on ints."""
    return {int(k): v for k, v in d.items()}


class _Values:
    """What ``averages(store)`` reads of a store (``query``), over values already read."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def query(self, name: str) -> Any:
        return self.values[name]
