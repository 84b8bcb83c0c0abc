# MicroPython: what a board's firmware does at power-on when it has a ROMFS partition.
#
#     romfs_boot.py SCRIPT [args]     (started by romfs_launch.py, which sets $LASP_ROMFS)
#
# Mounts the image at /rom, puts /rom and /rom/lib first on sys.path (as the firmware of a
# ROMFS-enabled board does), then runs SCRIPT as the main program. Kept tiny: it is
# compiled into the capped heap before anything else runs.
import os
import sys

import uctypes
import vfs

_a, _n = os.getenv("LASP_ROMFS").split(":")
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_a), int(_n))), "/rom")
sys.path.insert(0, "/rom/lib")
sys.path.insert(0, "/rom")
sys.argv.pop(0)
del _a, _n
execfile(sys.argv[0], {"__name__": "__main__"})  # noqa: F821 (a MicroPython builtin)
