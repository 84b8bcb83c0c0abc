"""``firmware_examples/ad_counter`` in the emulator: impressions counted per ad.

Devices write ``impressions`` (AWMap ad -> GCounter, each device its own slot) and ask for
``ads``. The aggregator runs the demo's ad-counter program with thresholds out of reach,
so the ads stay up and every device counts all run long; what it must show is the
impressions map itself, which the oracle's CRDT copies give exactly.
"""

from __future__ import annotations

from typing import Any

from lasp_gateway.emulator.apps import AppSpec
from lasp_gateway.emulator.oracle import plain, total


class Spec(AppSpec):
    name = "ad_counter"
    program = "lasp_gateway.demo_program:program"
    written = ("impressions",)
    interests = ("ads",)
    measured = "impressions"
    unit = "impressions"

    @property
    def program_env(self) -> dict[str, str]:
        return {"LASP_DEMO_ADS": "ad-1:1000000000,ad-2:1000000000,ad-3:1000000000"}

    def declare(self, dev: Any) -> None:
        from lasp_edge.crdts.awmap import AWMap
        from lasp_edge.crdts.awset import AWSet

        dev.declare("ads", AWSet())
        dev.declare("impressions", AWMap("gcounter"))

    def bottoms(self) -> dict[str, Any]:
        from lasp_edge.crdts.awmap import AWMap

        return {"impressions": AWMap("gcounter")}

    def make_app(self, dev: Any, button: Any, record: Any = None) -> Any:
        ns = self.namespace()
        app = ns["App"](dev, button, ns["Oracle"](None))
        app.counted = ns["own_total"](dev.var("impressions"), dev.id)
        dev.on_change = app.ads_changed
        return app

    def held(self, dev_id: str, states: dict[str, Any]) -> int:
        return sum(total(plain(s.value())) for s in states.values())
