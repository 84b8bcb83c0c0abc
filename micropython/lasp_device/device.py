"""The device runtime: declared variables, offline updates, flash durability, sync over MQTT.

Theory of operation. A ``Device`` wraps one sans-IO ``lasp_edge.sync.Node`` (replica id =
device id, one peer: the gateway) and adds what a device needs around it:

* **Offline first.** ``update()`` changes the local CRDT and returns; it never waits for,
  or fails because of, the network.
* **Durability.** ``flush()`` writes the node's snapshot (variables, the unacknowledged
  delta log, peer sessions, boot counter) plus ``app`` data through ``FlashStore``
  (temp file + atomic rename). The flush policy bounds what a power cut can lose:
  a flush happens after ``flush_every`` updates, ``flush_ms`` after the first unflushed
  update, on every sync period when something is unflushed, and on explicit ``flush()``.
  ``flush_every=1`` flushes on every update.
* **Only durable data leaves.** After a flush returns the node is told ``mark_durable``;
  the node never ships a change before that. So after a crash the device can never reuse
  a counter value or a sequence number that the gateway already holds.
* **Ack after durable.** A received delta is merged at once, but acknowledged (``commit``)
  only after the next flush that contains it.
* **Epochs.** ``start()`` recovers the last complete snapshot, sets the node's epoch to the
  stored boot counter + 1 and persists it *before* any connection, then ``connect()``
  registers the node's DEATH (for that epoch) as the MQTT last will and says hello (BIRTH)
  on every (re)connection.
* **Time.** Only ``ticks_ms()``, which wraps. The runtime turns tick differences into a
  private monotonic millisecond clock for the node and rebases it (and the node's
  timestamps) before it leaves the small-int range, so nothing on the hot path allocates a
  long integer however long the device runs.

Call order in the main loop: ``update()`` whenever the app counts something, and
``poll()`` often (it polls the transport, commits received data after persisting it,
applies the flush policy, runs the sync period, and publishes what the node wants sent).
"""

import sys

from lasp_edge import cbor
try:
    from micropython import const
except ImportError:  # CPython: the identity (no lasp_edge._compat module on a device)
    from lasp_edge._compat import const
from lasp_edge.crdts.base import check_replica
from lasp_edge.sync.node import Node

from lasp_device.flashstore import FlashStore
try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms  # MicroPython
except ImportError:  # CPython: lasp_device.ticks (a device never loads that module)
    from lasp_device.ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

FORMAT = const(1)  # version of the [format, node snapshot, app data] record (recovery too)
_REBASE_AT = const(1 << 29)  # the node clock is shifted back before reaching this...
_REBASE_BY = const(1 << 28)  # ...by this much (old node timestamps go negative: harmless)

# Defaults; see micropython/README.md ("Flush policy") for what they bound.
SYNC_PERIOD_MS = const(10000)
FLUSH_EVERY = const(100)
FLUSH_MS = const(10000)


def _log(msg):
    print("lasp_device:", msg)


class Device:
    def __init__(
        self,
        device_id,
        path="lasp",
        gateway="gw",
        interests=None,
        sync_period_ms=SYNC_PERIOD_MS,
        flush_every=FLUSH_EVERY,
        flush_ms=FLUSH_MS,
        ack_timeout_ms=5000,
        max_timeout_ms=60000,
        max_payload=1024,
        max_message=16384,
        clock=None,
    ):
        self.id = check_replica(device_id)
        self.gateway = check_replica(gateway)
        self.up_topic = "le/u/%s" % (device_id,)
        self.down_topic = "le/d/%s" % (device_id,)
        self._down_b = self.down_topic.encode()
        self.node = Node(
            device_id,
            epoch=0,
            interests=interests,
            sync_period_ms=sync_period_ms,
            ack_timeout_ms=ack_timeout_ms,
            max_timeout_ms=max_timeout_ms,
            max_payload=max_payload,
            max_message=max_message,
        )
        self.node.durable_seq = 0  # nothing is durable before start() has persisted
        self.store = FlashStore(path)
        self.clock = ticks_ms if clock is None else clock  # a simulated clock in benches
        self.sync_period_ms = sync_period_ms
        self.flush_every = flush_every
        self.flush_ms = flush_ms
        self.app = {}  # small CBOR-able app data persisted with every snapshot
        self.transport = None
        self.on_change = None  # fn(names): received data changed these variables
        self.on_flush = None  # fn(done): called before (False) and after (True) each write
        self.probe = None  # fn(): called where RAM use peaks (heap measurements)
        self.started = False
        self.fs = None
        # counters (cheap stats for logs and tests)
        self.flush_errors = 0
        self.sent = 0
        self.dropped = 0
        self.received = 0
        self.rejected = 0
        self.acked = 0  # acknowledgements received: completed sync round trips
        self.connects = 0
        self._dirty = 0  # changes (updates, merges, app data) not yet flushed
        self._dirty_at = 0  # ticks of the first unflushed change
        self._tokens = []  # received deltas merged but not yet acknowledged
        self._changed = None  # names changed by received deltas since the last on_change
        self._online = False
        self._last = None  # ticks at the last _advance
        self._mono = 0  # the node's clock: ms since boot, rebased below _REBASE_AT
        self._next_sync = 0

    # -- variables -----------------------------------------------------------------------

    def declare(self, name, state):
        """Declare a variable with its bottom state (e.g. ``AWMap("gcounter")``).

        Before or after ``start()``: a recovered variable of the same type and parameters
        is kept; a different one raises ``ValueError``.
        """
        return self.node.declare(name, state)

    def var(self, name):
        """The live state of a variable (read it; change it only through ``update``)."""
        return self.node.vars[name]

    def value(self, name):
        return self.node.vars[name].value()

    def update(self, name, op, *args):
        """Apply mutator ``op(*args)`` to ``name``; works offline; returns the delta.

        Raises only for programming errors (unknown variable or mutator, bad arguments,
        an update before ``start()``).
        A failing policy flush (flash full) is counted in ``flush_errors`` and retried
        later; the update itself stays in RAM and is not sent until it is durable.
        """
        self._started()
        d = self.node.update(name, op, *args)
        if not d.is_bottom():
            self._touch()
            if self._dirty >= self.flush_every:
                self._try_flush()
        return d

    def prune(self, name, keep):
        """Forget, locally, the keys of map variable ``name`` for which ``keep(key)`` is False.

        For data that only grows by key (time windows): the device drops old keys to bound
        its RAM and flash. This is not a CRDT remove (no tombstone is shipped; the gateway
        keeps what it has), so it is safe only for keys this device will never update
        again, and it is done only once the gateway acknowledged every change of
        ``name``. Returns the number of keys dropped, or -1 while changes are unacknowledged.
        """
        var = self.node.vars[name]
        if name in self.node.log.by_var:
            return -1
        w = var.to_wire()  # AWMap: [vtag, vparams, {key: nested}, {key: tombstone}]
        n = 0
        for part in (w[2], w[3]):
            for k in list(part):
                if not keep(k):
                    del part[k]
                    n += 1
        if n:
            self.node.vars[name] = type(var).from_wire(w)
            self._touch()
        return n

    def set_app(self, key, value):
        """Persist a small app value (CBOR-able) with the next flush."""
        if self.app.get(key) != value:
            self.app[key] = value
            self._touch()

    def _touch(self):
        if not self._dirty:
            self._dirty_at = self.clock()
        self._dirty += 1

    @property
    def dirty(self):
        return self._dirty

    # -- durability ----------------------------------------------------------------------

    def _started(self):
        """Updates, flushes, connections and polls all need what ``start()`` recovers (the
        state, the store's generation, the epoch the MQTT will names)."""
        if not self.started:
            raise RuntimeError("call Device.start() first: it recovers state and epoch")

    def start(self, now=None):
        """Recover from flash, bump the boot counter and persist it. Call before ``poll``.

        Returns the new epoch. Raises ``flashstore.CorruptStore`` when the snapshot is
        damaged and no complete copy exists (see README, "Recovery").
        """
        if self.started:
            return self.node.epoch
        import lasp_device
        from lasp_device import recovery

        try:
            epoch = recovery.recover(self)
        finally:
            # Boot-only code: unload it so the collector can take the whole module back
            # (see lasp_device.recovery). The import also bound it on the package.
            del recovery
            sys.modules.pop("lasp_device.recovery", None)
            lasp_device.__dict__.pop("recovery", None)
        self.node.epoch = epoch + 1
        self.started = True
        self._last = self.clock() if now is None else now
        self._write()  # the new epoch is durable before anyone can hear of it
        return self.node.epoch

    def flush(self):
        """Persist now if anything changed since the last flush; True if it wrote.

        Raises ``OSError`` when the write fails (the previous snapshot stays current).
        """
        if not self._dirty:
            return False
        self._write()
        return True

    def _try_flush(self):
        try:
            return self.flush()
        except OSError as e:
            self.flush_errors += 1
            _log("flush failed: %r" % (e,))
            return False

    def _write(self):
        self._started()
        cb = self.on_flush
        if cb is not None:
            cb(False)
        seq = self.node.log.last_seq
        self.store.save(self._record)
        self.node.mark_durable(seq)
        self._dirty = 0
        if cb is not None:
            cb(True)

    def _record(self, write):
        """Stream the snapshot record ``[format, node snapshot, app data]`` to ``write``.

        The flush is the device's high-water point: the snapshot tree (several times the
        size of its encoding on a 64-bit port) exists while it is encoded. ``cbor.dump``
        hands the encoding to the store in small pieces, so no buffer the size of the
        record is ever needed (on a fragmented heap that, not the total, is what fails).
        """
        rec = [FORMAT, self.node.snapshot(True), self.app]
        cbor.dump(rec, write)
        if self.probe is not None:
            self.probe()  # with the tree still alive: the peak

    # -- time ----------------------------------------------------------------------------

    def _advance(self, now):
        last = self._last
        if last is None:
            self._last = now
            return
        d = ticks_diff(now, last)
        if d > 0:
            self._mono += d
            self._last = now
            if self._mono >= _REBASE_AT:
                self._rebase()

    def _rebase(self):
        """Shift the node clock back so it stays a small int (never on the hot path)."""
        self._mono -= _REBASE_BY
        for p in self.node.peers.values():
            if p.inflight is not None:
                p.inflight = (p.inflight[0], p.inflight[1] - _REBASE_BY)
            if p.last_send is not None:
                p.last_send -= _REBASE_BY
            if p.last_seen is not None:
                p.last_seen -= _REBASE_BY

    def next_wakeup_ms(self, now=None):
        """How long the app may sleep before ``poll`` has timed work (>= 0)."""
        now = self.clock() if now is None else now
        best = ticks_diff(self._next_sync, now) if self._online else self.sync_period_ms
        if self._dirty:
            best = min(best, self.flush_ms - ticks_diff(now, self._dirty_at))
        nd = self.node.next_deadline_ms()
        if nd is not None and self._online:
            best = min(best, nd - self._mono)
        return max(0, best)

    # -- network -------------------------------------------------------------------------

    def death_message(self):
        """The DEATH certificate of the current epoch: register it as the MQTT last will."""
        return self.node.death_message()

    def connect(self, make_client, backoff_base_ms=500, backoff_cap_ms=30000):
        """Create and attach the MQTT ``Transport`` (``lasp_device.transport``).

        ``make_client()`` returns the umqtt.simple-compatible client, e.g. ``lambda:
        MQTTClient(dev_id, host, port, user, pw, keepalive=30)``; it is called once, and the
        client reused for every connection attempt.
        The transport registers this epoch's DEATH as the last will on ``le/u/<id>`` and
        subscribes ``le/d/<id>`` on every (re)connection.

        It may come before ``start()``: nothing touches the network until ``poll``, which
        needs ``start()``, and the will is built at each connection, so it always names the
        epoch ``start()`` set. Building the transport first puts its long-lived objects in
        the heap before recovery's short-lived ones, which leaves fewer holes (RAM).
        """
        from lasp_device.transport import Transport

        t = Transport(make_client, backoff_base_ms=backoff_base_ms, backoff_cap_ms=backoff_cap_ms)
        t.set_will(self.up_topic, self.death_message)  # evaluated at each connect
        t.subscribe(self.down_topic)
        self.attach(t)
        return t

    def attach(self, transport):
        """Use an already built transport (anything with the Transport interface)."""
        self.transport = transport
        transport.on_message = self._on_message
        self._online = False

    @property
    def online(self):
        return self._online

    def _on_message(self, topic, payload):
        if topic != (self._down_b if type(topic) is bytes else self.down_topic):
            return
        self.received += 1
        for ev in self.node.receive(payload, self._mono, self.gateway):
            kind = ev[0]
            if kind == "merged":
                changed = ev[2]
                if changed:
                    self._touch()
                    if self._changed is None:
                        self._changed = set()
                    for name in changed:
                        self._changed.add(name)
                self._tokens.append(ev[3])
            elif kind == "acked":
                self.acked += 1
            elif kind == "rejected":
                self.rejected += 1
                _log("rejected from %s: %s" % (ev[1], ev[2]))

    def poll(self, now=None):
        """Do everything that is due; call it often from the main loop. Never blocks long."""
        self._started()
        now = self.clock() if now is None else now
        self._advance(now)
        t = self.transport
        if t is not None:
            t.poll(now)
            on = bool(t.online)
            if on != self._online:
                self._online = on
                if on:
                    self.connects += 1
                    self._next_sync = now
                    self.node.hello(self.gateway)  # BIRTH: the gateway answers with its own
        if self._tokens:
            self._commit()
        if self._dirty and ticks_diff(now, self._dirty_at) >= self.flush_ms:
            self._try_flush()
        if self._online:
            if ticks_diff(now, self._next_sync) >= 0:
                self._next_sync = ticks_add(now, self.sync_period_ms)
                if self._dirty:
                    self._try_flush()
            self.node.tick(self._mono)
        self._send()
        if self._changed is not None:
            names, self._changed = self._changed, None
            if self.on_change is not None:
                self.on_change(names)

    def _commit(self):
        """Acknowledge received deltas, but only once they are on flash."""
        if self._dirty and not self._try_flush():
            return  # not durable: no ack; the gateway will resend
        tokens, self._tokens = self._tokens, []
        for tok in tokens:
            self.node.commit(tok)

    def _send(self):
        out = self.node.take()
        if not out:
            return
        t = self.transport
        for _peer, data in out:
            if self._online and t is not None and t.publish(self.up_topic, data):
                self.sent += 1
            else:
                self.dropped += 1  # repaired by the ack timeout or the next BIRTH

    def sync(self, timeout_ms=5000):
        """Flush, send everything durable now, and wait until the gateway acknowledged it.

        Returns True when nothing is pending for the gateway. Used at shutdown and in
        tests; a normal main loop just calls ``poll``.
        """
        clock = self.clock
        start = clock()
        forced = False
        while True:
            self.poll(clock())
            p = self.node.peers.get(self.gateway)
            if self._online and p is not None and p.online:
                if self._dirty:
                    self._try_flush()
                if not forced and p.inflight is None:
                    self.node.flush(self._mono)
                    self._send()
                    forced = True
                if not self._dirty and not self._tokens and self.node.next_deadline_ms() is None:
                    return True
            if ticks_diff(clock(), start) >= timeout_ms:
                return False
            sleep_ms(2)

    def close(self, now=None):
        """Flush, say DEATH (a clean goodbye), and close the transport."""
        if self.started:
            self._try_flush()
        t = self.transport
        if t is not None:
            if self._online:
                t.publish(self.up_topic, self.death_message())
            t.close()
            self._online = False
