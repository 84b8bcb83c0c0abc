"""lasp_device: the MicroPython runtime of lasp-edge (flashed to devices, not pip-installed).

Modules, imported lazily by the app so a device only pays RAM for what it uses:

* ``device``     ``Device``: declared variables, offline updates, flash durability, sync
* ``flashstore`` crash-safe snapshot file (temp file + atomic rename)
* ``recovery``   boot-only: reads the store back, restores the node, FAT detection;
  ``Device.start()`` unloads it again
* ``ticks``      CPython shim of ``time.ticks_ms``/``ticks_diff``/``ticks_add``/``sleep_ms`` (a
  device imports them from ``time`` and never loads this module)
* ``hw``         tiny hardware shims (WiFi, button, LED, temperature) with unix fallbacks
* ``transport``  MQTT session with reconnect and backoff; ``mqtt`` a umqtt.simple client
  (unix bundle only by default: boards use umqtt.simple itself);
  ``meter`` counts socket reads for third-party clients (loaded only for them)
* ``sensors``    the LED and temperature sensor that ``hw`` re-exports (loaded on first use)

See micropython/README.md.
"""

import gc

__version__ = "0.1.0"

# Collect every 2 KB allocated, from the first import on (MicroPython; run() sets the
# app's GC_THRESHOLD for the loop). Left at its default, MicroPython collects only when the
# heap is full: by then boot's garbage is spread among the modules' objects, and at 64K no
# free block over ~400 bytes is left for the next dict table (micropython/README.md, "RAM").
if hasattr(gc, "threshold"):
    gc.threshold(2048)

