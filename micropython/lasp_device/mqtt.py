"""A minimal MQTT 3.1.1 client with the ``umqtt.simple.MQTTClient`` interface.

Why this exists: devices flash micropython-lib's ``umqtt.simple``, which cannot be installed
here, so CI needs a client with the same interface to run the device code against a real
broker, on the MicroPython unix port and on CPython alike. It is small enough to ship on a
device too, and it fixes the umqtt.simple behaviours that hurt a device that runs for months:

- Every read after the first byte of a packet, and every write, is bounded by ``timeout``
  seconds; a broker that stops answering mid-packet raises ``OSError`` instead of hanging.
  Waiting for CONNACK, PUBACK and SUBACK is bounded the same way.
- ``check_msg()`` and ``wait_msg()`` return the packet type byte for *every* packet they
  read, including PINGRESP (``0xD0``), so a caller can tell that the broker is alive.
  umqtt.simple returns None for PINGRESP (indistinguishable from "nothing arrived").
- Packets it does not act on are read to their end, so the stream never desynchronises
  (umqtt.simple leaves their body in the socket).
- Packet ids wrap within 1..65535; a failed ``connect()`` closes its socket; any I/O error
  closes the socket, so a discarded client never leaks a descriptor.
- An incoming PUBLISH larger than ``max_packet`` is skipped (and still acknowledged), so a
  hostile or buggy peer cannot exhaust the heap.

Interface (as umqtt.simple): ``MQTTClient(client_id, server, port=0, user=None,
password=None, keepalive=0, ssl=None)`` plus optional ``timeout`` and ``max_packet``;
``set_callback(f)`` with ``f(topic, msg)`` (both ``bytes``), ``set_last_will``,
``connect(clean_session=True)`` -> session present, ``disconnect``, ``ping``, ``publish``
(QoS 0 and 1), ``subscribe`` (QoS 0 and 1, waits for SUBACK), ``wait_msg``, ``check_msg``.
``ssl`` is an SSL context (anything with ``wrap_socket(sock, server_hostname=...)``).
QoS 2 is not supported. Do not publish with QoS 1 from inside the callback: the nested wait
could consume the outer PUBACK.

Wire notes (MQTT 3.1.1): a packet is one type/flags byte, the remaining length (7 bits per
byte, least significant group first, high bit = "more follows", at most 4 bytes, so at most
268435455), then the body. Strings are a big-endian 16-bit length and the bytes.

Sockets: MicroPython streams use ``readinto``/``write`` (which also work on SSL sockets
there); CPython sockets use ``recv_into``/``sendall``. The socket is kept in "timeout" mode
and switched to non-blocking only to look for the first byte of a packet in
``check_msg()``; the current mode is cached to avoid a system call per poll.
"""

import socket
import sys

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_MP = sys.implementation.name == "micropython"

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_MAX_LEN = const(268435455)  # the largest remaining length 4 bytes can carry
_OUT = const(128)  # output buffer: most packets leave in one write
_ENOTCONN = const(107)
_ETIMEDOUT = const(110)
_EPROTO = const(71)  # the stream broke the MQTT framing; the connection is unusable
_UNSET = const(-2)  # socket timeout mode not known yet

# How long to wait for the first byte of a packet (see MQTTClient._op).
_NOWAIT = const(0)
_FOREVER = const(1)
_BOUNDED = const(2)


class MQTTException(Exception):
    """The broker refused: CONNACK return code or SUBACK failure (0x80) in ``args[0]``."""


def _b(x):
    # Topics, ids and payloads may come as str; the wire wants their UTF-8 bytes, and the
    # length prefix must count bytes, not characters.
    return x.encode() if isinstance(x, str) else x


class MQTTClient:
    def __init__(
        self,
        client_id,
        server,
        port=0,
        user=None,
        password=None,
        keepalive=0,
        ssl=None,
        timeout=10,
        max_packet=65536,
    ):
        if not port:
            port = 8883 if ssl else 1883
        self.client_id = _b(client_id)
        self.server = server
        self.port = port
        self.user = user
        self.pswd = password
        self.keepalive = keepalive  # seconds, as sent in CONNECT
        self.ssl = ssl
        self.timeout = timeout  # seconds, bounds every blocking step
        self.max_packet = max_packet
        self.sock = None
        self.cb = None
        self.pid = 0
        self.lw = None
        self._out = bytearray(_OUT)
        self._n = 0  # bytes pending in _out
        self._hdr = bytearray(4)
        self._t = _UNSET  # timeout mode the socket is in
        self._ack = -1  # packet id of the last PUBACK/SUBACK read
        self._rc = 0  # first return code of the last SUBACK
        self.rx = 0  # successful socket reads: keepalive evidence for lasp_device.transport

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        """Must be called before ``connect()``: the will travels inside CONNECT."""
        if not topic or qos < 0 or qos > 2:
            raise ValueError("will")
        self.lw = (_b(topic), _b(msg), retain, qos)

    # -- output: everything goes through a small buffer so a packet is usually one write

    def _begin(self, first):
        self._n = 0  # a previous packet that failed half-way must not leak into this one
        self._byte(first)

    def _byte(self, v):
        if self._n == _OUT:
            self._flush()
        self._out[self._n] = v
        self._n += 1

    def _u16(self, v):
        self._byte(v >> 8)
        self._byte(v & 0xFF)

    def _len(self, n):
        if n > _MAX_LEN:
            raise ValueError("packet too large")
        while True:
            d = n & 0x7F
            n >>= 7
            if n:
                self._byte(d | 0x80)
            else:
                self._byte(d)
                return

    def _w(self, data):
        n = len(data)
        o = self._n
        if o + n > _OUT:
            self._flush()
            if n > _OUT:  # large payloads go straight out, never copied
                self._send(data, n)
                return
            o = 0
        self._out[o : o + n] = data
        self._n = o + n

    def _str(self, s):
        self._u16(len(s))
        self._w(s)

    def _flush(self):
        if self._n:
            n = self._n
            self._n = 0
            self._send(self._out, n)

    def _send(self, buf, n):
        s = self._sock(self.timeout)
        try:
            if _MP:
                done = s.write(buf, n)
                while done is not None and done < n:  # only after a partial write
                    k = s.write(memoryview(buf)[done:n])
                    done = None if not k else done + k
                if done is None:
                    raise OSError(_ETIMEDOUT)
            else:
                s.sendall(memoryview(buf)[:n] if n < len(buf) else buf)
        except OSError:
            self._drop()
            raise

    # -- input

    def _sock(self, t):
        """The socket, switched to timeout mode ``t`` (0 = non-blocking, None = forever)."""
        s = self.sock
        if s is None:
            raise OSError(_ENOTCONN)
        if self._t != t:
            try:
                s.settimeout(t)
            except AttributeError:  # a MicroPython SSL socket without settimeout
                s.setblocking(t != 0)
            self._t = t
        return s

    def _read(self, buf, n):
        """Fill ``buf[:n]`` exactly, within ``timeout`` per read."""
        s = self._sock(self.timeout)
        got = 0
        try:
            while got < n:
                if _MP:
                    k = s.readinto(buf, n) if not got else s.readinto(memoryview(buf)[got:n])
                else:
                    k = s.recv_into(memoryview(buf)[got:n])
                if not k:
                    raise OSError(-1 if k == 0 else _ETIMEDOUT)  # -1: closed, as umqtt
                got += k
                self.rx += 1
        except OSError:
            self._drop()
            raise

    def _bytes(self, n):
        if _MP:  # read(n) loops until n bytes or EOF and hands its buffer over uncopied
            s = self._sock(self.timeout)
            try:
                d = s.read(n) if n else b""
            except OSError:
                self._drop()
                raise
            if d is None or len(d) < n:
                self._drop()
                raise OSError(-1)
            return d
        buf = bytearray(n)
        self._read(buf, n)
        return bytes(buf)

    def _skip(self, n):
        # The output buffer doubles as scratch: reads never interleave with a packet build.
        while n > 0:
            k = n if n < _OUT else _OUT
            self._read(self._out, k)
            n -= k

    def _op(self, wait):
        """First byte of the next packet, or None when ``wait`` is _NOWAIT and none is there."""
        s = self._sock(0 if wait == _NOWAIT else (None if wait == _FOREVER else self.timeout))
        b = self._hdr
        try:
            if _MP:
                k = s.readinto(b, 1)
            else:
                try:
                    k = s.recv_into(b, 1)
                except OSError as e:  # BlockingIOError, or SSLWantReadError under TLS
                    if wait != _NOWAIT or not (
                        isinstance(e, BlockingIOError) or "WantRead" in type(e).__name__
                    ):
                        raise
                    k = None
        except OSError:
            self._drop()
            raise
        if k is None:
            if wait == _NOWAIT:
                return None
            self._drop()
            raise OSError(_ETIMEDOUT)
        if k == 0:
            self._drop()
            raise OSError(-1)
        return b[0]

    def _rlen(self):
        b = self._hdr
        n = 0
        sh = 0
        while True:
            self._read(b, 1)
            d = b[0]
            n |= (d & 0x7F) << sh
            if not d & 0x80:
                return n
            sh += 7
            if sh > 21:
                self._drop()
                raise OSError(_EPROTO)

    def _packet(self, op):
        """Consume the rest of the packet that started with ``op``; return ``op``."""
        sz = self._rlen()
        t = op & 0xF0
        if t == _PUBLISH:
            self._incoming(op, sz)
            return op
        if t == _PUBACK or t == _SUBACK:
            if sz < 2 or (t == _SUBACK and sz < 3):
                self._drop()
                raise OSError(_EPROTO)
            b = self._hdr
            self._read(b, 3 if t == _SUBACK else 2)
            self._ack = b[0] << 8 | b[1]
            if t == _SUBACK:
                self._rc = b[2]
                sz -= 1
            sz -= 2
        self._skip(sz)  # PINGRESP has no body; anything unexpected is drained
        return op

    def _incoming(self, op, sz):
        qos = (op >> 1) & 3
        if qos > 1:  # we never subscribe with QoS 2, so the broker may not send it
            self._drop()
            raise OSError(_EPROTO)
        b = self._hdr
        self._read(b, 2)
        tl = b[0] << 8 | b[1]
        sz -= 2 + tl + (2 if qos else 0)
        if sz < 0:
            self._drop()
            raise OSError(_EPROTO)
        topic = self._bytes(tl)
        pid = 0
        if qos:
            self._read(b, 2)
            pid = b[0] << 8 | b[1]
        if sz > self.max_packet:
            self._skip(sz)
        else:
            msg = self._bytes(sz)
            if self.cb:
                self.cb(topic, msg)
        if qos:  # acknowledged after the callback ran, as umqtt.simple does
            self._begin(_PUBACK)
            self._byte(2)
            self._u16(pid)
            self._flush()

    def _next_pid(self):
        p = self.pid % 65535 + 1  # 1..65535: zero is not a valid packet id
        self.pid = p
        return p

    def _wait_ack(self, kind, pid):
        while True:
            op = self._packet(self._op(_BOUNDED))
            if op & 0xF0 == kind and self._ack == pid:
                return

    def _drop(self):
        s = self.sock
        self.sock = None
        self._t = _UNSET
        if s is not None:
            try:
                s.close()
            except OSError:
                pass

    # -- the umqtt.simple interface

    def connect(self, clean_session=True):
        self._drop()
        ai = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0]
        self.sock = socket.socket(ai[0], socket.SOCK_STREAM)
        try:
            s = self._sock(self.timeout)
            try:  # IPPROTO_TCP, TCP_NODELAY: same numbers on Linux and lwIP
                s.setsockopt(6, 1, 1)
            except (OSError, AttributeError, TypeError):
                pass
            s.connect(ai[-1])
            if self.ssl:
                self.sock = self.ssl.wrap_socket(s, server_hostname=self.server)
                self._t = _UNSET
            cid = self.client_id
            lw = self.lw
            user = _b(self.user) if self.user else None
            pswd = _b(self.pswd) if user and self.pswd is not None else None
            flags = 2 if clean_session else 0
            sz = 12 + len(cid)
            if lw:
                flags |= 4 | lw[3] << 3 | (0x20 if lw[2] else 0)
                sz += 4 + len(lw[0]) + len(lw[1])
            if user:
                flags |= 0x80
                sz += 2 + len(user)
                if pswd is not None:
                    flags |= 0x40
                    sz += 2 + len(pswd)
            self._begin(_CONNECT)
            self._len(sz)
            self._w(b"\x00\x04MQTT\x04")
            self._byte(flags)
            self._u16(self.keepalive)
            self._str(cid)
            if lw:
                self._str(lw[0])
                self._str(lw[1])
            if user:
                self._str(user)
                if pswd is not None:
                    self._str(pswd)
            self._flush()
            op = self._op(_BOUNDED)
            b = self._hdr
            self._read(b, 3)
            if op != _CONNACK or b[0] != 2:
                raise OSError(_EPROTO)
            if b[2]:
                raise MQTTException(b[2])
            return bool(b[1] & 1)
        except Exception:
            self._drop()
            raise

    def disconnect(self):
        """Leave cleanly: the broker discards the last will."""
        try:
            self._send(b"\xe0\x00", 2)
        finally:
            self._drop()

    def ping(self):
        """Send PINGREQ; the PINGRESP is read by the next ``check_msg``/``wait_msg``."""
        self._send(b"\xc0\x00", 2)

    def publish(self, topic, msg, retain=False, qos=0):
        if qos != 0 and qos != 1:
            raise ValueError("qos")
        topic = _b(topic)
        msg = _b(msg)
        self._begin(_PUBLISH | qos << 1 | (1 if retain else 0))
        self._len(2 + len(topic) + len(msg) + (2 if qos else 0))
        self._str(topic)
        if qos:
            pid = self._next_pid()
            self._u16(pid)
        self._w(msg)
        self._flush()
        if qos:
            self._wait_ack(_PUBACK, pid)

    def subscribe(self, topic, qos=0):
        if qos != 0 and qos != 1:
            raise ValueError("qos")
        topic = _b(topic)
        pid = self._next_pid()
        self._begin(_SUBSCRIBE)
        self._len(5 + len(topic))
        self._u16(pid)
        self._str(topic)
        self._byte(qos)
        self._flush()
        self._wait_ack(_SUBACK, pid)
        if self._rc & 0x80:
            raise MQTTException(self._rc)

    def wait_msg(self):
        """Block until one packet arrived and handle it; return its type byte."""
        return self._packet(self._op(_FOREVER))

    def check_msg(self):
        """Handle one packet if one is waiting; return its type byte, else None at once."""
        op = self._op(_NOWAIT)
        if op is None:
            return None
        return self._packet(op)
