"""Aggregator programs for the gateway tests (independent of firmware_examples/).

``ad_counter(store)``: ads (AWSet), impressions (AWMap ad -> GCounter), bills (GSet of
``(ad, threshold)``). An ``enforce_once`` per ad fires when its merged impressions reach
``LASP_AD_THRESHOLD`` (environment, default 40): it records the bill (and appends its key
to the ledger file ``LASP_LEDGER``, if set, as an idempotent external receiver would, plus a
line per *run* to ``LASP_LEDGER.runs``) and removes the ad from ``ads``, which flows back
through the gateway to the devices, which stop showing it.
"""

from __future__ import annotations

import os
from typing import Any

ADS = ("ad-1", "ad-2", "ad-3")


def threshold() -> int:
    return int(os.environ.get("LASP_AD_THRESHOLD", "40"))


def _append(path: str, line: str, unique: bool) -> None:
    if unique:
        try:
            with open(path) as f:
                if line in f.read().split("\n"):
                    return
        except FileNotFoundError:
            pass
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def ad_counter(store: Any) -> None:
    t = threshold()
    store.declare("ads", "awset")
    store.declare("impressions", "awmap", vtype="gcounter")
    store.declare("bills", "gset")
    # Seed the ads once, on the replica that owns effects (others learn them by sync).
    if getattr(store, "trusted", True) and store.state("ads").is_bottom():
        for ad in ADS:
            store.update("ads", "add", ad)
    ledger = os.environ.get("LASP_LEDGER")

    def biller(ad: str) -> Any:
        def bill(_value: Any) -> None:
            if ledger:
                _append(ledger + ".runs", "bill/" + ad, unique=False)
                _append(ledger, "bill/" + ad, unique=True)
            store.update("bills", "add", (ad, t))
            if ad in store.query("ads"):
                store.update("ads", "remove", ad)

        return bill

    for ad in ADS:
        store.enforce_once(
            "impressions",
            lambda v, ad=ad: v.get(ad, 0) >= t,
            biller(ad),
            key="bill/" + ad,
        )


def relay(store: Any) -> None:
    """No program: the aggregator only stores and forwards what gateways send."""
