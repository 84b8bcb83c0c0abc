"""Crash-safe snapshot file on flash: write to a temp file, then ``os.rename`` over.

Theory of operation. The device's whole durable state (the sync node's snapshot: variables,
unacknowledged delta log, peer sessions, boot counter; plus a little app data) is one small
record, rewritten whole on every flush:

    <dir>/state        the current snapshot
    <dir>/state.tmp    the next one, while it is being written

A record is a 16-byte header and a CBOR payload::

    b"LEd1" | generation (u32 BE) | payload length (u32 BE) | CRC-32 of payload (u32 BE)

``save`` writes ``state.tmp`` completely, closes it, then renames it over ``state``. On
littlefs (the default filesystem of the ESP32 and rp2 ports) and on POSIX, rename replaces
the target atomically, so at any instant ``state`` is either the old or the new record;
a power cut or ``kill -9`` at any point leaves at worst a torn ``state.tmp``.

``load`` (at boot) reads both files, ignores any record whose magic, length or CRC is wrong
(a torn temp file), and takes the valid one with the highest generation. If that is the
temp file (the crash hit between close and rename), it is renamed over ``state`` first, so
a later torn write can never make recovery fall back to something older than what the
device already used and maybe sent.

FAT cannot rename over an existing file (FatFs returns FR_EXIST) and its metadata updates
are not atomic. MicroPython's ``VfsFat`` hides that by removing the target first; other
FAT drivers raise, and ``save`` then removes ``state`` itself before renaming. Either way a
crash between the remove and the rename leaves only ``state.tmp``, which ``load`` recovers.
That keeps the record consistent for a clean crash, but a power cut in the middle of a FAT
directory or allocation-table update can still corrupt the volume, which is why
``recovery.fs_kind`` detects FAT and the Device warns (see micropython/README.md).

Reading records back happens once per boot, so it lives in ``lasp_device.recovery``, which
the device unloads once it has started; this module keeps what every flush needs.
"""

import os

try:
    from micropython import const
except ImportError:  # CPython: the identity (no lasp_edge._compat module on a device)
    from lasp_edge._compat import const

MAGIC = b"LEd1"
HDR = const(16)  # the header: magic, generation, length, CRC-32 (u32 BE each)


class CorruptStore(Exception):
    """Snapshot files exist but none is complete and valid (not a torn temp file)."""


def _crc32(data, crc=0):
    """CRC-32 of ``data``, continuing from ``crc`` (the CRC of what came before)."""
    try:
        from binascii import crc32
    except ImportError:  # a minimal port without binascii.crc32
        crc ^= 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF
    return crc32(data, crc) & 0xFFFFFFFF


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def makedirs(path):
    """``mkdir -p`` (MicroPython's os has no makedirs)."""
    if not path or _exists(path):
        return
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + part if cur.endswith("/") or not cur else cur + "/" + part
        if not _exists(cur):
            os.mkdir(cur)


class FlashStore:
    """One snapshot record in ``directory``, replaced atomically on every ``save``."""

    def __init__(self, directory, name="state"):
        self.dir = directory.rstrip("/") or "/"
        self.path = (self.dir if self.dir != "/" else "") + "/" + name
        self.tmp = self.path + ".tmp"
        self.gen = 0  # generation of the last record loaded or saved
        self.writes = 0  # records written since boot (what wears the flash)
        self.bytes_written = 0
        self.rename_replaces = True  # False once rename refused to replace (FAT)
        makedirs(self.dir)

    def load(self):
        """The newest complete payload (bytes), or None on a fresh store.

        Raises ``CorruptStore`` if ``state`` exists but is unreadable and no valid temp
        file replaces it: a fresh start would reuse counter values the gateway already
        holds, so the app has to decide (see ``Device.start``). The work is done by the
        boot-only module ``lasp_device.recovery`` (see there why it is separate).
        """
        from lasp_device.recovery import load

        return load(self)

    def save(self, payload):
        """Write ``payload`` as the next generation; on return it is the current record.

        ``payload`` is bytes, or a function ``fill(write)`` that produces the payload by
        calling ``write(piece)`` as often as it likes (``cbor.dump``): the device streams
        its snapshot that way, so the whole encoding never has to fit in RAM at once. The
        header, which needs the length and CRC, is written last, over a placeholder.
        """
        gen = self.gen + 1
        hdr = bytearray(HDR)
        with open(self.tmp, "wb") as f:
            f.write(hdr)
            acc = [0, 0]  # payload length, CRC so far

            def write(piece):
                f.write(piece)
                acc[0] += len(piece)
                acc[1] = _crc32(piece, acc[1])

            if callable(payload):
                payload(write)
            else:
                write(payload)
            hdr[0:4] = MAGIC
            hdr[4:8] = gen.to_bytes(4, "big")
            hdr[8:12] = acc[0].to_bytes(4, "big")
            hdr[12:16] = acc[1].to_bytes(4, "big")
            f.seek(0)
            f.write(hdr)
        self._replace()
        self.gen = gen
        self.writes += 1
        self.bytes_written += HDR + acc[0]

    def _replace(self):
        if self.rename_replaces:
            try:
                os.rename(self.tmp, self.path)
                return
            except OSError:
                if not _exists(self.path):
                    raise
                self.rename_replaces = False
                print(
                    "lasp_device: WARNING rename cannot replace files here (FAT?);"
                    " snapshots are not atomic on this filesystem"
                )
        _remove(self.path)  # FAT: a crash right here leaves only the temp file (recovered)
        os.rename(self.tmp, self.path)

    def wipe(self):
        """Delete both files (a factory reset of the device's replicated state)."""
        _remove(self.tmp)
        _remove(self.path)
        self.gen = 0
