"""leaderboard server: the global top-k of every device's local top-k (fold_dynamic).

The Lasp program (a ``lasp_edge.store.Store``, durable in SQLite)::

    declare_dynamic("local_top", "topk", k=K)        # this server's own games (none here)
    fold_dynamic("local_top", None, "leaderboard")   # global = join of every slot

``leaderboard`` is replicated as an AWMap replica id -> LWWRegister(typed TopK, version):
each device publishes its own top-k as its slot (see main.py), the bridge binds the slot
deltas into the store, and ``query("leaderboard")`` is the exact global top-k, because
keeping the k best commutes with join. A device that resets its local top-k (a new
season) publishes a smaller slot with a higher version, and the global view drops what
only it held. ``--evict DEVICE`` removes a decommissioned device's slot.

    .venv/bin/python firmware_examples/leaderboard/server.py --broker 127.0.0.1 --k 10
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # server_bridge
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from server_bridge import Bridge  # noqa: E402

from lasp_edge.store import Store  # noqa: E402


def declare_program(store, k):
    store.declare_dynamic("local_top", "topk", k=k)
    store.fold_dynamic("local_top", None, "leaderboard")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--gateway-id", default="gw")
    ap.add_argument("--k", type=int, default=10, help="must match the devices' K")
    ap.add_argument("--state-dir", default="leaderboard_server")
    ap.add_argument("--evict", action="append", default=[], help="drop a device's slot")
    ap.add_argument("--run-s", type=float, default=0, help="stop after this long (0: never)")
    args = ap.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    store = Store("server", os.path.join(args.state_dir, "store.db"))
    declare_program(store, args.k)
    for dev in args.evict:
        store.evict("leaderboard", dev)
    bridge = Bridge(
        store,
        args.broker,
        args.port,
        replica=args.gateway_id,
        writable=("leaderboard",),
        keyed=("leaderboard",),
        down=(),
        state_dir=args.state_dir,
        username=args.username,
        password=args.password,
    ).start()
    t0 = time.monotonic()
    last = None
    try:
        while not args.run_s or time.monotonic() - t0 < args.run_s:
            time.sleep(0.2)
            top = store.query("leaderboard")
            if top != last:
                last = top
                print("GLOBAL %s" % (top,), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        bridge.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
