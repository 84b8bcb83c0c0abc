"""Boot-only code: recover the device's state from flash, then leave RAM.

Why a module of its own. Everything here runs once, in ``Device.start()``: find the
filesystem kind (the FAT warning), read both snapshot files and keep the newest complete
record, decode it and restore the node. On a device every function of an imported module
costs heap for as long as the module is loaded, even when its bytecode stays in flash
(ROMFS, frozen), and removing single functions afterwards frees almost nothing. So the
device imports this module for ``start()`` and then removes it from ``sys.modules`` (and
from the ``lasp_device`` package), which lets the collector take the whole module back.
``FlashStore.load`` imports it again when called on its own (tools, tests).

The record format and the recovery rules are in ``flashstore``'s docstring and in
micropython/README.md ("Flash layout and recovery").
"""

import os

from lasp_edge import cbor

from lasp_device.device import FORMAT
from lasp_device.flashstore import HDR, MAGIC, CorruptStore, _crc32, _exists, _remove


def _abspath(path):
    if path.startswith("/"):
        return path
    cwd = os.getcwd()
    return cwd.rstrip("/") + "/" + path


def _under(path, mount):
    return mount == "/" or path == mount or path.startswith(mount.rstrip("/") + "/")


def fs_kind(path):
    """Best guess of the filesystem holding ``path``: 'fat', 'lfs', 'posix:<type>' or '?'.

    Heuristic, in order:
    1. MicroPython's VFS table (``vfs.mount()`` with no arguments, v1.23+; ``os.mount()`` on
       some older builds): the mount with the longest prefix of ``path`` tells its class,
       ``VfsFat`` or ``VfsLfs1``/``VfsLfs2``.
    2. A host filesystem (``VfsPosix`` on the unix port, or CPython): the longest matching
       mount point in /proc/mounts gives the Linux type (``vfat``, ``msdos``, ``exfat`` are
       FAT).
    3. ``os.statvfs``: Linux reports a maximum name length of 1530 for vfat (255 UTF-16
       units, 6 bytes each); MicroPython's FAT and littlefs both say 255, so this only
       helps on hosts.
    A definitive check happens later anyway: ``FlashStore.save`` notices when rename
    refuses to replace an existing file, which is FAT behaviour.
    """
    p = _abspath(path)
    kind = "?"
    mounts = None
    try:
        import vfs  # type: ignore[import-not-found]

        mounts = vfs.mount()
    except Exception:
        try:
            mounts = os.mount()
        except Exception:
            mounts = None
    if mounts:
        best = None
        for obj, mp in mounts:
            if _under(p, mp) and (best is None or len(mp) > len(best[1])):
                best = (obj, mp)
        if best is not None:
            name = type(best[0]).__name__
            if name == "VfsFat":
                return "fat"
            if name.startswith("VfsLfs"):
                return "lfs"
            if name != "VfsPosix":
                return name
    # A host filesystem: ask Linux.
    try:
        best = None
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and _under(p, parts[1]):
                    if best is None or len(parts[1]) > len(best[0]):
                        best = (parts[1], parts[2])
        if best is not None:
            kind = "posix:" + best[1]
            if best[1] in ("vfat", "msdos", "exfat", "fat", "fat32"):
                return "fat"
    except OSError:
        pass
    try:
        st = os.statvfs(path)
        if st[9] == 1530:
            return "fat"
    except (OSError, AttributeError, IndexError):
        pass
    return kind


def read_record(path):
    """Return (generation, payload) of a valid record at ``path``, else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < HDR or data[:4] != MAGIC:
        return None
    n = int.from_bytes(data[8:12], "big")
    if n != len(data) - HDR:
        return None
    payload = data[HDR:]
    if _crc32(payload) != int.from_bytes(data[12:16], "big"):
        return None
    return int.from_bytes(data[4:8], "big"), payload


def load(store):
    """``FlashStore.load``: the newest complete payload of ``store``, or None when fresh."""
    main = read_record(store.path)
    tmp = read_record(store.tmp)
    if tmp is not None and (main is None or tmp[0] > main[0]):
        # Crashed after the temp file was complete: promote it before anything else.
        store._replace()
        main = tmp
    elif _exists(store.tmp):
        _remove(store.tmp)  # torn or stale: ignored
    if main is None:
        if _exists(store.path):
            raise CorruptStore("%s is damaged and no valid %s exists" % (store.path, store.tmp))
        store.gen = 0
        return None
    store.gen = main[0]
    return main[1]


def recover(dev):
    """Restore ``dev`` (a ``Device`` before ``start``) from its store; return the stored
    boot counter (0 on a fresh store). Warns when the store is on FAT."""
    store = dev.store
    dev.fs = fs_kind(store.dir)
    if dev.fs == "fat":
        print(
            "lasp_device: WARNING %s is on FAT: rename is not atomic there, a power cut"
            " during a flush can corrupt the volume; use littlefs" % store.dir
        )
    payload = load(store)
    if payload is None:
        return 0
    rec = cbor.loads(payload)
    del payload
    if type(rec) is not list or len(rec) != 3 or rec[0] != FORMAT:
        raise ValueError("unknown snapshot format in %s" % store.path)
    snap = rec[1]
    if snap["replica"] != dev.id:
        raise ValueError(
            "store %s belongs to replica %r, not %r" % (store.dir, snap["replica"], dev.id)
        )
    node = dev.node
    declared = node.vars
    node.restore(snap)
    for name, state in declared.items():
        node.declare(name, state)  # raises on a type mismatch
    dev.app = rec[2]
    return snap["epoch"]
