# sensor_windows device: per-window temperature aggregates, kept offline, pruned when old.
#
# CRDT composition (all existing types):
#   "tsum"    AWMap window -> GCounter: sum of readings in centi-kelvin (never negative, so a
#             GCounter holds it); each device adds to its own slot
#   "tcount"  AWMap window -> GCounter: number of readings
#   "window"  MaxRegister: the current window index, set by the server from its clock
#             (devices have no wall clock); the device asks for it (interest)
# The global average of window w, over every device, is sum(tsum[w]) / sum(tcount[w]).
#
# Time: the device uses the server's window index and, between two announcements (or
# offline), advances it by its own ticks: window = last announced + elapsed // WINDOW_MS.
# The index it uses never goes back (persisted as app data across reboots; after a reboot
# offline it resumes at the persisted window). Before the very first announcement the
# device has no time base at all and takes no readings. Windows older than KEEP_WINDOWS are pruned
# locally once the gateway acknowledged them (Device.prune): RAM and flash stay bounded
# while online; offline, unacknowledged windows are kept (they are the only copy).
import config
from lasp_device import hw
from lasp_device.app import HeapProbe, Oracle, Settings, device_from_settings, mqtt_factory, run
from lasp_edge.crdts.awmap import AWMap
from lasp_edge.crdts.maxregister import MaxRegister

try:
    from time import ticks_add, ticks_diff, ticks_ms  # MicroPython
except ImportError:  # CPython (the emulator runs this app there)
    from lasp_device.ticks import ticks_add, ticks_diff, ticks_ms

s = Settings(config)
_KELVIN_CC = 27315  # 0 degrees C in centi-kelvin


class Sensor:
    def __init__(self, dev, window_ms, keep, sample_ms, oracle):
        self.dev = dev
        self.window_ms = window_ms
        self.keep = keep
        self.sample_ms = sample_ms
        self.oracle = oracle
        self.known = dev.app.get("window", 0)  # the window index we last used
        self.base = self.known  # announced (or recovered) index...
        self.base_at = ticks_ms()  # ...and when we learned it
        self.next_sample = self.base_at
        self.readings = 0
        # readings over all windows and boots (pruned windows included), kept as app data:
        # it is in the same snapshot as the windows it counts
        self.n = dev.app.get("n", 0)

    def announced(self, names):
        if "window" in names:
            w = self.dev.value("window")
            if w > self.current(ticks_ms()):
                self.base = w
                self.base_at = ticks_ms()
                print("window", w, "(from the server)")

    def current(self, now):
        if not self.base:
            return 0  # no time base yet: ticks alone must not invent windows 1, 2, ...
        w = self.base + ticks_diff(now, self.base_at) // self.window_ms
        return w if w > self.known else self.known

    def step(self, now):
        if ticks_diff(now, self.next_sample) < 0:
            return 0
        self.next_sample = ticks_add(now, self.sample_ms)
        w = self.current(now)
        if not w:
            return 0  # no time base yet: wait for the server's first window announcement
        dev = self.dev
        if w != self.known:
            self.known = w
            dev.set_app("window", w)
            self.prune()
        ck = hw.temperature_cc() + _KELVIN_CC
        self.readings += 1
        self.n += 1
        dev.update("tsum", "update", w, "increment", dev.id, ck)
        dev.update("tcount", "update", w, "increment", dev.id, 1)
        dev.set_app("n", self.n)
        return 1

    def prune(self):
        oldest = self.known - self.keep + 1
        for name in ("tsum", "tcount"):
            self.dev.prune(name, lambda w: w >= oldest)

    def flushed(self, done):
        self.oracle.write("D" if done else "B", self.dev.node.epoch, self.n)


def main():
    dev_id = s.DEVICE_ID or ("th-" + hw.unique_id())
    probe = HeapProbe() if s.get("HEAP_PROBE", False) else None
    dev = device_from_settings(s, dev_id, ("window",))
    dev.declare("tsum", AWMap("gcounter"))
    dev.declare("tcount", AWMap("gcounter"))
    dev.declare("window", MaxRegister())
    # the MQTT session first: it connects only in poll(), and its long-lived objects then
    # sit below recovery's garbage instead of in its holes (micropython/README.md, "RAM")
    dev.connect(mqtt_factory(s, dev_id), backoff_cap_ms=s.get("BACKOFF_CAP_MS", 30000))
    epoch = dev.start()
    oracle = Oracle(s.ORACLE)
    sensor = Sensor(
        dev,
        s.get("WINDOW_MS", 300000),
        s.get("KEEP_WINDOWS", 6),
        s.get("SAMPLE_MS", 10000),
        oracle,
    )
    oracle.write("R", epoch, sensor.n)
    print("boot epoch=%d window=%d readings=%d" % (epoch, sensor.known, sensor.n))
    dev.on_change = sensor.announced
    dev.on_flush = sensor.flushed
    if probe is not None:
        dev.probe = probe.sample
    hw.wifi(s.WIFI_SSID, s.WIFI_PASSWORD)
    if probe is not None:
        probe.base = probe.sample()
    ok = run(dev, sensor.step, s, probe)
    sensor.prune()
    oracle.write("F", dev.node.epoch, sensor.n, 1 if ok else 0)
    print("KEPT %s" % (sorted(dev.var("tcount").keys()),))
    print("TOTAL n=%d" % sensor.n)
    print("DONE readings=%d synced=%s" % (sensor.readings, ok))
    if probe is not None:
        print(probe.report())


main()
