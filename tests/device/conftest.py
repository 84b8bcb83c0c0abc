"""Fixtures for the tests that run on real MicroPython (the unix port) and mpy-cross.

The binaries are found next to the running interpreter (the venv's ``bin/``) or on PATH.
If one is missing the tests skip with the reason, except in CI (``CI=true``), where they
fail: CI must prove the portable core on MicroPython, not quietly skip it.
"""

import os
import sys

import pytest
from mp_harness import (
    SDK,
    TEST_HELPERS,
    TESTS,
    compile_mpy,
    device_scripts,
    find_tool,
    portable_modules,
)

from lasp_edge.tooling.bundle import source_name


def _require(name):
    path = find_tool(name)
    if path is None:
        reason = "%s not found next to %s or on PATH (pip install -e '.[dev]')" % (
            name,
            sys.executable,
        )
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: the MicroPython tests must run, but " + reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def micropython():
    return _require("micropython")


@pytest.fixture(scope="session")
def mpy_cross():
    return _require("mpy-cross")


@pytest.fixture(scope="session")
def mpy_bundle(mpy_cross, tmp_path_factory):
    """The portable package compiled to .mpy with its package layout: what users flash."""
    out = tmp_path_factory.mktemp("mpy_bundle")
    for rel in portable_modules():
        r = compile_mpy(mpy_cross, SDK / rel, out / rel.with_suffix(".mpy"), source_name(rel))
        if r.returncode != 0:
            pytest.fail("mpy-cross failed on %s:\n%s%s" % (rel, r.stdout, r.stderr))
    return out


@pytest.fixture(scope="session")
def mpy_helpers(mpy_cross, tmp_path_factory):
    """The portable test helpers compiled to .mpy, kept apart from what users flash."""
    out = tmp_path_factory.mktemp("mpy_helpers")
    for name in TEST_HELPERS:
        dst = out / name.replace(".py", ".mpy")
        r = compile_mpy(mpy_cross, TESTS / name, dst, "tests/" + name)
        if r.returncode != 0:
            pytest.fail("mpy-cross failed on %s:\n%s%s" % (name, r.stdout, r.stderr))
    return out


def pytest_generate_tests(metafunc):
    if "portable_module" in metafunc.fixturenames:
        mods = portable_modules()
        metafunc.parametrize("portable_module", mods, ids=[str(m) for m in mods])
    if "device_script" in metafunc.fixturenames:
        metafunc.parametrize("device_script", device_scripts())
