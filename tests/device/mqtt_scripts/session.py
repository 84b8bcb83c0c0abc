# Incoming QoS 1 on MicroPython: the client must PUBACK, or the broker redelivers the message
# when a persistent session resumes. The test publishes "first" while we are connected and
# "away" while we are not; on resuming, "away" must arrive and "first" must not come again
# (mosquitto resends unacknowledged messages before queued ones, so "away" marks the point).
#
# Usage: micropython session.py PORT; reads one line from stdin after "AWAY".
import sys
import time

from lasp_device.mqtt import MQTTClient

PORT = int(sys.argv[1])
got = []


def fail(why):
    print("FAIL", why)
    sys.exit(1)


def until(c, cond, what, ms=5000):
    t0 = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), t0) > ms:
            fail("timeout: " + what)
        if c.check_msg() is None:
            time.sleep_ms(2)


def client():
    c = MQTTClient("mp-session", "127.0.0.1", PORT, timeout=5)
    c.set_callback(lambda t, m: got.append(m))
    return c


c = client()
c.connect(clean_session=True)  # start from no stored session
c.disconnect()
c = client()
print("SESSION", c.connect(clean_session=False))
c.subscribe(b"t/sess", 1)
print("READY")
until(c, lambda: got, "first")
print("IN", got.pop())
c.disconnect()
print("AWAY")
sys.stdin.readline()
c = client()
print("SESSION", c.connect(clean_session=False))
until(c, lambda: b"away" in got, "away")
print("GOT", b",".join(got))
c.disconnect()
print("DONE")
