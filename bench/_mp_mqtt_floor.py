# MicroPython program: the floor of bench_device_footprint.py. Not a benchmark script itself
# (run_all runs bench_*.py only); the footprint benchmark runs it on the unix port.
#
#   micropython -X heapsize=64K bench/_mp_mqtt_floor.py HOST PORT N
#
# It does what a device that only speaks MQTT does, with the runtime's umqtt.simple-
# compatible client (lasp_device.mqtt; umqtt.simple itself is not installable here): import
# the client, connect, publish N small messages at QoS 0 and 1, disconnect. It prints
#   FLOOR start=<bytes> imported=<bytes> peak=<bytes> end=<bytes>
# where each figure is gc.mem_alloc() right after gc.collect(), the same probe the firmware
# examples' HeapProbe uses, so the two are comparable.
import gc
import sys

gc.collect()
start = gc.mem_alloc()
from lasp_device.mqtt import MQTTClient  # noqa: E402

gc.collect()
imported = gc.mem_alloc()
peak = imported


def sample():
    global peak
    gc.collect()
    a = gc.mem_alloc()
    if a > peak:
        peak = a
    return a


host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = MQTTClient("floor", host, port, None, None, keepalive=30)
c.connect()
sample()
payload = b"\x8a\x01\x03\x07\x01\x01\x01\x00\x01\xf4\xa1\x61\x63\x82\x01\xa1\x07\x01"
for i in range(n):
    c.publish(b"le/u/floor", payload, False, i & 1)
    sample()
c.disconnect()
print("FLOOR start=%d imported=%d peak=%d end=%d" % (start, imported, peak, sample()))
