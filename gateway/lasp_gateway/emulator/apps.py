"""The firmware apps the emulator can run, and how a virtual device runs the app's own code.

A firmware example's ``main.py`` is a script: it builds its ``Device`` from ``config.py``
and ends with ``main()``, the endless loop. A real device runs it as is. A virtual device
runs the same file minus two statements: ``import config`` (a settings object is given
instead) and the final ``main()`` call. Its classes and functions (``App``, ``Game``,
``Sensor``) are then used exactly as ``main()`` uses them, so the app logic that counts
impressions, scores games or reads temperatures is the code that is flashed, not a
re-implementation.

What the emulator must know about an app that ``main.py`` does not say is in its
``AppSpec`` subclass (one module per app, ``app_<name>.py``):

* the variables it declares (the same calls as its ``main()``), which of them devices
  write (the oracle's CRDT copies of those must equal the gateway's exactly) and which
  they ask for (every device's copy must end equal to the aggregator's view);
* the aggregator program it pairs with (``firmware_examples/<app>/server.py:program``)
  and the settings both sides must agree on;
* the oracle's *facts*: what the app did, recorded as it happened (an impression, a
  score, a reading), from which ``program_expected`` recomputes, without any CRDT, what
  the server program must show (``program_view``);
* how to read a real device's flash store at the end, and one number per replica for the
  divergence plot (``measure``).
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from pathlib import Path
from typing import Any

from lasp_gateway.emulator.services import ROOT


class AppError(ValueError):
    """The app directory is not one the emulator knows how to run."""


class AppSpec:
    """The emulator's knowledge of one firmware example; subclasses fill in the class data."""

    name = ""
    program = ""  # aggregator program, "path/to/server.py:function" relative to the checkout
    written: tuple[str, ...] = ()  # variables devices write: the gateway must hold the oracle
    interests: tuple[str, ...] = ()  # variables devices ask the gateway for
    measured = ""  # the variable the divergence plot follows (on gateway and aggregator)
    unit = "updates"  # what ``measure`` counts

    def __init__(self, path: Path, duration: float = 30.0, view_ms: int = 1000) -> None:
        self.path = path
        self.duration = duration  # seconds of counting (a clock the program must stop)
        self.view_ms = view_ms  # how often a device acts (a press, a reading)
        self._ns: dict[str, Any] | None = None

    # -- the app's own code ----------------------------------------------------------------

    def program_spec(self) -> str:
        """``--program`` for ``lasp-edge aggregator``, with the file path made absolute."""
        target, _, fn = self.program.rpartition(":")
        return "%s:%s" % (ROOT / target, fn) if target.endswith(".py") else self.program

    @property
    def program_env(self) -> dict[str, str]:
        """The aggregator program's settings (it runs in a subprocess: the environment)."""
        return {}

    def settings(self) -> dict[str, Any]:
        """App settings (``config.py`` names) of every device, virtual and real."""
        return {}

    def real_settings(self) -> dict[str, Any]:
        """Extra settings of real devices only (what the end-of-run flash read needs)."""
        return {}

    def declare(self, dev: Any) -> None:
        """The app's declarations, as in its ``main()``."""
        raise NotImplementedError

    def bottoms(self) -> dict[str, Any]:
        """Fresh bottom states of the written variables (the oracle's starting point)."""
        raise NotImplementedError

    def namespace(self) -> dict[str, Any]:
        """``main.py`` executed without ``import config`` and without the ``main()`` call."""
        if self._ns is None:
            device_path()
            src = (self.path / "main.py").read_text()
            tree = ast.parse(src, str(self.path / "main.py"))
            tree.body = [s for s in tree.body if not _skipped(s)]
            ns: dict[str, Any] = {
                "__name__": "lasp_emulated_%s" % self.name,
                "config": types.SimpleNamespace(),
                "print": lambda *a, **k: None,  # a thousand devices would flood the terminal
            }
            exec(compile(tree, str(self.path / "main.py"), "exec"), ns)
            self._ns = ns
        return self._ns

    def make_app(self, dev: Any, button: Any, record: Any = None) -> Any:
        """The app object driving ``dev`` (``step(now)`` makes its updates).

        ``record(fact)`` is called for each fact the oracle keeps (see ``facts_of``).
        """
        raise NotImplementedError

    # -- the oracle ------------------------------------------------------------------------

    def facts_of(self, name: str, op: str, args: tuple[Any, ...]) -> list[Any]:
        """Facts an update of a virtual device stands for (default: none)."""
        return []

    def real_facts(self, dev_id: str, states: dict[str, Any]) -> list[Any]:
        """A real device's facts, from its flash store at the end (default: none)."""
        return []

    def own(self, dev_id: str, states: dict[str, Any]) -> dict[str, Any]:
        """The part of a real device's written variables that it wrote itself.

        Default: everything (the device asked for none of what it writes).
        """
        return states

    def held(self, dev_id: str, states: dict[str, Any]) -> int:
        """The number the app's ``F`` oracle line reports, from its flash store."""
        raise NotImplementedError

    def program_expected(self, expected: dict[str, Any], facts: list[Any]) -> dict[str, Any]:
        """What the server program must show, as plain values.

        ``expected`` is the oracle's joined CRDT state of the written variables, ``facts``
        every durable fact of every device. Default: the written variables themselves.
        """
        from lasp_gateway.emulator.oracle import plain

        return {n: plain(s.value()) for n, s in expected.items()}

    def program_view(self, read: Any) -> dict[str, Any]:
        """What the aggregator shows, for the names of ``program_expected``.

        ``read(var)`` is the aggregator's value of a variable (``None``: unreachable).
        """
        return {n: read(n) for n in self.written}

    def device_view(self, name: str, state: Any) -> Any:
        """A virtual device's copy of an interest, as the aggregator shows that variable."""
        from lasp_gateway.emulator.oracle import plain

        return plain(state.value())

    def measure(self, value: Any) -> int | None:
        """One number of ``measured`` as a service shows it (for the divergence plot)."""
        from lasp_gateway.emulator.oracle import total

        return None if value is None else total(value)

    def measure_made(self, made: int, facts: list[Any], real_counted: int) -> int:
        """The same number for everything the fleet made so far."""
        return made + real_counted


def _skipped(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import) and [a.name for a in stmt.names] == ["config"]:
        return True
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Name)
        and stmt.value.func.id == "main"
    )


def device_path() -> None:
    """Make ``lasp_device`` (micropython/ in the checkout) importable on CPython."""
    runtime = ROOT / "micropython"
    if not (runtime / "lasp_device").is_dir():
        raise AppError("virtual devices need a checkout with micropython/lasp_device")
    if str(runtime) not in sys.path:
        sys.path.append(str(runtime))


# firmware example name -> module (in this package) of its AppSpec subclass ``Spec``
KNOWN = {
    "ad_counter": "app_ad_counter",
    "leaderboard": "app_leaderboard",
    "sensor_windows": "app_sensor_windows",
}


def known_apps() -> str:
    return ", ".join("firmware_examples/%s" % n for n in sorted(KNOWN))


def load_app(app: str | Path, duration: float = 30.0, view_ms: int = 1000) -> AppSpec:
    """``firmware_examples/leaderboard`` (a path, or just the example's name)."""
    path = Path(app)
    for candidate in (ROOT / path, ROOT / "firmware_examples" / path):
        if not path.is_dir() and candidate.is_dir():
            path = candidate  # relative to the checkout, or an example's bare name
    name = path.resolve().name
    if not (path / "main.py").is_file():
        raise AppError(
            "%s: no such firmware example (no main.py); the emulator knows %s" % (app, known_apps())
        )
    if name not in KNOWN:
        raise AppError(
            "%s: the emulator has no oracle for this app; it knows %s" % (app, known_apps())
        )
    module = importlib.import_module("lasp_gateway.emulator." + KNOWN[name])
    spec: AppSpec = module.Spec(path.resolve(), duration, view_ms)
    return spec
