# A device main loop on MicroPython: the transport in real time, a heartbeat published every
# 200 ms (so the link is never idle on the sending side), every message on le/d/<id> echoed
# to le/u/<id>. The test pauses, stops and restarts the broker around it.
#
# Usage: micropython device_loop.py PORT ID. Prints, as they happen:
#   ONLINE <connects> <reconnects> | OFFLINE <errno> | RETRY <attempt> <delay_ms>
#   PUBFAIL <publish_failures> (first failed publish of an outage) | MSG <payload>
#   STABLE <connects> (online for 3 x keepalive without a drop) | BYE (after "quit")
# Gives up after 60 s ("FAIL timeout", exit 1).
import sys
import time

from lasp_device.mqtt import MQTTClient
from lasp_device.transport import Transport

PORT = int(sys.argv[1])
DEV = sys.argv[2]
UP = "le/u/" + DEV
DOWN = "le/d/" + DEV
KA_S = 1
done = []


def on_message(topic, payload):
    print("MSG", payload)
    tr.publish(UP, b"echo:" + payload)
    if payload == b"quit":
        done.append(1)


tr = Transport(
    lambda: MQTTClient(DEV, "127.0.0.1", PORT, keepalive=KA_S, timeout=1),
    on_message=on_message,
    backoff_base_ms=100,
    backoff_cap_ms=800,
    jitter_ms=100,
)
tr.set_will(UP, b"DEATH:" + DEV.encode())
tr.subscribe(DOWN)

t0 = last_hb = time.ticks_ms()
was_online = False
attempts = 0
since = None
stable = False
pubfail = False
while not done:
    now = time.ticks_ms()
    if time.ticks_diff(now, t0) > 60000:
        print("FAIL timeout")
        sys.exit(1)
    online = tr.poll(now)
    if online != was_online:
        was_online = online
        if online:
            print("ONLINE", tr.connects, tr.reconnects)
            since = now
            stable = pubfail = False
            attempts = 0
        else:
            e = tr.last_error
            print("OFFLINE", e.args[0] if isinstance(e, OSError) else repr(e))
    if not online and tr.attempts != attempts:
        attempts = tr.attempts
        if attempts:
            print("RETRY", attempts, tr.retry_in)
    if online and not stable and time.ticks_diff(now, since) >= 3000 * KA_S:
        stable = True
        print("STABLE", tr.connects)
    if time.ticks_diff(now, last_hb) >= 200:
        last_hb = now
        if not tr.publish(UP, b"hb") and not pubfail:
            pubfail = True
            print("PUBFAIL", tr.publish_failures)
    time.sleep_ms(5)
tr.close()
print("BYE")
