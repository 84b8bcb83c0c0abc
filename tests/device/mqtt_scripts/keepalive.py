# The transport's timers, driven by a virtual clock against a real broker; runs on MicroPython
# (as a script) and on CPython (tests import it and call run()). The clock starts 300 ms
# before the ticks wrap, so the ping schedule and the dead-link check are exercised across it.
#
# Usage: micropython keepalive.py PORT DEAD_PORT (DEAD_PORT: nothing listens there).
# Prints "ok <step>" lines and "DONE"; raises (exit 1) on the first failed check.
import sys
import time

KA_MS = 1000  # the client's keepalive is 1 s


def run(MQTTClient, Transport, port, dead_port, out=print):
    mp = hasattr(time, "ticks_add")
    # ticks period - 1: 2**30 - 1 on 32-bit ports, 2**62 - 1 on the 64-bit unix port, and
    # 2**30 - 1 on CPython (the transport's fallback ticks_diff, as lasp_device.ticks).
    mask = time.ticks_add(0, -1) if mp else (1 << 30) - 1
    start = mask - 299  # at(300) == 0: the clock wraps 300 ms in

    def at(ms):
        return (start + ms) & mask

    def now_real():
        return time.ticks_ms() if mp else int(time.monotonic() * 1000)

    def check(cond, what):
        if not cond:
            raise AssertionError(what)
        out("ok " + what)

    class Client(MQTTClient):
        # The real client, counting what the checks need to see, and hiding PINGRESP from
        # the transport as umqtt.simple does: the transport must notice it by itself.
        def __init__(self, *a, **k):
            MQTTClient.__init__(self, *a, **k)
            self.pings = 0
            self.pongs = 0

        def ping(self):
            self.pings += 1
            MQTTClient.ping(self)

        def check_msg(self):
            r = MQTTClient.check_msg(self)
            if r == 0xD0:
                self.pongs += 1
                return None
            return r

    made = []

    def make(p=port):
        c = Client("ka-check", "127.0.0.1", p, keepalive=KA_MS // 1000, timeout=5)
        made.append(c)
        return c

    got = []
    tr = Transport(make, on_message=lambda t, m: got.append(m))

    def settle(vt, cond, what):
        # Poll at a fixed virtual time until ``cond`` holds; bounded in real time.
        t0 = now_real()
        while not cond():
            if now_real() - t0 > 5000:
                raise AssertionError("timeout: " + what)
            tr.poll(at(vt))
            time.sleep(0.002)

    check(tr.poll(at(0)) and tr.connects == 1, "online after the first poll")
    c = made[-1]
    tr.poll(at(KA_MS // 2 - 1))
    check(c.pings == 0, "no ping before keepalive/2")
    tr.poll(at(KA_MS // 2))  # crosses the wrap
    check(c.pings == 1, "ping at keepalive/2 of silence")
    settle(KA_MS // 2, lambda: c.pongs == 1, "PINGRESP")
    tr.poll(at(KA_MS - 1))
    check(c.pings == 1 and tr.online, "next ping waits another keepalive/2")
    tr.poll(at(KA_MS))
    check(c.pings == 2, "second ping")
    settle(KA_MS, lambda: c.pongs == 2, "second PINGRESP")
    t = KA_MS + KA_MS * 2 // 5
    tr.poll(at(t))
    check(c.pings == 2 and tr.publish("t/none", b"busy"), "publish keeps the sender busy")
    tr.poll(at(KA_MS * 3 // 2))
    check(c.pings == 3, "ping when nothing was received for keepalive/2, even while sending")
    settle(KA_MS * 3 // 2, lambda: c.pongs == 3, "third PINGRESP")
    tr.poll(at(KA_MS * 3 // 2 + KA_MS * 3 // 2 - 1))
    check(tr.online and tr.connects == 1, "alive just under 1.5 x keepalive after traffic")
    settle(KA_MS * 3 - 1, lambda: c.pongs == 4, "fourth PINGRESP")  # before the clock jumps

    t = 4 * KA_MS
    tr.poll(at(t))
    tr.subscribe("t/ka")
    check(tr.publish("t/ka", b"x"), "publish online")
    settle(t, lambda: got == [b"x"], "message back through the subscription")

    tr.close()
    check(not tr.poll(at(t + 1)) and not tr.online, "closed stays offline")
    check(not tr.publish("t/ka", b"y") and tr.publish_failures == 1, "publish offline: False")

    # Backoff against a port where nothing listens: base 100, cap 400, jitter 50.
    tr = Transport(lambda: make(dead_port), backoff_base_ms=100, backoff_cap_ms=400, jitter_ms=50)
    t = 6 * KA_MS
    check(not tr.poll(at(t)) and tr.attempts == 1, "refused connection fails")
    for n, base in ((1, 100), (2, 200), (3, 400), (4, 400)):
        check(base <= tr.retry_in < base + 50, "attempt %d waits %d + jitter" % (n, base))
        tr.poll(at(t + tr.retry_in - 1))
        check(tr.attempts == n, "no attempt before the backoff elapsed (%d)" % n)
        t += tr.retry_in
        tr.poll(at(t))
        check(tr.attempts == n + 1, "attempt once the backoff elapsed (%d)" % n)
    check(tr.connects == 0 and isinstance(tr.last_error, OSError), "error kept")
    out("DONE")


if __name__ == "__main__":
    from lasp_device.mqtt import MQTTClient
    from lasp_device.transport import Transport

    run(MQTTClient, Transport, int(sys.argv[1]), int(sys.argv[2]))
