"""The device runtime (micropython/lasp_device): flash store, flush policy, sync rules.

Two kinds of tests:

* The same runtime code on CPython, driven by a simulated clock and a gateway ``Node``
  wired back to back through an in-memory stand-in for the MQTT transport: flush policy,
  epochs, "only durable data leaves", "ack only after durable", the ticks wrap.
* The flash store on the MicroPython unix port under ``kill -9`` at random instants, on
  the host filesystem and on a littlefs2 volume in a file-backed block device (every block
  write is one ``write()``, so a kill is a power cut between two flash operations), plus
  FAT detection on a real ``VfsFat`` volume.
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_helpers import ROOT, RUNTIME, SDK, find_micropython, require

sys.path.insert(0, str(RUNTIME))

from lasp_device import device as devmod  # noqa: E402
from lasp_device import flashstore, ticks  # noqa: E402
from lasp_device.device import Device  # noqa: E402
from lasp_device.flashstore import CorruptStore, FlashStore  # noqa: E402

from lasp_edge import cbor  # noqa: E402
from lasp_edge.crdts import AWMap, AWSet  # noqa: E402
from lasp_edge.sync import Node  # noqa: E402
from lasp_edge.sync import messages as M  # noqa: E402

SCRIPTS = Path(__file__).parent / "runtime_scripts"
MP_ENV = dict(os.environ, MICROPYPATH="%s:%s" % (SDK, RUNTIME))


@pytest.fixture(scope="module")
def micropython():
    return require(find_micropython(), "micropython (the unix port)")


# -- a simulated world ------------------------------------------------------------------


class Clock:
    """A ticks_ms() that the test moves; wraps like a 32-bit device (2**30)."""

    def __init__(self, start=0):
        self.t = start & (ticks.PERIOD - 1)

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = ticks.ticks_add(self.t, ms)
        return self.t


class LoopTransport:
    """Stand-in for ``lasp_device.transport.Transport``: the device's uplink goes straight
    into a gateway ``Node`` (which commits at once), the gateway's output comes back
    through ``poll``. ``online`` can be switched off to simulate a dead link."""

    def __init__(self, gw, dev_id, gw_clock):
        self.gw = gw
        self.dev_id = dev_id
        self.gw_clock = gw_clock
        self.online = True
        self.on_message = None
        self.published = []  # decoded messages the device sent
        self.inbox = []
        self.on_publish = None

    def poll(self, now):
        self.pump()
        inbox, self.inbox = self.inbox, []
        for data in inbox:
            self.on_message(b"le/d/%s" % self.dev_id.encode(), data)
        return self.online

    def pump(self):
        if not self.online:
            return
        self.gw.tick(self.gw_clock())
        for peer, data in self.gw.take():
            assert peer == self.dev_id
            self.inbox.append(data)

    def publish(self, topic, payload):
        if not self.online:
            return False
        assert topic == "le/u/%s" % self.dev_id
        m = M.decode(payload)
        self.published.append(m)
        if self.on_publish is not None:
            self.on_publish(m)
        for ev in self.gw.receive(payload, self.gw_clock(), self.dev_id):
            if ev[0] == "merged":
                self.gw.commit(ev[3])
        for _peer, data in self.gw.take():
            self.inbox.append(data)
        return True

    def close(self):
        self.online = False


def make_gw():
    gw = Node("gw", auto_declare=True, sync_period_ms=10, ack_timeout_ms=100)
    gw.declare("ads", AWSet())
    gw.update("ads", "add", "gw", "ad-1")
    return gw


def make_device(path, clock, **kw):
    d = Device("dev1", path=str(path), interests=("ads",), clock=clock, **kw)
    d.declare("ads", AWSet())
    d.declare("impressions", AWMap("gcounter"))
    return d


def count(dev, n, ad="ad-1"):
    for _ in range(n):
        dev.update("impressions", "update", ad, "increment", dev.id)


def gw_total(gw, dev_id="dev1"):
    imps = gw.vars.get("impressions")
    if imps is None:
        return 0
    return sum(imps.get(k).get(dev_id) for k in imps.keys())  # noqa: SIM118 (an AWMap)


def run(dev, clock, ms, step=50):
    for _ in range(ms // step):
        clock.advance(step)
        dev.poll()


def stored(dev_path):
    """Decode what is on flash right now: (epoch, snapshot, app)."""
    st = FlashStore(str(dev_path))
    rec = cbor.loads(st.load())
    return rec[1]["epoch"], rec[1], rec[2]


# -- flush policy and epochs -------------------------------------------------------------


def test_defaults_bound_loss_and_are_documented():
    readme = (RUNTIME / "README.md").read_text()
    assert devmod.FLUSH_EVERY == 100 and devmod.FLUSH_MS == 10000
    assert devmod.SYNC_PERIOD_MS == 10000
    assert "100 updates" in readme and "10 s" in readme


def test_update_works_offline_and_flush_every_n(tmp_path):
    clock = Clock()
    dev = make_device(tmp_path, clock, flush_every=5, flush_ms=10**6)
    dev.start()
    assert dev.store.writes == 1  # the epoch, before anything else
    count(dev, 4)
    assert dev.store.writes == 1 and dev.dirty == 4
    count(dev, 1)
    assert dev.store.writes == 2 and dev.dirty == 0
    assert dev.value("impressions") == {"ad-1": 5}


def test_flush_after_t_ms_and_explicit_flush(tmp_path):
    clock = Clock()
    dev = make_device(tmp_path, clock, flush_every=10**6, flush_ms=1000)
    dev.start()
    count(dev, 3)
    clock.advance(999)
    dev.poll()
    assert dev.store.writes == 1
    clock.advance(1)
    dev.poll()
    assert dev.store.writes == 2
    assert dev.flush() is False  # nothing new: no write
    count(dev, 1)
    assert dev.flush() is True and dev.store.writes == 3
    assert stored(tmp_path)[1]["vars"]["impressions"] == [11, dev.var("impressions").to_wire()]
    dev2 = make_device(tmp_path, Clock())
    dev2.start()
    assert dev2.value("impressions") == {"ad-1": 4}


def test_epoch_is_a_persisted_boot_counter(tmp_path):
    for expect in (1, 2, 3):
        dev = make_device(tmp_path, Clock())
        assert dev.start() == expect
        # durable before any connection could announce it
        assert stored(tmp_path)[0] == expect
        assert dev.death_message() == M.death("dev1", expect)


def test_start_recovers_declarations_in_any_order(tmp_path):
    dev = make_device(tmp_path, Clock())
    dev.start()
    count(dev, 2)
    dev.flush()
    dev2 = Device("dev1", path=str(tmp_path), clock=Clock())
    dev2.start()  # declared nothing: recovered variables are there
    dev2.declare("impressions", AWMap("gcounter"))  # same type: kept
    assert dev2.value("impressions") == {"ad-1": 2}
    with pytest.raises(ValueError):
        dev2.declare("impressions", AWSet())
    dev3 = Device("dev1", path=str(tmp_path), clock=Clock())
    dev3.declare("impressions", AWSet())
    with pytest.raises(ValueError):
        dev3.start()


def test_a_store_of_another_device_is_refused(tmp_path):
    make_device(tmp_path, Clock()).start()
    with pytest.raises(ValueError, match="belongs to replica"):
        Device("dev2", path=str(tmp_path), clock=Clock()).start()


def test_app_data_persists(tmp_path):
    dev = make_device(tmp_path, Clock())
    dev.start()
    dev.set_app("window", 7)
    dev.flush()
    dev2 = make_device(tmp_path, Clock())
    dev2.start()
    assert dev2.app == {"window": 7}


# -- sync rules ----------------------------------------------------------------------------


def online_device(tmp_path, clock, **kw):
    gw = make_gw()
    dev = make_device(tmp_path, clock, **kw)
    dev.start()
    t = LoopTransport(gw, "dev1", clock)
    dev.attach(t)
    return dev, gw, t


def test_sync_round_trip_and_interest(tmp_path):
    clock = Clock()
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=200)
    run(dev, clock, 400)
    assert dev.value("ads") == {"ad-1"}  # the device's interest arrived
    count(dev, 7)
    run(dev, clock, 600)
    assert gw_total(gw) == 7
    assert dev.acked >= 1
    kinds = {m.kind for m in t.published}
    assert M.BIRTH in kinds and M.DELTA in kinds


def test_only_durable_data_leaves(tmp_path, monkeypatch):
    clock = Clock()
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=100, flush_ms=100)
    run(dev, clock, 300)
    count(dev, 3)
    run(dev, clock, 300)
    assert gw_total(gw) == 3
    broken = []

    def fail(payload):
        broken.append(payload)  # bytes, or the function that streams them
        raise OSError(28, "no space left on device")

    monkeypatch.setattr(dev.store, "save", fail)
    count(dev, 5)  # update() still succeeds: offline-first, even with a full flash
    run(dev, clock, 1000)
    assert broken and dev.flush_errors >= 1
    assert gw_total(gw) == 3, "a change that is not on flash was sent"
    monkeypatch.undo()
    run(dev, clock, 1000)
    assert gw_total(gw) == 8


def test_ack_only_after_the_merge_is_on_flash(tmp_path):
    clock = Clock()
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=100, flush_every=10**6)
    run(dev, clock, 300)
    checked = []

    def on_publish(m):
        if m.kind == M.ACK and m.recv_to > 1:
            # at the moment the ACK leaves, the merged ads are in the snapshot on flash
            snap = stored(tmp_path)[1]
            ads = AWSet.from_wire(snap["vars"]["ads"][1])
            checked.append(sorted(ads.value()))

    t.on_publish = on_publish
    gw.update("ads", "add", "gw", "ad-2")
    run(dev, clock, 500)
    assert checked and checked[-1] == ["ad-1", "ad-2"]


def test_offline_then_back_resends_everything(tmp_path):
    clock = Clock()
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=100, flush_ms=100)
    run(dev, clock, 300)
    t.online = False
    count(dev, 50)
    run(dev, clock, 2000)
    assert gw_total(gw) == 0
    t.online = True
    run(dev, clock, 2000)
    assert gw_total(gw) == 50
    assert dev.connects == 2


def test_ticks_wrap_is_harmless(tmp_path):
    """Start 3 s before ticks_ms wraps (2**30 on 32-bit ports) and keep syncing across it."""
    clock = Clock(ticks.PERIOD - 3000)
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=200, flush_ms=500)
    total = 0
    for _ in range(30):  # 30 x 250 ms: crosses the wrap
        count(dev, 2)
        total += 2
        run(dev, clock, 250)
    assert clock.t < 10**6  # wrapped
    run(dev, clock, 1000)
    assert gw_total(gw) == total
    assert dev.next_wakeup_ms() <= 10000


def test_node_clock_is_rebased_before_it_leaves_small_ints(tmp_path):
    clock = Clock()
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=100)
    run(dev, clock, 300)
    dev._mono = (1 << 29) - 100  # as after ~6 days of uptime
    count(dev, 4)
    run(dev, clock, 1000)
    assert dev._mono < (1 << 29)
    p = dev.node.peers["gw"]
    assert p.last_send is None or abs(p.last_send - dev._mono) < 5000
    assert gw_total(gw) == 4


# -- the flash store -------------------------------------------------------------------


def test_streamed_save_writes_the_same_record_as_bytes(tmp_path, monkeypatch):
    """``save(fill)`` (the device streams its snapshot) gives the record ``save(bytes)``
    gives, byte for byte, with the CRC continued piece by piece, also through the
    pure-Python CRC a port without ``binascii.crc32`` uses."""
    import zlib

    payload = cbor.dumps([1, {"vars": {"v%d" % i: [i, b"x" * 30] for i in range(40)}}, {}])
    a, b = FlashStore(str(tmp_path / "a")), FlashStore(str(tmp_path / "b"))
    a.save(payload)
    b.save(lambda write: cbor.dump(cbor.loads(payload), write, 16))
    assert (tmp_path / "a" / "state").read_bytes() == (tmp_path / "b" / "state").read_bytes()
    assert b.load() == payload and b.bytes_written == a.bytes_written == 16 + len(payload)

    real_import = __import__

    def no_binascii(name, *args, **kwargs):
        if name == "binascii":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_binascii)
    crc = 0
    for i in range(0, len(payload), 50):
        crc = flashstore._crc32(payload[i : i + 50], crc)
    monkeypatch.undo()
    assert crc == zlib.crc32(payload)


def test_lazy_snapshot_streams_the_bytes_of_the_plain_one(tmp_path):
    """``Node.snapshot(lazy=True)`` (what a flush streams) encodes exactly like
    ``snapshot()``, with unacknowledged log segments and received data in it."""
    clock = Clock()
    dev, gw, t = online_device(tmp_path, clock, sync_period_ms=100, flush_ms=100)
    run(dev, clock, 300)
    count(dev, 3)
    run(dev, clock, 300)
    count(dev, 4, "ad-2")  # not synced yet: in the log, unacknowledged
    assert dev.node.log.by_var, "the snapshot should hold log segments"
    pieces: list = []
    cbor.dump(dev.node.snapshot(True), lambda piece: pieces.append(bytes(piece)), 8)
    assert b"".join(pieces) == cbor.dumps(dev.node.snapshot())
    assert len(pieces) > 5


def test_torn_temp_file_is_ignored(tmp_path):
    st = FlashStore(str(tmp_path))
    st.save(b"one")
    st.save(b"two")
    good = (tmp_path / "state").read_bytes()
    for torn in (good[:10], good[:-1], good[:16] + b"tw0", b"", b"LEd1" + b"\0" * 40):
        (tmp_path / "state.tmp").write_bytes(torn)
        st2 = FlashStore(str(tmp_path))
        assert st2.load() == b"two"
        assert not (tmp_path / "state.tmp").exists()


def test_complete_temp_file_is_recovered_and_promoted(tmp_path):
    st = FlashStore(str(tmp_path))
    st.save(b"one")
    os.rename(tmp_path / "state", tmp_path / "keep")
    st.save(b"two")  # now state = two; put "one" back as state and "two" as the temp
    os.rename(tmp_path / "state", tmp_path / "state.tmp")
    os.rename(tmp_path / "keep", tmp_path / "state")
    st2 = FlashStore(str(tmp_path))
    assert st2.load() == b"two"  # the newer complete record wins (crash before rename)
    assert (tmp_path / "state").read_bytes().endswith(b"two")
    assert not (tmp_path / "state.tmp").exists()
    st2.save(b"three")
    assert FlashStore(str(tmp_path)).load() == b"three"


def test_fat_style_rename_is_handled(tmp_path, monkeypatch):
    """FatFs cannot rename over a file: remove first, and recover the temp if cut there."""
    real = os.rename

    def fat_rename(a, b):
        if os.path.exists(b):
            raise OSError(17, "EEXIST")
        real(a, b)

    monkeypatch.setattr(flashstore.os, "rename", fat_rename)
    st = FlashStore(str(tmp_path))
    st.save(b"one")
    st.save(b"two")
    assert not st.rename_replaces
    assert FlashStore(str(tmp_path)).load() == b"two"
    # a crash between remove and rename leaves only the temp file
    st.save(b"three")
    os.rename(tmp_path / "state", tmp_path / "state.tmp")
    assert FlashStore(str(tmp_path)).load() == b"three"


def test_damaged_snapshot_without_a_copy_raises(tmp_path):
    st = FlashStore(str(tmp_path))
    st.save(b"one")
    data = bytearray((tmp_path / "state").read_bytes())
    data[-1] ^= 1
    (tmp_path / "state").write_bytes(bytes(data))
    with pytest.raises(CorruptStore):
        FlashStore(str(tmp_path)).load()


def _crash_loop(micropython, tmp_path, extra, kills, seed):
    rng = random.Random(seed)
    oracle = tmp_path / "oracle"
    script = str(SCRIPTS / "store_crash.py")
    store = str(tmp_path / "st")
    last = 0
    for i in range(kills):
        p = subprocess.Popen(
            [micropython, script, "write", store, str(oracle)] + extra,
            env=MP_ENV,
            cwd=str(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if rng.random() < 0.8:  # mostly while it writes; sometimes during boot/recovery
            size = oracle.stat().st_size if oracle.exists() else 0
            end = time.monotonic() + 5
            while time.monotonic() < end and p.poll() is None:
                if oracle.exists() and oracle.stat().st_size > size:
                    break
                time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        p.kill()  # SIGKILL
        out = p.communicate(timeout=10)[0].decode()
        assert p.returncode == -9, "writer died on its own:\n" + out
        r = subprocess.run(
            [micropython, script, "check", store] + extra,
            env=MP_ENV,
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0, "recovery failed after kill %d (seed %d):\n%s%s" % (
            i,
            seed,
            r.stdout,
            r.stderr,
        )
        text = oracle.read_text() if oracle.exists() else ""
        lines = [ln.split() for ln in text.splitlines() if ln.strip()]
        done = [int(x[1]) for x in lines if len(x) == 2 and x[0] == "D"]
        begun = [int(x[1]) for x in lines if len(x) == 2 and x[0] == "B"]
        last_done = done[-1] if done else 0
        allowed = {last_done}
        if begun and begun[-1] == last_done + 1:
            allowed.add(last_done + 1)  # killed inside save(): old or new, nothing else
        got = r.stdout.split()
        loaded = 0 if got == ["EMPTY"] else int(got[1])
        assert loaded in allowed, "kill %d (seed %d): loaded %d, allowed %s" % (
            i,
            seed,
            loaded,
            sorted(allowed),
        )
        assert loaded >= last
        last = loaded
        # the next writer continues from what was loaded: keep the oracle consistent
        with open(oracle, "a") as f:
            f.write("D %d\n" % loaded)
    return last


@pytest.mark.parametrize("fs", ["posix", "littlefs"])
def test_store_survives_kill9_at_random_instants(micropython, tmp_path, fs):
    extra = ["lfs", str(tmp_path / "flash.img")] if fs == "littlefs" else []
    seed = int(os.environ.get("LASP_SEED", "0")) or random.randrange(1 << 30)
    last = _crash_loop(micropython, tmp_path, extra, kills=25, seed=seed)
    assert last > 25, "the writer made too little progress to test anything"


FAT_SCRIPT = r"""
import vfs
from lasp_device.flashstore import FlashStore
from lasp_device.recovery import fs_kind
from lasp_device.device import Device
from lasp_edge.crdts.gcounter import GCounter

class RAMBlockDevice:
    def __init__(self, n, bs=512):
        self.bs = bs
        self.data = bytearray(n * bs)
        self.n = n
    def readblocks(self, b, buf, off=0):
        a = b * self.bs + off
        buf[:] = self.data[a:a + len(buf)]
    def writeblocks(self, b, buf, off=None):
        a = b * self.bs + (off or 0)
        self.data[a:a + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4: return self.n
        if op == 5: return self.bs
        if op == 6: return 0

fat = RAMBlockDevice(128)
vfs.VfsFat.mkfs(fat)
vfs.mount(vfs.VfsFat(fat), "/fat")
lfs = RAMBlockDevice(64)
vfs.VfsLfs2.mkfs(lfs)
vfs.mount(vfs.VfsLfs2(lfs), "/lfs")
print("KIND fat", fs_kind("/fat/lasp"))
print("KIND lfs", fs_kind("/lfs/lasp"))
d = Device("dev1", path="/fat/lasp")
d.declare("c", GCounter())
d.start()
for i in range(5):
    d.update("c", "increment", "dev1")
    d.flush()
d2 = Device("dev1", path="/fat/lasp")
d2.declare("c", GCounter())
print("EPOCH", d2.start(), "VALUE", d2.value("c"), "REPLACES", d.store.rename_replaces)
"""


def test_fat_is_detected_and_warned_about(micropython, tmp_path):
    script = tmp_path / "fat_check.py"
    script.write_text(FAT_SCRIPT)
    r = subprocess.run(
        [micropython, "-X", "heapsize=1M", str(script)],
        env=MP_ENV,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "KIND fat fat" in out and "KIND lfs lfs" in out
    assert "WARNING /fat/lasp is on FAT" in out
    # MicroPython's VfsFat emulates rename-over (it removes the target first, not
    # atomically); a cut between the two leaves only the temp file, which load() recovers.
    assert "EPOCH 2 VALUE 5 REPLACES True" in out


def test_fs_kind_on_the_host(tmp_path):
    from lasp_device.recovery import fs_kind

    kind = fs_kind(str(tmp_path))
    assert kind == "fat" or kind.startswith("posix:") or kind == "?"


def test_runtime_is_in_the_repo():
    for name in ("device.py", "flashstore.py", "ticks.py", "hw.py", "app.py", "__init__.py"):
        assert (RUNTIME / "lasp_device" / name).exists()
    assert (ROOT / "micropython" / "package.json").exists()
