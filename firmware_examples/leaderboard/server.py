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

The same program runs in ``lasp-edge aggregator`` (behind a gateway) as ``program``, with
K from ``LASP_K`` (default 10)::

    LASP_K=10 lasp-edge aggregator --program firmware_examples/leaderboard/server.py:program ...
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # server_bridge
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from server_bridge import bridge_for, print_changes, server_args  # noqa: E402

from lasp_edge.store import Store  # noqa: E402


def declare_program(store, k):
    store.declare_dynamic("local_top", "topk", k=k)
    store.fold_dynamic("local_top", None, "leaderboard")


def program(store):
    """The aggregator program (its K must match the devices', as ``--k`` does)."""
    declare_program(store, int(os.environ.get("LASP_K", "10")))


def main(argv=None):
    ap = server_args(__doc__.split("\n")[0], "leaderboard_server")
    ap.add_argument("--k", type=int, default=10, help="must match the devices' K")
    ap.add_argument("--evict", action="append", default=[], help="drop a device's slot")
    args = ap.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    store = Store("server", os.path.join(args.state_dir, "store.db"))
    declare_program(store, args.k)
    for dev in args.evict:
        store.evict("leaderboard", dev)
    bridge = bridge_for(
        store, args, writable=("leaderboard",), keyed=("leaderboard",), down=()
    ).start()
    try:
        print_changes(args.run_s, lambda: store.query("leaderboard"), lambda v: "GLOBAL %s" % (v,))
    finally:
        bridge.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
