"""The main-loop scaffolding shared by the firmware examples (so each main.py is its app).

* ``Settings(config_module)``: ``s.NAME`` reads ``config.NAME``, overridden on unix by
  ``$LASP_NAME`` (see ``hw.setting``).
* ``device_from_settings(s, dev_id, interests)``: the ``Device`` with the flush and sync
  policy taken from the settings.
* ``mqtt_factory(s, client_id)``: ``make_client()`` for ``Device.connect``, building a
  ``lasp_device.mqtt.MQTTClient`` (or micropython-lib's ``umqtt.simple`` when the bundled
  client is absent) from BROKER_HOST/PORT/USER/PASSWORD and KEEPALIVE_S.
* ``HeapProbe``: peak live heap (``gc.collect(); gc.mem_alloc()``) sampled in the loop and
  at the device's high-water points (``Device.probe``: snapshot encoded, before the write).
* ``Oracle``: appends lines to a file (unix tests): what was flushed, for exact checks.
* ``run(dev, step, s)``: the loop. ``step(now)`` does the app's work for one pass and
  returns how many updates it made; ITERATIONS (0 = forever) bounds the updates, then the
  device syncs for up to DRAIN_MS and closes. SYNC_EVERY forces a full round trip every N
  updates (the heap benchmark's "sync cycles"). GC_THRESHOLD (bytes, default 2048) is
  passed to ``gc.threshold`` for the loop: see ``run``.
"""

import gc

from lasp_device import hw
try:
    from time import sleep_ms, ticks_diff, ticks_ms  # MicroPython
except ImportError:  # CPython: lasp_device.ticks (a device never loads that module)
    from lasp_device.ticks import sleep_ms, ticks_diff, ticks_ms


class Settings:
    def __init__(self, cfg):
        self._cfg = cfg

    def get(self, name, default=None):
        return hw.setting(self._cfg, name, default)

    def __getattr__(self, name):
        return hw.setting(self._cfg, name, None)


def device_from_settings(s, dev_id, interests):
    """The ``Device`` an example runs, configured from its settings (config.py / $LASP_*)."""
    from lasp_device.device import Device

    return Device(
        dev_id,
        path=s.get("STORE_PATH", "/lasp"),
        gateway=s.get("GATEWAY_ID", "gw"),
        interests=interests,
        sync_period_ms=s.get("SYNC_PERIOD_MS", 10000),
        flush_every=s.get("FLUSH_EVERY", 100),
        flush_ms=s.get("FLUSH_MS", 10000),
    )


def mqtt_factory(s, client_id):
    try:
        from lasp_device.mqtt import MQTTClient
    except ImportError:
        from umqtt.simple import MQTTClient  # type: ignore[no-redef]

    host = s.BROKER_HOST
    port = s.get("BROKER_PORT", 1883)
    user = s.BROKER_USER
    pw = s.BROKER_PASSWORD
    ka = s.get("KEEPALIVE_S", 30)
    cid = "%s" % (client_id,)

    def make():
        return MQTTClient(cid, host, port, user, pw, keepalive=ka)

    return make


class HeapProbe:
    def __init__(self):
        self.peak = 0
        self.base = 0  # live heap once the code is imported and the device started
        self.samples = 0

    def sample(self):
        gc.collect()
        a = gc.mem_alloc()
        self.samples += 1
        if a > self.peak:
            self.peak = a
        return a

    def report(self):
        end = self.sample()  # live heap at the end: equal to the start if nothing leaked
        return "HEAP peak=%d base=%d data=%d end=%d samples=%d total=%d" % (
            self.peak,
            self.base,
            self.peak - self.base,
            end,
            self.samples,
            gc.mem_alloc() + gc.mem_free(),
        )


class Oracle:
    def __init__(self, path):
        self.path = path

    def write(self, *fields):
        if self.path:
            with open(self.path, "a") as f:
                f.write(" ".join("%s" % (x,) for x in fields) + "\n")


def run(dev, step, s, probe=None, log=print):
    """Run the main loop; returns True if a bounded run ended fully synchronised.

    Before the loop the heap is collected and ``gc.threshold`` set to GC_THRESHOLD bytes
    (0 leaves MicroPython's default: collect only when an allocation fails). Why: the loop
    allocates small long-lived objects (state, log segments) among short-lived ones (deltas,
    messages, encodings). Collected only when the heap is full, the survivors end up spread
    over the whole heap and the free space between them is too fragmented for the next
    encoding; collected every few KB, new objects keep filling the same low holes. On the
    unix port this is the difference between the ad counter needing 80K and 72K.
    """
    gc.collect()
    threshold = s.get("GC_THRESHOLD", 2048)
    if threshold and hasattr(gc, "threshold"):  # MicroPython only
        gc.threshold(threshold)
    iterations = s.get("ITERATIONS", 0)
    sync_every = s.get("SYNC_EVERY", 0)
    loop_ms = s.get("LOOP_MS", 10)
    max_run = s.get("MAX_RUN_MS", 0)
    t0 = ticks_ms()
    done = 0
    since_sync = 0
    syncs = 0
    sample_every = 50
    n = 0
    while not iterations or done < iterations:
        now = ticks_ms()
        k = step(now)
        done += k
        since_sync += k
        dev.poll(now)
        n += 1
        if probe is not None and n % sample_every == 0:
            probe.sample()
        if sync_every and since_sync >= sync_every:
            since_sync = 0
            if dev.sync(s.get("DRAIN_MS", 10000)):
                syncs += 1
        if max_run and ticks_diff(ticks_ms(), t0) >= max_run:
            log("max run time reached after %d updates" % done)
            break
        if loop_ms:
            sleep_ms(min(loop_ms, dev.next_wakeup_ms()))
    ok = dev.sync(s.get("DRAIN_MS", 10000))
    if probe is not None:
        probe.sample()
    log(
        "SYNC ok=%s updates=%d syncs=%d acked=%d sent=%d flushes=%d connects=%d"
        % (ok, done, syncs, dev.acked, dev.sent, dev.store.writes, dev.connects)
    )
    t = dev.transport
    if not ok and t is not None and t.last_error is not None:
        log("link error: %r" % (t.last_error,))
    dev.close()
    return ok
