"""The server side of an emulated fleet: the gateway and the aggregator, as operators run them.

Both are ``lasp-edge`` subprocesses started through the CLI (``ServiceProc``), each with
its SQLite file in the run's directory and its JSON API on a free loopback port, which is
how the emulator reads what they hold. The aggregator reaches the broker through its own
``FaultProxy``, so "the aggregator is unreachable" is a cut link while the process keeps
running (the gateway must keep accepting devices and forward later).

Timeouts are short (ack 1 s, backoff up to 4 s) so that repairs happen within a test's
budget; the protocol is the same as with production settings.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from lasp_gateway.emulator.proxy import FaultProxy
from lasp_gateway.emulator.services import Broker, ServiceProc, free_port

FAST = ["--ack-timeout-ms", "1000", "--max-timeout-ms", "4000", "--synchronous", "normal"]


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class _Service:
    proc: ServiceProc
    http_port: int

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.http_port

    def start(self) -> _Service:
        self.proc.start()
        return self

    def stop(self) -> None:
        self.proc.stop()

    def kill9(self) -> None:
        self.proc.kill9()

    @property
    def alive(self) -> bool:
        return self.proc.alive

    def value(self, name: str) -> Any:
        """A variable's value from the service's HTTP API (``None`` if not reachable)."""
        try:
            body = http_json("%s/api/variables/%s" % (self.url, name), timeout=3.0)
        except (OSError, ValueError):
            return None
        return body.get("value") if isinstance(body, dict) else None


class GatewayService(_Service):
    """``lasp-edge gateway`` (replica ``gw``, upstream ``agg``) on ``broker``."""

    def __init__(self, broker: Broker, workdir: Path, forward_period_ms: int = 500) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.proc = ServiceProc(
            ["gateway", "--broker", broker.address, "--db", str(workdir / "gw.db"),
             "--forward-period-ms", str(forward_period_ms), "--status-period-ms", "1000",
             "--http", "127.0.0.1:%d" % self.http_port, *FAST],
            workdir / "gateway.log",
        )  # fmt: skip


class AggregatorService(_Service):
    """``lasp-edge aggregator --trusted`` running ``program``, behind its own ``FaultProxy``."""

    def __init__(
        self,
        broker: Broker,
        workdir: Path,
        program: str = "lasp_gateway.demo_program:program",
        env: dict[str, str] | None = None,
        sync_period_ms: int = 500,
        app: str | None = None,
    ) -> None:
        self.app = app  # the firmware example whose server program this is (if known)
        workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.proxy = FaultProxy(broker.port, target_host=broker.host)
        self.proc = ServiceProc(
            ["aggregator", "--program", program, "--broker", "127.0.0.1:%d" % self.proxy.port,
             "--db", str(workdir / "agg.db"), "--trusted", "--http",
             "127.0.0.1:%d" % self.http_port, "--sync-period-ms", str(sync_period_ms), *FAST],
            workdir / "aggregator.log",
            env,
        )  # fmt: skip

    def stop(self) -> None:
        super().stop()
        self.proxy.close()
