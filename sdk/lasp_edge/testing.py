"""pytest plugin: emulate a device fleet under faults in your own tests (``lasp_edge.testing``).

Installed with lasp-edge and registered through the ``pytest11`` entry point, so the
fixtures are available in any test once the package is installed::

    def test_my_counter_survives_partitions(fleet):
        run = fleet("firmware_examples/ad_counter", devices=20,
                    faults=["partition:0.3", "loss:0.1"], seed=7)
        run.until_converged(timeout=60)
        assert run.oracle_matches()

Fixtures (each is function-scoped: a fresh fleet and fresh databases per test):

* ``mqtt_broker``: mosquitto when it is installed, otherwise the embedded amqtt broker,
  on a free loopback port; ``mqtt_broker.restart()`` keeps the port.
* ``lasp_app``: the firmware example the ``aggregator`` fixture serves (default
  ``firmware_examples/ad_counter``); override it (a fixture of that name, or
  ``@pytest.mark.parametrize("lasp_app", [...])``) to use ``aggregator`` with another app.
* ``aggregator``: ``lasp-edge aggregator`` running ``lasp_app``'s server program, behind a
  fault proxy (``aggregator.proxy.cut(seconds)`` makes it unreachable).
* ``gateway``: ``lasp-edge gateway`` on the broker; ``kill9()`` / ``start()``.
* ``fleet(app, devices=..., faults=[...], seed=..., real=0, duration=10)``: starts one
  emulation (docs/EMULATOR.md) of any firmware example the emulator knows, on the
  broker and the gateway. The aggregator is the ``aggregator`` fixture when the test asks
  for it (it must serve the same app), otherwise one the run starts with the app's own
  server program and stops at its end. Returns a ``FleetRun``.

``FleetRun.until_converged(timeout)`` waits for the counting to end and the fleet to
converge, and raises ``AssertionError`` with the final table (oracle against gateway and
aggregator, key by key, and what it was still waiting for) when it does not.
``oracle_matches()`` says whether the services hold exactly what the devices made.
Nothing is imported from lasp_gateway until a fixture is used, so the plugin costs
nothing in test sessions that do not use it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import pytest


class FleetRun:
    """One emulation running on a thread; see the module docstring."""

    def __init__(self, emulation: Any) -> None:
        self.emulation = emulation
        emulation.start()

    @property
    def report(self) -> Any:
        """The ``Report`` (``None`` until the run ended)."""
        return self.emulation.report

    def until_converged(self, timeout: float = 60.0) -> Any:
        """Wait until the fleet converged (at most ``timeout`` s after the counting ended).

        Returns the report; raises ``AssertionError`` with the final table if it did not
        converge, which includes every value that differs from the oracle.
        """
        emu = self.emulation
        emu.cfg.drain_timeout = timeout  # read live by the run's loop
        report = emu.wait(emu.cfg.duration + timeout + 180.0)  # 180 s: setup on a busy box
        if report is None:
            raise AssertionError(
                "the emulation did not finish (setup or teardown hung); still waiting for: %s"
                % "; ".join(emu.waiting_for)
            )
        if not report.converged:
            raise AssertionError("the fleet did not converge:\n" + report.table())
        return report

    def oracle_matches(self) -> bool:
        """True when gateway and aggregator hold exactly what the devices made.

        On a mismatch the differences are printed (pytest shows them with the failure).
        """
        report = self.emulation.wait(self.emulation.cfg.duration + 300.0)
        if report is None:
            raise AssertionError("the emulation has not finished")
        if not report.oracle_match:
            sys.stdout.write(report.table())
        return bool(report.oracle_match)


@pytest.fixture
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """mosquitto if installed, else the embedded broker; stopped after the test."""
    from lasp_gateway.emulator.services import Broker, find_mosquitto

    kind = "mosquitto" if find_mosquitto() else "embedded"
    broker = Broker(kind, tmp_path_factory.mktemp("broker")).start()
    yield broker
    broker.stop()


@pytest.fixture
def lasp_app() -> str:
    """The firmware example the ``aggregator`` fixture serves; override to change it."""
    return "firmware_examples/ad_counter"


@pytest.fixture
def aggregator(mqtt_broker: Any, lasp_app: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``lasp-edge aggregator`` with ``lasp_app``'s server program, behind a fault proxy."""
    from lasp_gateway.emulator.apps import load_app
    from lasp_gateway.emulator.stack import AggregatorService

    spec = load_app(lasp_app)
    agg = AggregatorService(
        mqtt_broker,
        tmp_path_factory.mktemp("aggregator"),
        spec.program_spec(),
        spec.program_env,
        app=spec.name,
    )
    agg.start()
    yield agg
    agg.stop()


@pytest.fixture
def gateway(mqtt_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``lasp-edge gateway`` on ``mqtt_broker`` (it forwards to whichever aggregator runs:
    shared variables reach it from the aggregator's schema when that one is up)."""
    from lasp_gateway.emulator.stack import GatewayService

    gw = GatewayService(mqtt_broker, tmp_path_factory.mktemp("gateway"))
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest,
    mqtt_broker: Any,
    gateway: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """``fleet(app, devices=20, faults=[...], seed=0, real=0, duration=10, **options)``.

    ``options`` are ``EmulationConfig`` fields (``view_ms``, ``sync_period_ms``, ``heap``,
    ``broken``...). One fleet per test: the services' state belongs to that fleet's oracle.
    """
    from lasp_gateway.emulator import Emulation, EmulationConfig, parse_faults
    from lasp_gateway.emulator.apps import load_app

    runs: list[FleetRun] = []

    def make(
        app: str = "firmware_examples/ad_counter",
        devices: int = 20,
        faults: Any = (),
        seed: int = 0,
        **options: Any,
    ) -> FleetRun:
        if runs:
            raise RuntimeError("one fleet per test: the services already hold its state")
        options.setdefault("duration", 10.0)
        options.setdefault("view_ms", 500)
        aggregator = None
        if "aggregator" in request.fixturenames:  # the test holds it: the run uses it
            aggregator = request.getfixturevalue("aggregator")
            wanted = load_app(app).name
            serves = getattr(aggregator, "app", None)  # None: a user's own aggregator fixture
            if serves is not None and serves != wanted:
                raise ValueError(
                    "the aggregator fixture serves %s, the fleet runs %s: override the "
                    "lasp_app fixture (docs/EMULATOR.md)" % (serves, wanted)
                )
        cfg = EmulationConfig(
            app=app,
            devices=devices,
            faults=parse_faults(list(faults) if not isinstance(faults, str) else faults),
            seed=seed,
            workdir=str(tmp_path_factory.mktemp("fleet")),
            **options,
        )
        run = FleetRun(Emulation(cfg, mqtt_broker, gateway, aggregator))
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.emulation.abort()  # a test that failed early does not wait for the whole run
        with contextlib.suppress(Exception):  # already reported by the test that used it
            run.emulation.wait(120)
