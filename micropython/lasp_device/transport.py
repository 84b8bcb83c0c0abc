"""The thin MQTT adapter between a device main loop and any umqtt.simple-style client.

Why: umqtt.simple is a bare protocol codec. It sends no keepalive PINGs, cannot tell a dead
connection from a quiet one, forgets its subscriptions when the broker restarts, and raises
on every network error. A device must keep counting while offline and come back by itself.
``Transport`` adds exactly that and nothing else; the sync protocol above it (``Node``)
already repairs lost messages, so QoS 0 is enough and no broker queue is trusted.

Theory of operation. The transport owns no clock: every call that needs time gets
``now_ms`` (``time.ticks_ms()`` on a device), compared only through ``ticks_diff`` so the
wrap of ``ticks_ms`` (2**30 on most ports) is harmless; on CPython ``ticks_diff`` works
modulo 2**30 too, matching ``lasp_device.ticks``. The only I/O is the client's.

- ``poll(now_ms)`` is non-blocking: offline, it makes a connection attempt when the backoff
  has elapsed; online, it handles up to ``max_msgs`` waiting packets with ``check_msg()``
  (never ``wait_msg()``), then runs the keepalive timers.
- ``make_client()`` is called once, in the constructor, and that client serves every
  connection: umqtt.simple's ``connect()`` opens a new socket and starts a new session each
  time, so nothing of a broken connection survives, and the client's own memory is taken
  while the heap is still whole. Connecting sets the callback and the last will *before*
  ``connect()`` (the will travels inside CONNECT), connects, and (re)subscribes to
  every topic given to ``subscribe()``. A clean session forgets subscriptions, and a
  restarted broker forgets everything, so subscribing after every connect is the only
  reliable rule.
- Keepalive (``k`` = the client's ``keepalive`` in seconds, 0 disables all of this): a
  PINGREQ goes out when nothing was sent for k/2 (so the broker, which drops clients silent
  for 1.5 k, keeps us) or when nothing was received for k/2 and no ping is outstanding (so a
  healthy link always shows traffic). When nothing at all was received for 1.5 k, the link
  is dead even if TCP has not noticed (a half-open connection after a WiFi drop or NAT
  timeout can look fine for many minutes).
- Evidence of traffic is any packet the client reports (``check_msg()`` returning non-None,
  a delivered message) *and* any byte read from the client's socket: umqtt.simple swallows
  PINGRESP without a trace, so after connecting the transport wraps ``client.sock`` in a
  counting shim (``lasp_device.meter``, imported only then) when the client has one. A
  client that counts its own successful reads in ``rx`` (the bundled
  ``lasp_device.mqtt.MQTTClient``) is read directly and needs no shim.
- A dead link, or any exception from the client, closes the socket *without* DISCONNECT (so
  the broker publishes the last will: this session did end abnormally) and schedules a
  reconnect. Attempt ``n`` (0 after a drop) waits ``min(cap, base * 2**n)`` plus a uniform
  jitter in ``[0, jitter)`` ms; the jitter spreads a fleet that lost the same broker.
- ``publish()`` returns False instead of raising while offline or when the send fails, so
  callers keep working offline; the protocol above resends on its own timers.
- An exception raised by ``on_message`` is not a network failure: it is held until the
  client finished the packet (its PUBACK is sent) and re-raised from ``poll()``.
"""

try:
    from time import ticks_diff
except ImportError:  # CPython

    def ticks_diff(a, b):
        """Signed ``a - b`` modulo 2**30, like MicroPython's on 32-bit ports.

        The same arithmetic as lasp_device.ticks' CPython shim, repeated here so that this
        module can be copied to a board on its own, next to any umqtt-style client."""
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d >= 0x20000000 else d


def _rand(n):
    import random  # lazy: only needed once a connection failed

    return random.getrandbits(30) % n


class Transport:
    """``Transport(make_client, on_message=None, backoff_base_ms=1000, backoff_cap_ms=60000,
    jitter_ms=1000, clean_session=True, max_msgs=8, rand=_rand)``.

    ``set_will``/``subscribe`` before the first ``poll``; then ``poll(now_ms)`` often,
    ``publish(topic, payload)`` any time. ``rand(n)`` (an int in [0, n)) is injectable so a
    simulation can be deterministic.
    """

    def __init__(
        self,
        make_client,
        on_message=None,
        backoff_base_ms=1000,
        backoff_cap_ms=60000,
        jitter_ms=1000,
        clean_session=True,
        max_msgs=8,
        rand=_rand,
    ):
        # One client for every connection (umqtt.simple's connect() opens a new socket each
        # time): built here, with its instance dict, before the heap fragments, instead of
        # once per attempt (at 64K a fresh client's ~400 B found no room: micropython/README).
        self.mqtt = make_client()
        self.on_message = on_message
        self.base = backoff_base_ms
        self.cap = backoff_cap_ms
        self.jitter = jitter_ms
        self.clean_session = clean_session
        self.max_msgs = max_msgs
        self.rand = rand  # rand(n) -> int in [0, n)
        self.client = None
        self.subs = []  # [(topic, qos)], resubscribed on every connect
        self.will = None  # (topic, payload or payload(), retain, qos)
        self.closed = False
        # counters
        self.connects = 0  # successful connections
        self.reconnects = 0  # successful connections after the first
        self.publish_failures = 0  # publish() calls that returned False
        self.attempts = 0  # connection attempts failed since the last success or drop
        self.retry_in = 0  # ms, the backoff being waited out
        self.last_error = None  # the exception behind the last failure or drop
        self._since = None  # when the backoff started; None: connect at the next poll
        self._now = 0
        self._ka = 0  # keepalive in ms
        self._rx = 0  # last evidence of inbound traffic
        self._tx = 0  # last packet sent
        self._await = False  # a PINGREQ is out and nothing was received since
        self._meter = None
        self._seen = 0
        self._cb_err = None

    @property
    def online(self):
        return self.client is not None

    def set_will(self, topic, payload, retain=False, qos=0):
        """Last will for the next connections; ``payload`` may be a callable returning it,
        evaluated at each connect (a DEATH message names the current session epoch)."""
        self.will = (topic, payload, retain, qos)

    def subscribe(self, topic, qos=0):
        """Subscribe now if online, and again after every reconnect."""
        if (topic, qos) not in self.subs:
            self.subs.append((topic, qos))
        c = self.client
        if c is None:
            return False
        try:
            c.subscribe(topic, qos)
        except Exception as e:
            self._lost(e, self._now)
            return False
        self._tx = self._now
        return True

    def publish(self, topic, payload, qos=0, retain=False):
        """Send now; False (never an exception) when offline or when the send failed.

        Keep ``qos=0`` with umqtt.simple: its QoS 1 publish blocks until the PUBACK."""
        c = self.client
        if c is not None:
            try:
                c.publish(topic, payload, retain, qos)
                self._tx = self._now
                return True
            except Exception as e:
                self._lost(e, self._now)
        self.publish_failures += 1
        return False

    def poll(self, now_ms):
        """Do whatever is due without blocking (beyond one connection attempt); returns
        ``online``."""
        self._now = now_ms
        if self.closed:
            return False
        c = self.client
        if c is None:
            if self._since is None or ticks_diff(now_ms, self._since) >= self.retry_in:
                self._connect(now_ms)
        else:
            try:
                n = self.max_msgs
                while n and c.check_msg() is not None:
                    self._heard(now_ms)
                    n -= 1
                m = self._meter
                if m is not None and m.rx != self._seen:
                    self._seen = m.rx
                    self._heard(now_ms)
                ka = self._ka
                if ka:
                    if ticks_diff(now_ms, self._rx) >= ka + ka // 2:
                        raise OSError(110, "no traffic for 1.5 x keepalive")
                    half = ka // 2
                    if ticks_diff(now_ms, self._tx) >= half or (
                        not self._await and ticks_diff(now_ms, self._rx) >= half
                    ):
                        c.ping()
                        self._tx = now_ms
                        self._await = True
            except Exception as e:
                self._lost(e, now_ms)
        err = self._cb_err
        if err is not None:
            self._cb_err = None
            raise err
        return self.client is not None

    def close(self):
        """Leave cleanly (DISCONNECT: the broker discards the will) and stop reconnecting."""
        self.closed = True
        c = self.client
        self.client = None
        if c is not None:
            try:
                c.disconnect()
            except Exception:
                _abort(c)

    # -- internals

    def _heard(self, now_ms):
        self._rx = now_ms
        self._await = False

    def _on(self, topic, msg):
        self._heard(self._now)
        f = self.on_message
        if f is not None:
            try:
                f(topic, msg)
            except Exception as e:
                if self._cb_err is None:
                    self._cb_err = e

    def _connect(self, now_ms):
        c = None
        try:
            c = self.mqtt
            c.set_callback(self._on)
            w = self.will
            if w is not None:
                p = w[1]
                c.set_last_will(w[0], p() if callable(p) else p, w[2], w[3])
            c.connect(self.clean_session)
            self._meter = m = _meter(c)
            self._seen = 0 if m is None else m.rx
            for t, q in self.subs:
                c.subscribe(t, q)
        except Exception as e:
            _abort(c)
            self._backoff(e, now_ms)
            return
        self.client = c
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self.attempts = 0
        self._since = None
        self._ka = int(getattr(c, "keepalive", 0) or 0) * 1000
        self._rx = self._tx = now_ms
        self._await = False

    def _lost(self, e, now_ms):
        _abort(self.client)
        self.client = None
        self._meter = None
        self.attempts = 0
        self._backoff(e, now_ms)

    def _backoff(self, e, now_ms):
        self.last_error = e
        n = self.attempts
        d = self.cap if n > 24 else min(self.cap, self.base << n)
        if self.jitter > 0:
            d += self.rand(self.jitter)
        self.retry_in = d
        self._since = now_ms
        self.attempts = n + 1


def _meter(c):
    """What counts the client's successful socket reads (``.rx``), or None if nothing can."""
    if hasattr(c, "rx"):
        return c
    s = getattr(c, "sock", None)
    if s is None:
        return None
    from lasp_device.meter import Meter

    c.sock = m = Meter(s)
    return m


def _abort(c):
    # Close without DISCONNECT so that the broker publishes the last will.
    s = getattr(c, "sock", None) if c is not None else None
    if s is not None:
        try:
            s.close()
        except Exception:
            pass
