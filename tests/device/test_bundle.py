"""Tooling: ``lasp-edge bundle`` (the .mpy files users flash), ``lasp-edge flash``, mip.

The bundle for the unix port is what the device tests run from (``unix_bundle``), so CI
executes exactly the compiled files a board gets, against mosquitto.
"""

import json
import os
import posixpath
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from fleet_helpers import (  # noqa: F401 (unix_bundle, unix_romfs are fixtures)
    MOSQUITTO,
    ROOT,
    RUNTIME,
    SDK,
    Broker,
    DeviceProc,
    Gateway,
    find_micropython,
    parse_oracle,
    reap,
    require,
    romfs_launch,
    unix_bundle,
    unix_romfs,
)

from lasp_edge.tooling import bundle as B
from lasp_edge.tooling import flash as F

CLI = [sys.executable, "-m", "lasp_edge.cli"]


def cli(*args, timeout=300):
    return subprocess.run(
        CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=str(ROOT)
    )


def expected_modules(with_mqtt=False):
    """Every module a device needs, relative to lib/, as .mpy: on a board (the default)
    without lasp_device/mqtt (boards use umqtt.simple), which the unix bundle carries."""
    out = {"lasp_edge/%s" % f for f in B.CORE_FILES}
    for d in B.CORE_DIRS:
        out |= {"lasp_edge/%s/%s" % (d, p.name) for p in (SDK / "lasp_edge" / d).glob("*.py")}
    out |= {"lasp_device/%s" % p.name for p in (RUNTIME / "lasp_device").glob("*.py")}
    out -= {"lasp_device/" + name for name in B.CPYTHON_ONLY}
    if not with_mqtt:
        out.discard("lasp_device/" + B.MQTT_CLIENT)
    return {m[:-3] + ".mpy" for m in out}


@pytest.fixture(scope="module")
def mpy_cross_tool():
    try:
        return B.find_mpy_cross()
    except B.BundleError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.mark.parametrize("target", ["esp32", "rp2", "unix"])
def test_bundle_layout_sizes_and_report(mpy_cross_tool, tmp_path, target):
    out = tmp_path / "out"
    r = cli("bundle", "--target", target, out)
    assert r.returncode == 0, r.stderr
    lib = out / "lib"
    files = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    assert files == expected_modules(with_mqtt=target == "unix")
    for p in lib.rglob("*.mpy"):
        head = p.read_bytes()[:2]
        assert head == b"M\x06", "%s is not an mpy v6 file" % p
    # the report: one line per file with its size, then the total
    lines = r.stdout.strip().splitlines()
    sizes = {ln.split()[1]: int(ln.split()[0]) for ln in lines if ln.split()[1].startswith("lib/")}
    assert sizes == {"lib/" + f: (lib / f).stat().st_size for f in files}
    total_line = [ln for ln in lines if "total .mpy bytes" in ln][0]
    total = int(total_line.split()[0])
    assert total == sum(sizes.values())
    assert ("mpremote connect PORT cp -r %s :" % (out / "lib")) in r.stdout
    if target == "esp32":
        record = {
            "command": "lasp-edge bundle --target esp32 OUT",
            "total_mpy_bytes": total,
            "goal_bytes": B.SIZE_GOAL,
            "core_bytes": sum(n for f, n in sizes.items() if f.startswith("lib/lasp_edge/")),
            "runtime_bytes": sum(n for f, n in sizes.items() if f.startswith("lib/lasp_device/")),
            "files": sizes,
        }
        (ROOT / "build").mkdir(exist_ok=True)
        (ROOT / "build" / "bundle_size.json").write_text(json.dumps(record, indent=2) + "\n")


def test_mqtt_client_only_where_asked_and_the_app_with_its_stub(mpy_cross_tool, tmp_path):
    """esp32/rp2 bundles leave lasp_device.mqtt out unless --with-mqtt (boards use
    umqtt.simple); unix keeps it unless --without-mqtt. ``--app DIR`` compiles DIR/main.py
    as lib/NAME.mpy (so it is in the ROMFS image too), writes the stub OUT/main.py that
    imports it, and reports it apart from the library total."""
    mqtt = "lasp_device/mqtt.mpy"
    for target, flag, present in (
        ("esp32", None, False),
        ("esp32", "--with-mqtt", True),
        ("rp2", None, False),
        ("unix", None, True),
        ("unix", "--without-mqtt", False),
    ):
        out = tmp_path / ("%s%s" % (target, flag or ""))
        r = cli("bundle", "--target", target, *([flag] if flag else []), out)
        assert r.returncode == 0, r.stderr
        assert (out / "lib" / mqtt).exists() == present, (target, flag)
        assert ("lib/" + mqtt in r.stdout) == present
    out = tmp_path / "app"
    ex = ROOT / "firmware_examples" / "ad_counter"
    r = cli("bundle", "--target", "esp32", "--romfs", "--app", ex, out)
    assert r.returncode == 0, r.stderr
    app = out / "lib" / "ad_counter.mpy"
    assert app.read_bytes()[:2] == b"M\x06"
    stub = (out / "main.py").read_text()
    assert [ln for ln in stub.splitlines() if not ln.startswith("#")] == ["import ad_counter"]
    assert "%7d  lib/ad_counter.mpy (the app, not in the total)" % app.stat().st_size in r.stdout
    total = int([ln for ln in r.stdout.splitlines() if "total .mpy" in ln][0].split()[0])
    lib_files = [p for p in (out / "lib").rglob("*.mpy") if p != app]
    assert total == sum(p.stat().st_size for p in lib_files)
    assert (out / "lasp.romfs").read_bytes() == B.romfs_image(out / "lib")  # the app inside
    r = cli("bundle", "--app", tmp_path, tmp_path / "bad")
    assert r.returncode == 2 and "no main.py" in r.stderr


def test_bundle_excludes_cpython_only_code(unix_bundle):  # noqa: F811
    names = {p.name for p in Path(unix_bundle).rglob("*.mpy")}
    for cpython_only in ("cli", "demo", "core", "bundle", "flash", "_compat", "ticks"):
        assert cpython_only + ".mpy" not in names


def test_types_keep_the_crdt_modules_they_need(mpy_cross_tool, tmp_path):
    """``--types`` keeps those CRDT modules, what they import and the shared ones; ``--app``
    defaults to the types the app names; unknown names are refused with the valid ones."""
    shared = ["__init__", "base", "registry"]
    assert B.crdt_modules(["gcounter"]) == sorted(shared + ["gcounter"])
    assert B.crdt_modules(["pncounter"]) == sorted(shared + ["gcounter", "pncounter"])
    assert B.crdt_modules(["twopset", "awset"]) == sorted(
        shared + ["awset", "causal", "gset", "twopset"]
    )
    every = sorted(p.stem for p in (SDK / "lasp_edge" / "crdts").glob("*.py"))
    assert B.crdt_modules(None) == every
    examples = ROOT / "firmware_examples"
    assert sorted(B.app_types(examples / "ad_counter")) == ["awmap", "awset", "gcounter"]
    assert sorted(B.app_types(examples / "leaderboard")) == ["awmap", "lwwregister", "topk"]
    assert sorted(B.app_types(examples / "sensor_windows")) == [
        "awmap",
        "gcounter",
        "maxregister",
    ]

    def crdts_in(out):
        return sorted(p.stem for p in (out / "lib" / "lasp_edge" / "crdts").glob("*.mpy"))

    r = cli("bundle", "--types", "gcounter", tmp_path / "g")
    assert r.returncode == 0, r.stderr
    assert crdts_in(tmp_path / "g") == sorted(shared + ["gcounter"])
    assert "CRDT types: gcounter (--types;" in r.stdout
    r = cli("bundle", "--app", examples / "ad_counter", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert crdts_in(tmp_path / "a") == sorted(shared + ["awmap", "awset", "causal", "gcounter"])
    assert "CRDT types: gcounter, awset, awmap (what the app names;" in r.stdout
    r = cli("bundle", "--app", examples / "ad_counter", "--types", "all", tmp_path / "all")
    assert r.returncode == 0, r.stderr
    assert crdts_in(tmp_path / "all") == every and "CRDT types" not in r.stdout
    r = cli("bundle", "--types", "gcounter,nope", tmp_path / "bad")
    assert r.returncode == 2 and "unknown CRDT type nope; valid: gcounter, " in r.stderr


def test_a_type_left_out_fails_clearly_on_the_device(mpy_cross_tool, tmp_path):
    """On MicroPython, a bundle without a type says how to get it back; the types it has
    work, a received state of a missing type is a decoding error like any other, and a
    peer's BIRTH that merely names such types (a gateway holding other apps' variables)
    is accepted without importing anything."""
    micropython = require(find_micropython(), "micropython (the unix port)")
    out = tmp_path / "b"
    B.bundle(out, "unix", types=["gcounter"])
    script = tmp_path / "probe.py"
    script.write_text(
        "from lasp_edge import wire\n"
        "from lasp_edge.crdts.registry import type_for\n"
        "print(type_for('gcounter').NAME)\n"
        "for attempt in (lambda: type_for('topk'), lambda: wire.from_typed([10, []])):\n"
        "    try:\n"
        "        attempt()\n"
        "    except ValueError as e:\n"
        "        print('ValueError', e)\n"
        "import sys\n"
        "from lasp_edge.sync import messages as M\n"
        "m = M.decode(M.birth('gw', 1, {'top': 10, 'w': 8, 'n': 1}, [], 0, False))\n"
        "print(sorted(m.holds.values()), [k for k in sys.modules if 'topk' in k])\n"
    )
    r = subprocess.run(
        [micropython, "-X", "heapsize=256K", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, MICROPYPATH=str(out / "lib")),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    want = "CRDT type topk is not on this device: rebuild the bundle with it (lasp-edge bundle "
    lines = r.stdout.splitlines()
    assert lines[0] == "gcounter"
    assert lines[1] == "ValueError " + want + "--types ...,topk)"
    assert lines[2] == lines[1]
    # a gateway's BIRTH names every type it holds: known tags pass, nothing is imported
    assert lines[3] == "[1, 8, 10] []"


def test_romfs_image_holds_exactly_the_bundle(unix_romfs, unix_bundle):  # noqa: F811
    """The ROMFS image MicroPython mounts holds every bundle file, byte for byte."""
    micropython = require(find_micropython(), "micropython (the unix port)")
    lib = Path(unix_bundle)
    files = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*.mpy"))
    script = lib.parent / "list_rom.py"
    script.write_text(
        "import binascii, sys\n"
        "for rel in sys.argv[1:]:\n"
        "    with open('/rom/' + rel, 'rb') as f:\n"
        "        print(rel, binascii.crc32(f.read()))\n"
    )
    r = subprocess.run(
        romfs_launch.command(unix_romfs, "64K", script, *files),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, micropython + "\n" + r.stdout + r.stderr
    want = ["%s %d" % (f, zlib.crc32((lib / f).read_bytes())) for f in files]
    assert r.stdout.split("\n")[: len(want)] == want


def _total(sizes):
    return sum(n for _rel, n in sizes)


def test_line_numbers_default_per_target_and_romfs_flag(mpy_cross_tool, tmp_path):
    """esp32/rp2 bundles (what users flash) drop the line-number tables unless asked;
    unix (what CI runs) keeps them. ``--romfs`` also writes OUT/lasp.romfs, exactly the
    image ``romfs_image`` packs from OUT/lib."""
    for target in ("esp32", "rp2"):
        plain = _total(B.bundle(tmp_path / target / "a", target))
        assert plain == _total(B.bundle(tmp_path / target / "b", target, source_lines=False))
        assert plain < _total(B.bundle(tmp_path / target / "c", target, source_lines=True))
    unix = _total(B.bundle(tmp_path / "u" / "a", "unix"))
    assert unix == _total(B.bundle(tmp_path / "u" / "b", "unix", source_lines=True))
    assert unix > _total(B.bundle(tmp_path / "u" / "c", "unix", source_lines=False))

    out = tmp_path / "cli"
    r = cli("bundle", "--target", "esp32", "--source-lines", "--romfs", out)
    assert r.returncode == 0, r.stderr
    assert _total(B.bundle(tmp_path / "lines", "esp32", source_lines=True)) == sum(
        p.stat().st_size for p in (out / "lib").rglob("*.mpy")
    )
    image = (out / "lasp.romfs").read_bytes()
    assert image == B.romfs_image(out / "lib")
    assert "romfs deploy %s" % (out / "lasp.romfs") in r.stdout
    r = cli("bundle", "--source-lines", "--no-source-lines", tmp_path / "both")
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_bundle_errors_are_clear(tmp_path):
    r = cli("bundle", "--target", "esp32", "--mpy-cross", tmp_path / "nope", tmp_path / "o")
    assert r.returncode == 2 and "lasp-edge bundle:" in r.stderr
    r = cli("bundle", "--target", "esp32", "--runtime", tmp_path, tmp_path / "o")
    assert r.returncode == 2 and "device runtime not found" in r.stderr
    r = cli("bundle", "--target", "avr", tmp_path / "o")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_the_bundle_runs_the_ad_counter_against_mosquitto(unix_bundle, tmp_path):  # noqa: F811
    """The compiled files alone (no source on the path) count, sync and converge."""
    micropython = require(find_micropython(), "micropython (the unix port)")
    require(MOSQUITTO, "mosquitto")
    assert not list(Path(unix_bundle).rglob("*.py"))
    broker = Broker(tmp_path / "broker").start()
    gw = Gateway(broker.port)
    try:
        assert gw.connected.wait(10)
        wd = tmp_path / "dev"
        env = dict(
            BROKER_HOST="127.0.0.1",
            BROKER_PORT=broker.port,
            DEVICE_ID="mpy-1",
            STORE_PATH="store",
            ORACLE=str(wd / "oracle"),
            ITERATIONS=300,
            VIEW_MS=2,
            LOOP_MS=1,
            SYNC_PERIOD_MS=100,
            FLUSH_MS=100,
            DRAIN_MS=15000,
            MAX_RUN_MS=60000,
        )
        d = DeviceProc(micropython, "ad_counter", wd, env, libpath=unix_bundle, heap="256K")
        d.start()
        assert d.wait(90) == 0, d.output()[-3000:]
        assert "DONE counted=300 synced=True" in d.output()
        assert gw.total("mpy-1") == 300
        assert [x for x in parse_oracle(wd / "oracle") if x[0] == "F"][-1][2] == 300
    finally:
        reap()
        gw.close()
        broker.stop()


# -- flash --------------------------------------------------------------------------------


def test_flash_dry_run_prints_the_exact_mpremote_commands(tmp_path):
    cfg = tmp_path / "my_config.py"
    cfg.write_text("WIFI_SSID = 'x'\n")
    build = tmp_path / "b"
    r = cli(
        "flash",
        "--port",
        "auto",
        "--example",
        "ad_counter",
        "--target",
        "esp32",
        "--build",
        build,
        "--config",
        cfg,
        "--dry-run",
    )
    assert r.returncode == 0, r.stderr
    ex = ROOT / "firmware_examples" / "ad_counter"
    line = [ln for ln in r.stdout.splitlines() if "mpremote" in ln and "connect" in ln][0]
    assert line.endswith(
        "connect auto cp -r %s : + mip install umqtt.simple + cp %s :boot.py + cp %s :main.py"
        " + cp %s :config.py + reset" % (build / "lib", ex / "boot.py", ex / "main.py", cfg)
    )
    assert "# lasp-edge bundle --target esp32 --types gcounter,awset,awmap %s" % build in r.stdout
    assert not build.exists()  # a dry run builds nothing


def test_flash_plan_with_clean_removes_old_sources_first(tmp_path):
    cmds = F.plan("auto", "leaderboard", tmp_path, clean=True, mpremote="mpremote")
    assert len(cmds) == 1
    cmd = cmds[0]
    assert cmd[:4] == ["mpremote", "connect", "auto", "exec"]
    assert "rm('/lib/lasp_edge')" in cmd[4] and cmd[5] == "+"
    assert cmd[6:10] == ["cp", "-r", str(tmp_path / "lib"), ":"]
    assert cmd[-1] == "reset"


def test_flash_fails_clearly_without_the_port(tmp_path):
    r = cli(
        "flash", "--port", "/dev/ttyLASP-missing", "--example", "ad_counter", "--build", tmp_path
    )
    assert r.returncode == 2
    assert "serial port /dev/ttyLASP-missing does not exist" in r.stderr
    assert not (tmp_path / "lib").exists()
    r = cli("flash", "--port", "auto", "--example", "nope", "--dry-run")
    assert r.returncode == 2 and "unknown example 'nope'" in r.stderr
    assert "ad_counter" in r.stderr


def test_flash_runs_mpremote_after_bundling(tmp_path, mpy_cross_tool):
    """Up to the serial port: a stand-in mpremote records its argv (no board here)."""
    fake = tmp_path / "mpremote"
    log = tmp_path / "argv.json"
    fake.write_text(
        "#!%s\nimport json, sys\njson.dump(sys.argv[1:], open(%r, 'w'))\n"
        % (sys.executable, str(log))
    )
    fake.chmod(0o755)
    build = tmp_path / "b"
    r = cli(
        "flash", "--port", "auto", "--example", "sensor_windows", "--target", "rp2",
        "--build", build, "--mpremote", fake,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    argv = json.loads(log.read_text())
    assert argv[:5] == ["connect", "auto", "cp", "-r", str(build / "lib")]
    assert (build / "lib" / "lasp_device" / "device.mpy").exists()
    assert "total .mpy bytes" in r.stdout


# -- mip ------------------------------------------------------------------------------------


def test_package_json_installs_exactly_the_bundle_sources():
    """``mpremote mip install github:ORG/REPO/micropython`` fetches these files.

    mip resolves a relative source against the directory of package.json (micropython-lib
    mip, "Relative URLs"); the destination is relative to /lib, like the bundle.
    """
    pkg = json.loads((RUNTIME / "package.json").read_text())
    assert isinstance(pkg["version"], str) and pkg["version"]
    dests = set()
    for dest, src in pkg["urls"]:
        path = posixpath.normpath(posixpath.join("micropython", src))
        assert (ROOT / path).is_file(), "%s -> %s does not exist" % (src, path)
        assert posixpath.basename(dest) == posixpath.basename(src)
        dests.add(dest[:-3] + ".mpy")
    assert dests == expected_modules()


def test_manifest_freezes_the_same_modules():
    text = (RUNTIME / "manifest.py").read_text()
    for m in expected_modules():
        pkg, rel = m[: -len(".mpy")].split("/", 1)
        assert '"%s.py"' % rel in text, "manifest.py does not freeze %s/%s.py" % (pkg, rel)
    assert '"%s"' % B.MQTT_CLIENT not in text  # boards use umqtt.simple (bundle.py)
    assert 'package(\n    "lasp_device"' in text
