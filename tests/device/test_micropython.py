"""The portable core on real MicroPython: it compiles, its scripts pass, it fits.

1. Every portable module, and every .py under micropython/ and firmware_examples/, compiles
   with mpy-cross (the compiler users run before flashing).
2. Every tests/device/*_mp.py script passes under the unix port with a capped heap, once
   importing lasp_edge from the source tree and once from a bundle of .mpy files.
3. The heap that ``import lasp_edge`` keeps in use is measured (from source and from .mpy)
   and written to build/micropython_heap.json for docs/BENCHMARKS.md.
"""

import configparser
import json
import re

import pytest
from mp_harness import (
    DEVICE_HEAP,
    HEAP_TARGET,
    ROOT,
    SDK,
    compile_mpy,
    device_scripts,
    device_sources,
    portable_modules,
    run_micropython,
)

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


def _check_script(micropython, script, *extra):
    r = run_micropython(micropython, [ROOT / "tests" / "device" / script, ROOT] + list(extra))
    lines = r.stdout.strip().splitlines()
    last = CLOSING.match(lines[-1]) if lines else None
    assert r.returncode == 0 and last and last.group(2) == "0", _show(r)
    assert int(last.group(1)) > 0, "the script checked nothing\n" + _show(r)
    return r


def test_device_script_from_source(micropython, device_script):
    r = _check_script(micropython, device_script)
    if "lasp_edge from" in r.stdout:  # our scripts say where the package came from
        assert str(SDK) in r.stdout, _show(r)


def test_device_script_from_mpy(micropython, device_script, mpy_bundle):
    r = _check_script(micropython, device_script, mpy_bundle)
    if "lasp_edge from" in r.stdout:  # our scripts say where the package came from
        assert str(mpy_bundle) in r.stdout, _show(r)


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


def test_import_heap(micropython, mpy_bundle):
    out = {
        "comment": (
            "Heap kept in use by `import lasp_edge` on the MicroPython unix port (64-bit: "
            "objects are about twice their size on a 32-bit board), gc.mem_alloc() after "
            "gc.collect() before and after the import. min_heapsize_kib is the smallest "
            "-X heapsize under which the import succeeds (it includes the transient peak "
            "of loading, and for source, of compiling). Written by "
            "tests/device/test_micropython.py."
        ),
        "device_heap": DEVICE_HEAP,
        "target_heap": HEAP_TARGET,
    }
    r = run_micropython(micropython, ["-c", "import sys; print(sys.implementation)"])
    out["micropython"] = r.stdout.strip()
    out["mpy_bundle_bytes"] = sum(p.stat().st_size for p in mpy_bundle.rglob("*.mpy"))
    out["modules"] = [str(m) for m in portable_modules()]
    for label, path in (("source", SDK), ("mpy", mpy_bundle)):
        used, r = _probe(micropython, path, DEVICE_HEAP)
        assert used is not None and used > 0, _show(r)
        at_target = _probe(micropython, path, HEAP_TARGET)[0]
        out[label] = {
            "heap_in_use_bytes": used,
            "min_heapsize_kib": _min_heap_kib(micropython, path),
            "imports_within_target_heap": at_target is not None,
        }
    build = ROOT / "build"
    build.mkdir(exist_ok=True)
    (build / "micropython_heap.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


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


@pytest.mark.parametrize("rel", ["crdt_ops.py", "crdt_laws.py"])
def test_portable_test_helpers_compile(mpy_cross, rel, tmp_path):
    """The shared op table and laws are device code too."""
    r = compile_mpy(mpy_cross, ROOT / "tests" / rel, tmp_path / "out.mpy")
    assert r.returncode == 0, _show(r)
