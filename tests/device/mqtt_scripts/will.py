# The transport registers the last will before connecting; the test SIGKILLs this process and
# expects the broker to publish the will to le/u/<id>.
#
# Usage: micropython will.py PORT ID. Prints "READY" once online, then polls until killed.
import sys
import time

from lasp_device.mqtt import MQTTClient
from lasp_device.transport import Transport

PORT = int(sys.argv[1])
DEV = sys.argv[2]
tr = Transport(lambda: MQTTClient(DEV, "127.0.0.1", PORT, keepalive=10, timeout=5))
tr.set_will("le/u/" + DEV, lambda: b"DEATH:" + DEV.encode())  # evaluated at connect
tr.subscribe("le/d/" + DEV)
t0 = time.ticks_ms()
while not tr.poll(time.ticks_ms()):
    if time.ticks_diff(time.ticks_ms(), t0) > 5000:
        print("FAIL not online", repr(tr.last_error))
        sys.exit(1)
    time.sleep_ms(10)
print("READY")
while time.ticks_diff(time.ticks_ms(), t0) < 30000:
    tr.poll(time.ticks_ms())
    time.sleep_ms(10)
print("FAIL not killed")
sys.exit(1)
