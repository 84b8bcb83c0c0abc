"""lasp_device: the MicroPython runtime of lasp-edge (flashed to devices, not pip-installed).

Modules, imported lazily by the app so a device only pays RAM for what it uses:

* ``device``     ``Device``: declared variables, offline updates, flash durability, sync
* ``flashstore`` crash-safe snapshot file (temp file + atomic rename)
* ``recovery``   boot-only: reads the store back, restores the node, FAT detection;
  ``Device.start()`` unloads it again
* ``ticks``      ``ticks_ms``/``ticks_diff``/``ticks_add`` (MicroPython, or a CPython shim)
* ``hw``         tiny hardware shims (WiFi, button, LED, temperature) with unix fallbacks
* ``transport``  MQTT session with reconnect and backoff; ``mqtt`` a umqtt.simple client
  (unix bundle only by default: boards use umqtt.simple itself);
  ``meter`` counts socket reads for third-party clients (loaded only for them)
* ``sensors``    the LED and temperature sensor that ``hw`` re-exports (loaded on first use)

See micropython/README.md.
"""

__version__ = "0.1.0"
