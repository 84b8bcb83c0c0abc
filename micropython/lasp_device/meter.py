"""A counting wrapper for an MQTT client's socket (used by ``lasp_device.transport``).

umqtt.simple reads PINGRESP and drops it without a trace, so the transport cannot tell a
quiet healthy link from a dead one by the packets the client reports. Wrapping the client's
socket and counting successful reads gives it that evidence. Its own module so that a
client that counts reads itself (the bundled ``lasp_device.mqtt.MQTTClient``) never loads
it: on MicroPython a class costs heap once imported, even from flash.
"""


class Meter:
    """Wraps a client's socket and counts successful reads: proof the broker answers."""

    def __init__(self, sock):
        self.s = sock
        self.rx = 0

    def read(self, *a):
        d = self.s.read(*a)
        if d:
            self.rx += 1
        return d

    def readinto(self, *a):
        n = self.s.readinto(*a)
        if n:
            self.rx += 1
        return n

    def recv(self, *a):
        d = self.s.recv(*a)
        if d:
            self.rx += 1
        return d

    def recv_into(self, *a):
        n = self.s.recv_into(*a)
        if n:
            self.rx += 1
        return n

    def write(self, *a):
        return self.s.write(*a)

    def send(self, *a):
        return self.s.send(*a)

    def sendall(self, *a):
        return self.s.sendall(*a)

    def setblocking(self, f):
        return self.s.setblocking(f)

    def settimeout(self, t):
        return self.s.settimeout(t)

    def setsockopt(self, *a):
        return self.s.setsockopt(*a)

    def close(self):
        return self.s.close()

    def __getattr__(self, name):
        return getattr(self.s, name)
