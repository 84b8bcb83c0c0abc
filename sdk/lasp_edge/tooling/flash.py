"""``lasp-edge flash``: bundle, copy to a board with mpremote, add an example, reset.

The plan is a list of command lines, built first and run second, so ``--dry-run`` prints
exactly what would run (and tests check it without a board)::

    mpremote connect PORT [exec <remove old lasp_edge/lasp_device>] +
             cp -r BUILD/lib : + cp EXAMPLE/boot.py :boot.py + cp EXAMPLE/main.py :main.py +
             cp CONFIG :config.py + reset

One mpremote invocation chains the steps with ``+`` so the board is opened once. ``--clean``
first removes ``/lib/lasp_edge`` and ``/lib/lasp_device`` on the board: MicroPython imports
a ``.py`` before a ``.mpy`` of the same name, so sources left by ``mip install`` would
shadow the bundle.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from lasp_edge.tooling import bundle as B

EXAMPLE_FILES = ("boot.py", "main.py")

_CLEAN = (
    "import os\n"
    "def rm(p):\n"
    "    try:\n"
    "        st = os.stat(p)\n"
    "    except OSError:\n"
    "        return\n"
    "    if st[0] & 0x4000:\n"
    "        for n in os.listdir(p):\n"
    "            rm(p + '/' + n)\n"
    "        os.rmdir(p)\n"
    "    else:\n"
    "        os.remove(p)\n"
    "rm('/lib/lasp_edge')\n"
    "rm('/lib/lasp_device')\n"
)


class FlashError(Exception):
    """A missing port, example, config or tool; the message says what to do."""


def examples_dir():
    return B.sdk_dir().parents[1] / "firmware_examples"


def find_mpremote(explicit=None, required=True):
    """The mpremote command line; with ``required=False`` (a dry run) plain "mpremote"."""
    if explicit:
        return [explicit]
    here = Path(sys.executable).parent / "mpremote"
    if here.exists():
        return [str(here)]
    found = shutil.which("mpremote")
    if found:
        return [found]
    try:
        import mpremote  # noqa: F401

        return [sys.executable, "-m", "mpremote"]
    except ImportError:
        if not required:
            return ["mpremote"]
        raise FlashError("mpremote not found: pip install mpremote") from None


def check_port(port):
    """Paths must exist; mpremote's shortcuts (auto, a0, u0, c3...) and COMn pass through."""
    if port.startswith("/") and not os.path.exists(port):
        raise FlashError(
            "serial port %s does not exist: is the board plugged in? (list ports with "
            "`mpremote devs`)" % port
        )
    return port


def plan(
    port, example, build, target="esp32", config=None, clean=False, mpremote=None, dry_run=False
):
    """The command lines that flash ``example``; raises FlashError before touching anything."""
    check_port(port)
    ex = examples_dir() / example
    if not (ex / "main.py").exists():
        valid = sorted(p.name for p in examples_dir().iterdir() if (p / "main.py").exists())
        raise FlashError("unknown example %r; valid: %s" % (example, ", ".join(valid)))
    cfg = Path(config) if config else ex / "config.py"
    if not cfg.exists():
        raise FlashError("config file %s does not exist" % cfg)
    lib = Path(build) / "lib"
    cmd = find_mpremote(mpremote, required=not dry_run) + ["connect", port]
    if clean:
        cmd += ["exec", _CLEAN, "+"]
    cmd += ["cp", "-r", str(lib), ":"]
    if target != "unix":  # the board bundle has no MQTT client: micropython-lib's (bundle.py)
        cmd += ["+", "mip", "install", "umqtt.simple"]
    for name in EXAMPLE_FILES:
        cmd += ["+", "cp", str(ex / name), ":" + name]
    cmd += ["+", "cp", str(cfg), ":config.py", "+", "reset"]
    return [cmd]


def _show(cmd):
    return shlex.join(cmd)


def main(
    port,
    example,
    target="esp32",
    build=None,
    config=None,
    dry_run=False,
    clean=False,
    mpremote=None,
    mpy_cross=None,
    runtime=None,
):
    build = build or os.path.join("build", "bundle-" + target)
    try:
        cmds = plan(port, example, build, target, config, clean, mpremote, dry_run)
        if config is None:
            print(
                "lasp-edge flash: using the template %s/config.py; pass --config with your "
                "WiFi and broker settings" % example,
                file=sys.stderr,
            )
        types = B.app_types(examples_dir() / example)  # only the CRDT types it uses
        if dry_run:
            print("# lasp-edge bundle --target %s --types %s %s" % (target, ",".join(types), build))
        else:
            B.report(B.bundle(build, target, mpy_cross, runtime, types=types))
    except (FlashError, B.BundleError) as e:
        print("lasp-edge flash: %s" % e, file=sys.stderr)
        return 2
    for cmd in cmds:
        print(_show(cmd))
        if dry_run:
            continue
        r = subprocess.run(cmd)
        if r.returncode != 0:
            print("lasp-edge flash: mpremote failed (exit %d)" % r.returncode, file=sys.stderr)
            return r.returncode
    return 0
