"""The sync workloads of issue 7, built the same way for lasp-edge and its peers.

Shared by ``bench_crdt.py`` (bytes on the wire) and ``bench_merge.py`` (merge throughput at
the aggregator), so both measure exactly the same deltas.

A *scenario* is one workload in one system: a receiver (the aggregator) and one or more
senders (devices) start from the same synced state; each device then changes its state and
ships what changed, once per sync. ``Scenario.payloads`` are those shipments as the CRDT
layer produces them; ``Scenario.messages`` the same wrapped by the system's sync layer;
``Scenario.receiver()`` builds a fresh aggregator at the starting state and returns a
function applying one payload (decode + merge, as an import does in the peers).

Systems:

* ``lasp-edge``: the delta a mutator returns, ``wire.dumps`` (``[version, tag, payload]``);
  the sync message is the protocol's DELTA (docs/PROTOCOL.md §4).
* ``full state``: lasp-edge shipping its whole state every sync, the classic state-based
  CRDT baseline (same envelope).
* ``Loro`` (``loro``): ``LoroCounter`` / ``LoroMap``; a sync exports the updates since the
  receiver's version vector (``ExportMode.Updates``). Loro updates are self-contained: no
  further sync envelope is needed.
* ``pycrdt`` (Yjs): a Yjs ``Map`` (Yjs has no counter: each client writes its own count
  under its own key, the usual grow-only counter on Yjs; map values are nested maps of
  that shape); a sync ships ``get_update(receiver state vector)``, wrapped as a y-protocols
  update message (``create_update_message``).

Workloads (``WORKLOADS``): one counter increment per sync; 100 increments between syncs;
one key added to a 10,000-key map; an AWSet add then a remove (two syncs); and, for merge
throughput, every key of the 10,000-key map incremented by one device (one big delta).
The peers' counters and map values are JavaScript numbers (float64) in both libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lasp_edge import wire
from lasp_edge.crdts import AWMap, AWSet, GCounter
from lasp_edge.sync import messages
from lasp_gateway.topics import device_up

FLEET = 100  # replicas that counted before the measured syncs (in every receiver)
FLEET_COUNT = 1000  # what each of them counted
MAP_KEYS = 10_000
SET_SIZE = 100
EPOCH = 3  # a device that rebooted a few times
SEQ0 = 1000  # ... and has logged a thousand changes before the measured ones

WORKLOADS = {
    "counter_1": "one counter increment",
    "counter_100": "100 increments between syncs",
    "map_add_key": "one key added to a 10,000-key map",
    "awset_add_remove": "an AWSet add and remove (2 syncs)",
    "map_all_keys": "all 10,000 keys of the map incremented (1 sync)",
}
SYSTEMS = ("lasp-edge", "full state", "Loro", "pycrdt")
VAR = {"counter": "impressions", "map": "impressions", "set": "ads"}


def topic(device: int) -> str:
    """The device uplink topic, ``le/u/<device>`` (docs/PROTOCOL.md, "Topics (MQTT)")."""
    return device_up(device)


def mqtt_publish_size(topic_name: str, payload_len: int, qos: int = 1) -> int:
    """Bytes of an MQTT 3.1.1 PUBLISH packet: fixed header (1 byte + remaining length as a
    1-4 byte varint), topic (2-byte length + UTF-8), packet id (2 bytes, QoS > 0), payload."""
    remaining = 2 + len(topic_name.encode()) + (2 if qos else 0) + payload_len
    n = 1
    while remaining >= 128**n:
        n += 1
    return 1 + n + remaining


class Scenario:
    def __init__(self, system, workload, devices, payloads, messages_, receiver, ops):
        self.system = system
        self.workload = workload
        self.devices: list[int] = devices  # the sending device of each payload
        self.payloads: list[bytes] = payloads
        self.messages: list[bytes] = messages_
        self.receiver: Callable[[], Callable[[bytes], Any]] = receiver
        self.ops = ops  # increments / keys / set operations carried by each payload


# -- lasp-edge (deltas and full state) ---------------------------------------------------


def lasp_edge_base(kind):
    if kind == "counter":
        s = GCounter()
        for r in range(100, 100 + FLEET):
            s.increment(r, FLEET_COUNT)
    elif kind == "map":
        s = AWMap("gcounter")
        for i in range(MAP_KEYS):
            s.update("ad%05d" % i, "increment", 0)
    else:
        s = AWSet()
        for i in range(SET_SIZE):
            s.add(0, "ad-%03d" % i)
    return s


def _le_changes(kind, workload, state, device, i):
    """Apply sync ``i``'s changes on a device; return the joined delta."""
    if workload == "counter_1":
        return state.increment(device)
    if workload == "counter_100":
        d = state.increment(device)
        for _ in range(99):
            d.merge(state.increment(device))
        return d
    if workload == "map_add_key":
        return state.update("new-%d-%d" % (device, i), "increment", device)
    if workload == "map_all_keys":
        d = AWMap("gcounter")
        for k in range(MAP_KEYS):
            d.merge(state.update("ad%05d" % k, "increment", device))
        return d
    # awset_add_remove: even syncs add an element, odd syncs remove it
    e = "promo-%d-%d" % (device, i // 2)
    return state.add(device, e) if i % 2 == 0 else state.remove(e)


def _kind(workload):
    return workload.split("_")[0].replace("awset", "set")


def lasp_edge_scenario(workload: str, n: int, devices: int, full: bool = False) -> Scenario:
    kind = _kind(workload)
    base = lasp_edge_base(kind)
    base_blob = wire.dumps(base)
    states = {d: wire.loads(base_blob) for d in range(1, devices + 1)}
    seq = dict.fromkeys(states, SEQ0)
    payloads, msgs, devs = [], [], []
    for i in range(n):
        d = 1 + i % devices
        delta = _le_changes(kind, workload, states[d], d, i // devices)
        shipped = states[d] if full else delta
        payloads.append(wire.dumps(shipped))
        seq[d] += 1
        msgs.append(
            messages.delta(
                d, EPOCH, seq[d], seq[d], 0, 1, full, {VAR[kind]: wire.to_typed(shipped)}
            )
        )
        devs.append(d)

    def receiver():
        agg = wire.loads(base_blob)

        def apply(blob):
            agg.merge(wire.loads(blob))

        return apply

    name = "full state" if full else "lasp-edge"
    return Scenario(name, workload, devs, payloads, msgs, receiver, _ops(workload))


def _ops(workload):
    return {"counter_100": 100, "map_all_keys": MAP_KEYS}.get(workload, 1)


# -- Loro --------------------------------------------------------------------------------


def loro_scenario(workload: str, n: int, devices: int) -> Scenario:
    import loro

    kind = _kind(workload)
    base = loro.LoroDoc()
    if kind == "counter":
        c = base.get_counter(VAR[kind])
        for r in range(100, 100 + FLEET):
            base.peer_id = r
            c.increment(FLEET_COUNT)
            base.commit()
    elif kind == "map":
        base.peer_id = 100
        m = base.get_map(VAR[kind])
        for i in range(MAP_KEYS):
            m.get_or_create_container("ad%05d" % i, loro.LoroCounter()).increment(1)
        base.commit()
    else:
        base.peer_id = 100
        m = base.get_map(VAR[kind])
        for i in range(SET_SIZE):
            m.insert("ad-%03d" % i, True)
        base.commit()
    snapshot = base.export(loro.ExportMode.Snapshot())
    docs = {}
    for d in range(1, devices + 1):
        doc = loro.LoroDoc()
        doc.import_(snapshot)
        doc.peer_id = d
        docs[d] = doc
    payloads, devs = [], []
    for i in range(n):
        d = 1 + i % devices
        doc = docs[d]
        j = i // devices
        vv = doc.oplog_vv
        if workload == "counter_1":
            doc.get_counter(VAR[kind]).increment(1)
            doc.commit()
        elif workload == "counter_100":
            c = doc.get_counter(VAR[kind])
            for _ in range(100):
                c.increment(1)
                doc.commit()  # one commit per increment, as the device's updates come
        elif workload == "map_add_key":
            m = doc.get_map(VAR[kind])
            m.get_or_create_container("new-%d-%d" % (d, j), loro.LoroCounter()).increment(1)
            doc.commit()
        elif workload == "map_all_keys":
            m = doc.get_map(VAR[kind])
            for k in range(MAP_KEYS):
                m.get_or_create_container("ad%05d" % k, loro.LoroCounter()).increment(1)
            doc.commit()
        else:
            m = doc.get_map(VAR[kind])
            e = "promo-%d-%d" % (d, j // 2)
            if j % 2 == 0:
                m.insert(e, True)
            else:
                m.delete(e)
            doc.commit()
        payloads.append(doc.export(loro.ExportMode.Updates(vv)))
        devs.append(d)

    def receiver():
        agg = loro.LoroDoc()
        agg.import_(snapshot)
        return agg.import_

    return Scenario("Loro", workload, devs, payloads, list(payloads), receiver, _ops(workload))


# -- pycrdt (Yjs) ------------------------------------------------------------------------


def pycrdt_scenario(workload: str, n: int, devices: int) -> Scenario:
    import pycrdt

    kind = _kind(workload)
    base = pycrdt.Doc(client_id=100)
    m = base.get(VAR[kind], type=pycrdt.Map)
    with base.transaction():
        if kind == "counter":
            for r in range(100, 100 + FLEET):
                m[str(r)] = FLEET_COUNT
        elif kind == "map":
            for i in range(MAP_KEYS):
                m["ad%05d" % i] = pycrdt.Map({"100": 1})
        else:
            for i in range(SET_SIZE):
                m["ad-%03d" % i] = True
    snapshot = base.get_update()
    docs, counts = {}, {}
    for d in range(1, devices + 1):
        doc = pycrdt.Doc(client_id=d)
        doc.apply_update(snapshot)
        docs[d] = doc
        counts[d] = 0
    payloads, msgs, devs = [], [], []
    for i in range(n):
        d = 1 + i % devices
        doc = docs[d]
        m = doc.get(VAR[kind], type=pycrdt.Map)
        j = i // devices
        before = doc.get_state()
        me = str(d)
        if kind == "counter":
            for _ in range(100 if workload == "counter_100" else 1):
                counts[d] += 1
                with doc.transaction():
                    m[me] = counts[d]
        elif workload == "map_add_key":
            with doc.transaction():
                m["new-%d-%d" % (d, j)] = pycrdt.Map({me: 1})
        elif workload == "map_all_keys":
            counts[d] += 1
            with doc.transaction():
                for k in range(MAP_KEYS):
                    m["ad%05d" % k][me] = counts[d]
        else:
            e = "promo-%d-%d" % (d, j // 2)
            with doc.transaction():
                if j % 2 == 0:
                    m[e] = True
                else:
                    del m[e]
        update = doc.get_update(before)
        payloads.append(update)
        msgs.append(pycrdt.create_update_message(update))
        devs.append(d)

    def receiver():
        agg = pycrdt.Doc(client_id=0)
        agg.apply_update(snapshot)
        return agg.apply_update

    return Scenario("pycrdt", workload, devs, payloads, msgs, receiver, _ops(workload))


def peer_version(system: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version({"Loro": "loro", "pycrdt": "pycrdt"}[system])
    except (PackageNotFoundError, KeyError):
        return None


def build(system: str, workload: str, n: int, devices: int) -> Scenario | None:
    """One scenario, or None when the system is a peer that is not installed."""
    if system == "lasp-edge":
        return lasp_edge_scenario(workload, n, devices)
    if system == "full state":
        return lasp_edge_scenario(workload, n, devices, full=True)
    try:
        if system == "Loro":
            return loro_scenario(workload, n, devices)
        return pycrdt_scenario(workload, n, devices)
    except ImportError:
        return None
