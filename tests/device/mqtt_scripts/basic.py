# The MQTT client on MicroPython against a real broker: connect, subscribe, publish QoS 0 and
# 1 (echoed back through our own subscription), a 3-byte remaining length, PINGRESP, and a
# message published by the test (paho) at QoS 1.
#
# Usage: micropython basic.py PORT. Prints HEAP/SESSION/ECHO/BIG/PINGRESP/READY/IN lines,
# then "DONE"; "FAIL <why>" and exit 1 on any failure; every wait is bounded.
import gc
import sys
import time

gc.collect()
_h0 = gc.mem_alloc()
from lasp_device.mqtt import MQTTClient  # noqa: E402

gc.collect()
_h1 = gc.mem_alloc()
from lasp_device.transport import Transport  # noqa: E402, F401

gc.collect()
print("HEAP mqtt=%d transport=%d" % (_h1 - _h0, gc.mem_alloc() - _h1))

PORT = int(sys.argv[1])
got = []


def fail(why):
    print("FAIL", why)
    sys.exit(1)


def on_msg(topic, msg):
    got.append((topic, msg))


def until(cond, what, ms=5000):
    t0 = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), t0) > ms:
            fail("timeout: " + what)
        if c.check_msg() is None:
            time.sleep_ms(2)


def take(topic):
    for i in range(len(got)):
        if got[i][0] == topic:
            return got.pop(i)[1]
    return None


c = MQTTClient("mp-basic", "127.0.0.1", PORT, keepalive=30, timeout=5)
c.set_callback(on_msg)
print("SESSION", c.connect())
c.subscribe(b"t/basic/#", 1)
c.subscribe("t/str", 0)  # str topics work too

c.publish(b"t/basic/q0", b"zero")
c.publish("t/basic/q1", "one", qos=1)  # returns once the matching PUBACK arrived
until(lambda: len(got) >= 2, "echo of q0 and q1")
print("ECHO", take(b"t/basic/q0"), take(b"t/basic/q1"))

big = bytes(range(256)) * 66  # 16896 bytes: remaining length takes 3 bytes
c.publish(b"t/basic/big", big, qos=1)
until(lambda: got, "big echo")
back = take(b"t/basic/big")
print("BIG", len(back), back == big)
del big, back
gc.collect()

c.ping()
pongs = []


def pong():
    r = c.check_msg()
    if r == 0xD0:
        pongs.append(r)
    return pongs


t0 = time.ticks_ms()
while not pong():
    if time.ticks_diff(time.ticks_ms(), t0) > 5000:
        fail("no PINGRESP")
    time.sleep_ms(2)
print("PINGRESP", hex(pongs[0]))

print("READY")  # the test now publishes to t/basic/in with QoS 1
until(lambda: got, "message from the test", 10000)
topic, msg = got.pop()
print("IN", topic, msg)
c.disconnect()
print("DONE")
