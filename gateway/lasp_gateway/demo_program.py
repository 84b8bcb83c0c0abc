"""The ad-counter program of ``lasp-edge demo`` (``--program lasp_gateway.demo_program:program``).

Variables: ``ads`` (AWSet, what devices show), ``impressions`` (AWMap ad -> GCounter, each
device counts into its own slot), ``thresholds`` (GSet of ``(ad, threshold)``, so the
dashboard can draw each ad's line without knowing the scenario) and ``bills`` (GSet of
``(ad, impressions at billing)``).

One ``enforce_once`` per ad bills it when its merged impressions reach the threshold and
removes it from ``ads``; the removal flows back to the devices, which stop showing it.
Impressions counted by devices that were offline at that moment arrive later: that is the
overshoot the demo reports. Exactly once is the Store's durable outbox; the ledger file
(``LASP_DEMO_LEDGER``) gets one line per *run* of a bill callback, so the demo can check
independently that every ad was billed once.

The scenario comes from the environment because the aggregator is a subprocess started
by the demo: ``LASP_DEMO_ADS="ad-1:300,ad-2:500"``.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_ADS = "ad-1:150,ad-2:250,ad-3:400"


def scenario() -> list[tuple[str, int]]:
    """``[(ad, threshold)]`` from ``LASP_DEMO_ADS``."""
    out = []
    for item in os.environ.get("LASP_DEMO_ADS", DEFAULT_ADS).split(","):
        ad, _, t = item.strip().partition(":")
        if ad:
            out.append((ad, int(t or 100)))
    return out


def program(store: Any) -> None:
    ads = scenario()
    ledger = os.environ.get("LASP_DEMO_LEDGER")
    store.declare("ads", "awset")
    store.declare("impressions", "awmap", vtype="gcounter")
    store.declare("thresholds", "gset")
    store.declare("bills", "gset")
    if getattr(store, "trusted", True) and store.state("ads").is_bottom():
        for ad, t in ads:
            if "bill/" + ad not in store.effects():
                store.update("ads", "add", ad)
                store.update("thresholds", "add", (ad, t))

    def biller(ad: str) -> Any:
        def bill(value: Any) -> None:
            n = value.get(ad, 0)
            if ledger:
                with open(ledger, "a") as f:
                    f.write("%s %d\n" % (ad, n))
                    f.flush()
                    os.fsync(f.fileno())
            store.update("bills", "add", (ad, n))
            if ad in store.query("ads"):
                store.update("ads", "remove", ad)

        return bill

    for ad, t in ads:
        store.enforce_once(
            "impressions", lambda v, ad=ad, t=t: v.get(ad, 0) >= t, biller(ad), key="bill/" + ad
        )
