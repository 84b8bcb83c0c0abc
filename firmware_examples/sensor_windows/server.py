"""sensor_windows server: the global average temperature per window, over every device.

The Lasp program (a ``lasp_edge.store.Store``, durable in SQLite)::

    tsum    AWMap window -> GCounter   sum of readings in centi-kelvin, one slot per device
    tcount  AWMap window -> GCounter   number of readings
    window  MaxRegister                the current window index, from this server's clock

The server is the only clock: every second it sets ``window`` to
``(now_ms - ORIGIN_MS) // WINDOW_MS`` and the bridge ships it to the devices (their
interest). The global average of window ``w`` is ``tsum[w] / tcount[w]``, printed for
the last ``--show`` windows. ORIGIN_MS (2024-01-01) keeps indexes small ints on devices.

    .venv/bin/python firmware_examples/sensor_windows/server.py --broker 127.0.0.1

The same program runs in ``lasp-edge aggregator`` (behind a gateway) as ``program``::

    lasp-edge aggregator --program firmware_examples/sensor_windows/server.py:program ...
"""

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # server_bridge
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from server_bridge import bridge_for, server_args  # noqa: E402

from lasp_edge.store import Store, StoreClosedError  # noqa: E402

ORIGIN_MS = 1704067200000  # 2024-01-01T00:00:00Z
KELVIN_CC = 27315


def declare_program(store):
    store.declare("tsum", "awmap", vtype="gcounter")
    store.declare("tcount", "awmap", vtype="gcounter")
    store.declare("window", "maxregister")


def announce(store, window_ms):
    """Set ``window`` to the current window index (it only grows); returns the index."""
    w = (int(time.time() * 1000) - ORIGIN_MS) // window_ms
    if w > store.query("window"):
        store.update("window", "set", w)
    return w


def program(store):
    """The aggregator program: the variables, and the clock as a thread of its own.

    Its settings come from the environment, since the aggregator is a process of its own:
    ``LASP_WINDOW_MS`` (default 300000; must match the devices) and ``LASP_CLOCK_S``: stop
    announcing windows after this many seconds (default 0: never). A run with an end, such
    as ``lasp-edge emulate``, stops the clock so that every device can converge on the last
    window (devices keep advancing their own index from their ticks meanwhile). Only the
    trusted replica keeps the clock: one server is the time base.
    """
    declare_program(store)
    if not getattr(store, "trusted", True):
        return
    window_ms = int(os.environ.get("LASP_WINDOW_MS", "300000"))
    clock_s = float(os.environ.get("LASP_CLOCK_S", "0"))

    def clock():
        t0 = time.monotonic()
        while not clock_s or time.monotonic() - t0 < clock_s:
            try:
                announce(store, window_ms)
            except StoreClosedError:
                return  # the aggregator is stopping
            time.sleep(0.2)

    threading.Thread(target=clock, name="window-clock", daemon=True).start()


def averages(store):
    """``{window: (average degrees C, readings)}`` over every device."""
    sums = store.query("tsum")
    counts = store.query("tcount")
    out = {}
    for w, n in counts.items():
        if n:
            out[w] = ((sums.get(w, 0) / n - KELVIN_CC) / 100.0, n)
    return out


def main(argv=None):
    ap = server_args(__doc__.split("\n")[0], "sensor_server")
    ap.add_argument("--window-ms", type=int, default=300000, help="must match the devices")
    ap.add_argument("--show", type=int, default=6, help="windows printed")
    args = ap.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    store = Store("server", os.path.join(args.state_dir, "store.db"))
    declare_program(store)
    bridge = bridge_for(store, args, writable=("tsum", "tcount"), down=("window",)).start()
    t0 = time.monotonic()
    last = None
    try:
        while not args.run_s or time.monotonic() - t0 < args.run_s:
            w = announce(store, args.window_ms)
            with bridge.lock:  # tsum and tcount of one delta are bound under this lock
                avg = averages(store)
            shown = sorted(avg.items())[-args.show :]
            if shown != last:
                last = shown
                print(
                    "window %d | %s"
                    % (w, "  ".join("w%d: %.2f C (%d)" % (k, a, n) for k, (a, n) in shown)),
                    flush=True,
                )
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        print("TOTAL readings=%d" % sum(store.query("tcount").values()), flush=True)
        bridge.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
