# leaderboard device: a reaction game; each device keeps the top-k of its own games.
#
# Press the button as soon as the LED lights up: score = 1000 - reaction time in ms. The
# device's best K (player, score) pairs are a TopK kept in RAM and published as this
# device's slot of "leaderboard", an AWMap device id -> LWWRegister(typed TopK, version):
# exactly the replicated shape of the Store's fold_dynamic global, so the server folds
# every device's top-k into the global top-k (see server.py). The device also asks for
# "leaderboard" (interest), so it can show the global top-k it has heard about.
import config
from lasp_device import hw
from lasp_device.app import HeapProbe, Oracle, Settings, device_from_settings, mqtt_factory, run
from lasp_edge.crdts.awmap import AWMap
from lasp_edge.crdts.topk import TopK

try:
    from time import ticks_add, ticks_diff  # MicroPython
except ImportError:  # CPython (the emulator runs this app there)
    from lasp_device.ticks import ticks_add, ticks_diff

s = Settings(config)
_TOPK_TAG = 10  # TopK.TAG: a slot holds [tag, wire form], as the Store's codec writes it


class Game:
    def __init__(self, dev, k, players, button, led, oracle, round_ms=1000):
        self.dev = dev
        self.k = k
        self.players = players
        self.button = button
        self.led = led
        self.oracle = oracle
        self.round_ms = max(2, round_ms)
        self.turn = 0
        self.games = 0
        self.lit_at = None
        self.wait_until = None
        self.local = TopK(k)
        self.version = 0
        mine = dev.var("leaderboard").get(dev.id)  # recovered slot: our top-k and version
        if mine is not None and mine.value() is not None:
            self.version = mine.to_wire()[0]
            self.local = TopK.from_wire(mine.value()[1])

    def start_round(self, now):
        self.led.set(False)
        self.lit_at = None
        self.wait_until = ticks_add(now, self.round_ms // 5 + hw.rand(self.round_ms * 4 // 5))

    def step(self, now):
        if self.wait_until is None:
            self.start_round(now)
        if self.lit_at is None:
            if ticks_diff(now, self.wait_until) >= 0:
                self.lit_at = now
                self.led.set(True)
            self.button.pressed(now)  # a press before the light is ignored
            return 0
        if not self.button.pressed(now):
            return 0
        score = max(0, 1000 - ticks_diff(now, self.lit_at))
        self.record(self.players[self.turn % len(self.players)], score)
        self.turn += 1
        self.start_round(now)
        return 1

    def record(self, player, score):
        self.games += 1
        if self.local.add(player, score).is_bottom():
            return  # not better than what we hold
        self.version += 1
        dev = self.dev
        dev.update(
            "leaderboard",
            "update",
            dev.id,
            "set",
            [_TOPK_TAG, self.local.to_wire()],
            self.version,
            dev.id,
        )

    def global_top(self):
        """The join of every slot heard of: the global top-k as far as this device knows."""
        top = TopK(self.k)
        lb = self.dev.var("leaderboard")
        for key in lb.keys():
            v = lb.get(key).value()
            if v is not None and v[0] == _TOPK_TAG and v[1][0] == self.k:
                top.merge(TopK.from_wire(v[1]))
        return top.value()

    def flushed(self, done):
        self.oracle.write("D" if done else "B", self.dev.node.epoch, self.version)


def main():
    dev_id = s.DEVICE_ID or ("lb-" + hw.unique_id())
    k = s.get("K", 10)
    probe = HeapProbe() if s.get("HEAP_PROBE", False) else None
    dev = device_from_settings(s, dev_id, ("leaderboard",))
    dev.declare("leaderboard", AWMap("lwwregister"))
    # the MQTT session first: it connects only in poll(), and its long-lived objects then
    # sit below recovery's garbage instead of in its holes (micropython/README.md, "RAM")
    dev.connect(mqtt_factory(s, dev_id), backoff_cap_ms=s.get("BACKOFF_CAP_MS", 30000))
    epoch = dev.start()
    oracle = Oracle(s.ORACLE)
    players = (s.get("PLAYERS", "ann,bob") or "ann").split(",")
    game = Game(
        dev,
        k,
        players,
        hw.Button(s.BUTTON_PIN, s.get("VIEW_MS", 2000)),
        hw.Led(s.LED_PIN),
        oracle,
        s.get("ROUND_MS", 1000),
    )
    oracle.write("R", epoch, game.version)
    print("boot epoch=%d local top=%s" % (epoch, game.local.value()))
    dev.on_flush = game.flushed
    dev.on_change = lambda names: print("global top:", game.global_top())
    if probe is not None:
        dev.probe = probe.sample
    hw.wifi(s.WIFI_SSID, s.WIFI_PASSWORD)
    if probe is not None:
        probe.base = probe.sample()
    ok = run(dev, game.step, s, probe)
    oracle.write("F", dev.node.epoch, game.version, 1 if ok else 0)
    print("LOCAL %s" % (game.local.to_wire(),))
    print("GLOBAL %s" % (game.global_top(),))
    print("DONE games=%d synced=%s" % (game.games, ok))
    if probe is not None:
        print(probe.report())


main()
