"""The firmware apps the emulator can run, and how a virtual device runs the app's own code.

A firmware example's ``main.py`` is a script: it builds its ``Device`` from ``config.py``
and ends with ``main()``, the endless loop. A real device runs it as is. A virtual device
runs the same file minus two statements: ``import config`` (a settings object is given
instead) and the final ``main()`` call. Its classes and functions (``App``, ``own_total``)
are then used exactly as ``main()`` uses them, so the app logic that counts impressions
is the code that is flashed, not a re-implementation.

What the emulator must know about an app that ``main.py`` does not say is in its
``AppSpec``: the variables it declares (the same calls as its ``main()``), which of them
devices write (the oracle compares those), and the aggregator program it pairs with.
"""

from __future__ import annotations

import ast
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lasp_gateway.emulator.services import ROOT


class AppError(ValueError):
    """The app directory is not one the emulator knows how to run."""


@dataclass
class AppSpec:
    name: str
    path: Path
    program: str  # module:function of the aggregator program
    written: tuple[str, ...]  # variables devices write: what the oracle checks
    interests: tuple[str, ...]  # variables devices ask the gateway for
    program_env: dict[str, str] = field(default_factory=dict)
    _ns: dict[str, Any] | None = None

    def declare(self, dev: Any) -> None:
        """The app's declarations, as in its ``main()``."""
        from lasp_edge.crdts.awmap import AWMap
        from lasp_edge.crdts.awset import AWSet

        if self.name == "ad_counter":
            dev.declare("ads", AWSet())
            dev.declare("impressions", AWMap("gcounter"))

    def bottoms(self) -> dict[str, Any]:
        """Fresh bottom states of the written variables (the oracle's starting point)."""
        from lasp_edge.crdts.awmap import AWMap

        return {"impressions": AWMap("gcounter")} if self.name == "ad_counter" else {}

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

    def make_app(self, dev: Any, button: Any) -> Any:
        """The app object driving ``dev`` (``step(now)`` makes its updates)."""
        ns = self.namespace()
        if self.name == "ad_counter":
            app = ns["App"](dev, button, ns["Oracle"](None))
            app.counted = ns["own_total"](dev.var("impressions"), dev.id)
            dev.on_change = app.ads_changed
            return app
        raise AppError("no virtual driver for %s" % self.name)


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


KNOWN = {
    "ad_counter": dict(
        program="lasp_gateway.demo_program:program",
        written=("impressions",),
        interests=("ads",),
        # thresholds out of reach: the ads stay up, every device counts all run long
        program_env={"LASP_DEMO_ADS": "ad-1:1000000000,ad-2:1000000000,ad-3:1000000000"},
    ),
}


def load_app(app: str | Path) -> AppSpec:
    """``firmware_examples/ad_counter`` (a path, or just the example's name)."""
    path = Path(app)
    for candidate in (ROOT / path, ROOT / "firmware_examples" / path):
        if not path.is_dir() and candidate.is_dir():
            path = candidate  # relative to the checkout, or an example's bare name
    if not (path / "main.py").is_file():
        raise AppError("%s: no main.py (expected a firmware example directory)" % app)
    name = path.resolve().name
    if name not in KNOWN:
        raise AppError(
            "the emulator knows %s; %s has no oracle description yet" % (", ".join(KNOWN), name)
        )
    return AppSpec(name=name, path=path.resolve(), **KNOWN[name])  # type: ignore[arg-type]
