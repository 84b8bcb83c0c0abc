"""ad_counter server: disables each ad at its impression threshold and bills it exactly once.

The Lasp program (a ``lasp_edge.store.Store``, durable in SQLite):

    ads          AWSet of active ad ids (the devices show these)
    impressions  AWMap ad id -> GCounter (each device increments its own slot)
    for each ad: enforce_once(impressions[ad] >= THRESHOLD, bill(ad), key="bill/<ad>")

``bill(ad)`` appends one invoice line to the bills file and removes the ad from ``ads``;
the removal flows back to every device, which stops showing the ad. Exactly once: the
Store's effect outbox commits "triggered" in the same transaction as the impressions that
met the threshold, and the invoice is keyed by the effect key, so a retry after a crash
inside the callback finds the invoice already written and does not bill again.

The devices connect through ``../server_bridge.py`` (the gateway side of the sync protocol
over MQTT). Run, next to a mosquitto broker:

    .venv/bin/python firmware_examples/ad_counter/server.py --broker 127.0.0.1 \\
        --ads ad-1,ad-2,ad-3 --threshold 500 --state-dir build/ad_server

Ctrl-C stops it; running it again continues from its SQLite file (nothing billed twice).
``--run-s N`` stops after N seconds (tests).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # server_bridge
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from server_bridge import bridge_for, print_changes, server_args  # noqa: E402

from lasp_edge.store import Store  # noqa: E402


class Billing:
    """Invoices keyed by the effect key: writing the same invoice twice is a no-op."""

    def __init__(self, path):
        self.path = path
        self.done = set()
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    try:
                        self.done.add(json.loads(line)["key"])
                    except (ValueError, KeyError):
                        pass  # a line torn by a crash: that invoice is written again

    def bill(self, key, ad, impressions):
        if key in self.done:
            return False
        with open(self.path, "a") as f:
            f.write(json.dumps({"key": key, "ad": ad, "impressions": impressions}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done.add(key)
        print("BILL %s at %d impressions" % (ad, impressions), flush=True)
        return True


def declare_program(store, ads):
    store.declare("ads", "awset")
    store.declare("impressions", "awmap", vtype="gcounter")
    for ad in ads:
        if "bill/" + ad not in store.effects() and ad not in store.query("ads"):
            store.update("ads", "add", ad)  # first run: publish the ad


def arm_billing(store, ads, threshold, billing):
    for ad in ads:
        key = "bill/" + ad

        def reached(value, ad=ad):
            return value.get(ad, 0) >= threshold

        def bill(value, ad=ad, key=key):
            billing.bill(key, ad, value.get(ad, 0))
            if ad in store.query("ads"):
                store.update("ads", "remove", ad)  # devices stop showing it

        store.enforce_once("impressions", reached, bill, key=key)


def main(argv=None):
    ap = server_args(__doc__.split("\n")[0], "ad_server")
    ap.add_argument("--ads", default="ad-1,ad-2,ad-3")
    ap.add_argument("--threshold", type=int, default=500)
    args = ap.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    ads = [a for a in args.ads.split(",") if a]
    store = Store("server", os.path.join(args.state_dir, "store.db"))
    billing = Billing(os.path.join(args.state_dir, "bills.jsonl"))
    declare_program(store, ads)
    bridge = bridge_for(store, args, writable=("impressions",), down=("ads",))
    arm_billing(store, ads, args.threshold, billing)  # may bill at once (after a restart)
    bridge.start()
    print("serving ads %s, threshold %d" % (sorted(store.query("ads")), args.threshold), flush=True)
    try:
        print_changes(
            args.run_s,
            lambda: (sorted(store.query("ads")), sorted(store.query("impressions").items())),
            lambda v: "ads %s impressions %s" % (v[0], dict(v[1])),
        )
    finally:
        bridge.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
