# ad_counter device: counts ad impressions offline and syncs them when it can.
#
# Variables (shared with the gateway and the server, see server.py):
#   "ads"          AWSet of active ad ids. The server adds and removes ads; the device only
#                  reads it (interest: it is the one variable this device asks for).
#   "impressions"  AWMap ad id -> GCounter. Each device increments only its own slot, so
#                  the server's join is the exact total over the fleet.
#
# A press of the button (BOOT on ESP32; a simulated viewer on the unix port) is one
# impression of the ad currently shown; ads rotate in a fixed order. The count is kept in
# RAM and made durable by the runtime's flush policy (see micropython/README.md).
import gc

import config
from lasp_device import hw
from lasp_device.app import HeapProbe, Oracle, Settings, device_from_settings, mqtt_factory, run
from lasp_edge.crdts.awmap import AWMap
from lasp_edge.crdts.awset import AWSet

s = Settings(config)


def own_total(imps, me):
    """What this device counted, over all ads (its own GCounter slots)."""
    t = 0
    for ad in imps.keys():
        t += imps.get(ad).get(me)
    return t


class App:
    def __init__(self, dev, button, oracle):
        self.dev = dev
        self.button = button
        self.oracle = oracle
        self.shown = None  # sorted active ads
        self.turn = 0
        self.counted = 0  # this device's total, all boots included

    def ads_changed(self, names):
        if "ads" in names:
            self.shown = None
            print("active ads:", " ".join(self.ads()))

    def ads(self):
        if self.shown is None:
            self.shown = sorted(self.dev.var("ads").elements())
        return self.shown

    def flushed(self, done):
        # B before a flush, D after it returned: the store holds one of the two values.
        self.oracle.write("D" if done else "B", self.dev.node.epoch, self.counted)

    def step(self, now):
        if not self.button.pressed(now):
            return 0
        ads = self.ads()
        if not ads:
            return 0  # nothing to show yet (no ads heard of)
        self.turn = (self.turn + 1) % len(ads)
        dev = self.dev
        # counted first: a flush inside update() must report the value it persists
        self.counted += 1
        dev.update("impressions", "update", ads[self.turn], "increment", dev.id)
        return 1


def main():
    dev_id = s.DEVICE_ID or ("ad-" + hw.unique_id())
    probe = HeapProbe() if s.get("HEAP_PROBE", False) else None
    dev = device_from_settings(s, dev_id, ("ads",))
    dev.declare("ads", AWSet())
    dev.declare("impressions", AWMap("gcounter"))
    oracle = Oracle(s.ORACLE)
    app = App(dev, hw.Button(s.BUTTON_PIN, s.get("VIEW_MS", 3000)), oracle)
    # The MQTT session is built before start() (it connects only in poll(), after it): its
    # code and long-lived objects then sit together, below the short-lived garbage of
    # recovery, instead of in its holes (micropython/README.md, "RAM").
    dev.connect(mqtt_factory(s, dev_id), backoff_cap_ms=s.get("BACKOFF_CAP_MS", 30000))
    epoch = dev.start()  # recover, bump the boot counter, persist it: before any connection
    app.counted = own_total(dev.var("impressions"), dev.id)
    oracle.write("R", epoch, app.counted)
    print("boot epoch=%d counted=%d ads=%s" % (epoch, app.counted, " ".join(app.ads())))
    dev.on_change = app.ads_changed
    dev.on_flush = app.flushed
    if probe is not None:
        dev.probe = probe.sample
    hw.wifi(s.WIFI_SSID, s.WIFI_PASSWORD)
    gc.collect()
    if probe is not None:
        probe.base = probe.sample()
    ok = run(dev, app.step, s, probe)
    oracle.write("F", dev.node.epoch, app.counted, 1 if ok else 0)
    print("DONE counted=%d synced=%s" % (app.counted, ok))
    if probe is not None:
        print(probe.report())


main()
