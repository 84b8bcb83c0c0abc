"""Run every benchmark in bench/ in turn and save their JSON figures under build/bench/.

    make bench        (or: .venv/bin/python bench/run_all.py)

Each benchmark prints its own table; docs/BENCHMARKS.md records the figures with the
command that made them.
"""

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "build" / "bench"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    for i, script in enumerate(scripts, 1):
        print("\n=== [%d/%d] %s" % (i, len(scripts), script.name), flush=True)
        cmd = [sys.executable, str(script)]
        if "--json" in script.read_text():
            cmd += ["--json", str(OUT / (script.stem + ".json"))]
        if subprocess.call(cmd, cwd=HERE.parent, env=dict(os.environ)) != 0:
            failed.append(script.name)
    if failed:
        print("\nfailed: " + ", ".join(failed))
        return 1
    print("\nall %d benchmarks ran; JSON figures in %s" % (len(scripts), OUT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
