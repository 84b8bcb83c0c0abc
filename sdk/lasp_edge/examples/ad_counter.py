"""Seed program 2: the advertisement counter (Lasp's running example).

Every store runs the same program::

    ads                = union(rovio_ads, riot_ads)
    ads_contracts      = product(ads, contracts)
    ads_with_contracts = filter(ads_contracts, ad == contract)
    displayable        = map(ads_with_contracts, pair -> ad)

and every ad has a GCounter ``impressions/<ad>``. Client stores show displayable ads and
count impressions, also while partitioned from the server. The trusted server store holds
``enforce_once(impressions/<ad>, N, bill)``: the first time an ad's merged count reaches N
it bills the advertiser exactly once and removes the ad, and the removal flows back
through the dataflow to every client, which stops showing it.

``--db PATH`` makes the server durable and restarts it after billing: the re-registered
effects find their ``done`` records and nothing is billed twice.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from lasp_edge.store import LocalNetwork, Store

ROVIO = ("rovio1", "rovio2", "rovio3")
RIOT = ("riot1", "riot2")
CONTRACTS = ("rovio1", "rovio2", "riot1")  # rovio3 and riot2 have no contract


def declare_program(s: Store) -> None:
    s.declare("rovio_ads", "awset")
    s.declare("riot_ads", "awset")
    s.declare("contracts", "awset")
    s.union("rovio_ads", "riot_ads", "ads")
    s.product("ads", "contracts", "ads_contracts")
    s.filter("ads_contracts", lambda pair: pair[0] == pair[1], "ads_with_contracts")
    s.map("ads_with_contracts", lambda pair: pair[0], "displayable")
    for ad in ROVIO + RIOT:
        s.declare("impressions/" + ad, "gcounter")


class Server:
    """The trusted store: bills each ad once when its impressions reach the threshold."""

    def __init__(self, threshold: int, path: str | None) -> None:
        self.threshold = threshold
        self.path = path
        self.bills: list[tuple[str, int]] = []
        self.store = self.open()

    def open(self) -> Store:
        s = Store("server", self.path, synchronous="normal")
        declare_program(s)
        for ad in ROVIO + RIOT:
            s.enforce_once(
                "impressions/" + ad, self.threshold, self.biller(s, ad), key="bill/" + ad
            )
        return s

    def biller(self, s: Store, ad: str) -> Any:
        def bill(impressions: int) -> None:
            self.bills.append((ad, impressions))
            print("  BILL %-7s %d impressions (threshold %d)" % (ad, impressions, self.threshold))
            for owner in ("rovio_ads", "riot_ads"):
                if ad in s.query(owner):
                    s.update(owner, "remove", ad)

        return bill


def show(label: str, stores: list[Store]) -> None:
    print(label)
    for s in stores:
        counts = {ad: s.query("impressions/" + ad) for ad in ROVIO + RIOT}
        shown = ",".join(sorted(s.query("displayable"))) or "-"
        nonzero = " ".join("%s=%d" % kv for kv in sorted(counts.items()) if kv[1])
        print("  %-8s displayable=%-22s impressions: %s" % (s.replica, shown, nonzero or "-"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--impressions", type=int, default=100, help="billing threshold N (seed: 50000)")
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--db", help="SQLite file for the server (then it is restarted once)")
    args = p.parse_args(argv)
    n = args.impressions
    rng = random.Random(args.seed)

    server = Server(n, args.db)
    clients = [Store("client%d" % (i + 1)) for i in range(args.clients)]
    for c in clients:
        declare_program(c)
    net = LocalNetwork()
    for c in clients:
        net.connect(server.store, c)

    s = server.store
    for ad in ROVIO:
        s.update("rovio_ads", "add", ad)
    for ad in RIOT:
        s.update("riot_ads", "add", ad)
    for ad in CONTRACTS:
        s.update("contracts", "add", ad)
    net.sync()
    print("ads with contracts: %s" % sorted(s.query("displayable")))
    print("threshold N = %d impressions per ad; %d clients" % (n, len(clients)))

    net.partition()
    # With 3+ clients each one alone stays below N; any two together pass it.
    per_client = n // max(1, len(clients) - 1) + 1
    for c in clients:
        ads = sorted(c.query("displayable"))
        for ad in ads:
            for _ in range(per_client + rng.randrange(3)):  # one update per impression
                c.update("impressions/" + ad, "increment")
    show("partitioned: clients count on their own, the server sees nothing", [s, *clients])

    late = clients[-1]
    net.heal()
    net.partition(s, late)  # the last client stays away a little longer
    print("heal (except %s): deltas flow, thresholds are met" % late.replica)
    net.sync()
    show("after sync", [s, *clients])

    if args.db:
        print("restarting the server from %s (effects re-registered)" % args.db)
        net.disconnect(s)
        s.close()
        server.store = s = server.open()
        for c in clients:
            net.connect(s, c)
        net.partition(s, late)
        net.sync()

    print("%s reconnects with more impressions" % late.replica)
    for ad in sorted(late.query("displayable")):
        late.update("impressions/" + ad, "increment", 5)
    net.heal()
    net.sync()
    show("final", [s, *clients])
    billed = sorted(ad for ad, _ in server.bills)
    print(
        "bills: %d (%s), each ad billed exactly once: %s"
        % (len(billed), ", ".join(billed), len(billed) == len(set(billed)))
    )
    s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
