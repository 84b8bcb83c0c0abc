"""CPython side of the firmware examples: MQTT devices <-> sync Node <-> a Lasp ``Store``.

The examples' ``server.py`` programs are written against ``lasp_edge.store.Store`` (the
Lasp API: declare, update, query, enforce_once, fold_dynamic). Until the gateway service
exists, this bridge plays the gateway for them, with the same sync protocol the devices
speak:

* paho-mqtt 2 (VERSION2 callbacks) subscribed to ``le/u/+``; a device ``<id>`` publishes
  there and listens on ``le/d/<id>``; the replica id taken from the topic must match the
  message's sender (``Node.receive(peer=...)``), so a device can only speak for itself.
* A ``lasp_edge.sync.Node`` (replica ``gw`` by default, the devices' GATEWAY_ID) holds the
  shared variables. A delta from a device is merged by the node, then bound into the
  Store (``Store.bind`` returns once SQLite committed), and only then acknowledged
  (``commit``): ack after durable, end to end.
* ``authorize``: devices may write only the variables listed in ``writable`` and, inside
  them, only their own replica's entries (``delta.replicas()``); in the map variables
  listed in ``keyed`` (slot maps such as a fold_dynamic global) only their own key.
* Store -> devices: every change of a variable in ``down`` (e.g. the ads list, changed by
  the billing effect) is joined into the node (``Node.bind``, on the next tick, 50 ms) and
  shipped to the devices interested in it.
* Locks: ``self.lock`` guards the node; Store calls are made under it, never the other way
  round (Store callbacks only mark work for the tick thread), so the two cannot deadlock.
* The node's epoch is a boot counter in ``STATE_DIR/gw.epoch``; everything else the node
  knows is rebuilt on restart (devices are told by BIRTH and resend what is missing).

Run one of the examples' server.py with ``--help`` for its options.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sdk"))

from lasp_edge.sync import Node  # noqa: E402


def server_args(description, state_dir):
    """The options every example server shares: broker, credentials, gateway id, state."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--broker", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--gateway-id", default="gw", help="the devices' GATEWAY_ID")
    ap.add_argument("--state-dir", default=state_dir)
    ap.add_argument("--run-s", type=float, default=0, help="stop after this long (0: never)")
    return ap


def bridge_for(store, args, **kw):
    """A ``Bridge`` configured from ``server_args`` options; ``kw``: writable, down, ..."""
    return Bridge(
        store,
        args.broker,
        args.port,
        replica=args.gateway_id,
        state_dir=args.state_dir,
        username=args.username,
        password=args.password,
        **kw,
    )


def print_changes(run_s, view, show, period_s=0.2):
    """Every ``period_s``, print ``show(v)`` when ``v = view()`` changed; stop after
    ``run_s`` seconds (0: until Ctrl-C)."""
    t0 = time.monotonic()
    last = None
    try:
        while not run_s or time.monotonic() - t0 < run_s:
            v = view()
            if v != last:
                last = v
                print(show(v), flush=True)
            time.sleep(period_s)
    except KeyboardInterrupt:
        pass


def boot_epoch(state_dir):
    """Read, bump and persist the gateway's boot counter (write temp + rename)."""
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, "gw.epoch")
    try:
        with open(path) as f:
            epoch = int(f.read().strip() or 0)
    except FileNotFoundError:
        epoch = 0
    epoch += 1
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % epoch)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    return epoch


class Bridge:
    def __init__(
        self,
        store,
        host="127.0.0.1",
        port=1883,
        replica="gw",
        writable=(),
        keyed=(),
        down=(),
        state_dir=".",
        username=None,
        password=None,
        sync_period_ms=500,
        log=print,
    ):
        import paho.mqtt.client as mqtt

        self.store = store
        self.writable = set(writable)
        self.keyed = set(keyed)  # map variables whose keys are replica ids (slot maps)
        self.down = tuple(down)
        self.log = log
        self.lock = threading.RLock()
        self.node = Node(
            replica,
            epoch=boot_epoch(state_dir),
            sync_period_ms=sync_period_ms,
            ack_timeout_ms=3000,
            authorize=self._authorize,
        )
        for name in sorted(self.writable | set(self.down)):
            state = store.state(name)
            self.node.declare(name, state.bottom())
            self.node.bind(name, state)  # logged: shipped to devices that want it
        for name in self.down:
            store.stream(name, lambda _value, name=name: self._from_store(name))
        self.devices = set()
        self._down_dirty = set()
        self.rejected = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        c = self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="lasp-%s-%d" % (replica, os.getpid())
        )
        if username:
            c.username_pw_set(username, password)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.reconnect_delay_set(min_delay=1, max_delay=10)
        c.connect_async(host, port, keepalive=30)
        self._ticker = threading.Thread(target=self._tick_loop, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self):
        self.client.loop_start()
        self._ticker.start()
        return self

    def close(self):
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(5)
        self.client.loop_stop()
        self.client.disconnect()

    def now(self):
        return int((time.monotonic() - self._t0) * 1000)

    # -- devices -> store ------------------------------------------------------------------

    def _authorize(self, peer, var, delta):
        if var not in self.writable:
            return "devices may not write %r" % var
        others = delta.replicas() - {peer}
        if var in self.keyed:
            w = delta.to_wire()
            others |= (set(w[2]) | set(w[3])) - {peer}
        if others:
            return "entries of other replicas: %s" % sorted(map(str, others))
        return None

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe("le/u/+", qos=0)

    def _on_message(self, client, userdata, msg):
        peer = msg.topic.rsplit("/", 1)[-1]
        with self.lock:
            for ev in self.node.receive(msg.payload, self.now(), peer):
                kind = ev[0]
                if kind == "merged":
                    for name, delta in ev[2].items():
                        self.store.bind(name, delta, origin=peer)  # durable on return
                    self.node.commit(ev[3])
                elif kind == "birth":
                    if ev[1] not in self.devices:
                        self.devices.add(ev[1])
                        self.log("device %s online" % ev[1])
                elif kind == "death":
                    self.log("device %s offline" % ev[1])
                elif kind == "rejected":
                    self.rejected += 1
                    self.log("rejected %s: %s" % (ev[1], ev[2]))
            self._send()

    # -- store -> devices ------------------------------------------------------------------

    def _from_store(self, name):
        # Called by the Store while it runs its callbacks (it holds its dispatch lock then):
        # taking self.lock here could deadlock with a thread that holds self.lock and calls
        # the Store. So only note it; the tick thread moves the state into the node.
        self._down_dirty.add(name)

    def _push_down(self):
        while self._down_dirty:
            name = self._down_dirty.pop()
            self.node.bind(name, self.store.state(name))

    def _send(self):
        for peer, data in self.node.take():
            self.client.publish("le/d/%s" % (peer,), data, qos=0)

    def _tick_loop(self):
        while not self._stop.is_set():
            with self.lock:
                self._push_down()
                self.node.tick(self.now())
                self._send()
                self.store.ack(self.store.last_seq)  # the node ships; the store forgets
            self._stop.wait(0.05)
