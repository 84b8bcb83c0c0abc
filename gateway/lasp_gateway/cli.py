"""The ``gateway``, ``aggregator``, ``provision``, ``mosquitto-conf``, ``query`` and ``emulate``
subcommands.

``lasp_edge.cli`` calls ``register(subparsers)``; nothing heavy (paho, sqlite) is imported
until a subcommand runs. Options: docs/GATEWAY.md (services), docs/EMULATOR.md (emulate).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _list(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _ids(text: str | None) -> list[Any]:
    from lasp_gateway.topics import replica_from_level

    return [replica_from_level(x) for x in _list(text)]


def _non_negative(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more, not %d" % n)
    return n


def _add_broker_args(
    p: argparse.ArgumentParser, prefix: str = "", what: str = "the broker"
) -> None:
    d = "--" + prefix
    p.add_argument(d + "tls-ca", help="CA certificate file: connect to %s with TLS" % what)
    p.add_argument(d + "tls-cert", help="client certificate file (with --%stls-key)" % prefix)
    p.add_argument(d + "tls-key", help="client private key file")
    p.add_argument(
        d + "tls-insecure", action="store_true", help="do not check the broker's host name"
    )
    p.add_argument(d + "username", help="MQTT user name for %s" % what)
    p.add_argument(d + "password", help="MQTT password for %s" % what)


def broker_settings(address: str, args: argparse.Namespace, prefix: str = "") -> Any:
    """BrokerSettings from ``address`` and the ``--[prefix]tls-*``/credential options."""
    from lasp_gateway.settings import BrokerSettings

    key = prefix.replace("-", "_")

    def opt(name: str) -> Any:
        return getattr(args, key + name, None)

    tls = bool(opt("tls_ca") or opt("tls_cert"))
    return BrokerSettings.from_address(
        address,
        username=opt("username"),
        password=opt("password"),
        tls=tls,
        tls_ca=opt("tls_ca"),
        tls_cert=opt("tls_cert"),
        tls_key=opt("tls_key"),
        tls_insecure=bool(opt("tls_insecure")),
    )


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)


def _serve(service: Any, http: Any, what: str) -> int:
    """Run until SIGTERM/SIGINT (or the service fails); print one ``ready`` line first."""
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    if http is not None:
        http.start()
    print(
        "lasp-edge %s %s ready (epoch %d)%s"
        % (
            what,
            service.node.replica,
            service.node.epoch,
            "" if http is None else " http %s" % http.url,
        ),
        flush=True,
    )
    while not done.wait(0.2):
        if service.failed is not None:
            break
    if http is not None:
        http.stop()
    service.stop()
    return 1 if service.failed is not None else 0


# -- gateway ---------------------------------------------------------------------------------


def cmd_gateway(args: argparse.Namespace) -> int:
    from lasp_gateway.gateway import Gateway, GatewayConfig
    from lasp_gateway.http_api import ApiServer, gateway_routes
    from lasp_gateway.topics import replica_from_level

    _setup_logging(args.log_level)
    devices = broker_settings(args.broker, args)
    # The uplink uses its own --upstream-* credentials/TLS if any is given, else the
    # device broker's; its address defaults to the device broker (one broker for both).
    own = any(getattr(args, "upstream_" + k) for k in ("username", "tls_ca", "tls_cert"))
    upstream = None
    if args.upstream or own:
        upstream = broker_settings(args.upstream or args.broker, args, "upstream-" if own else "")
    ups = _ids(args.upstream_id)
    cfg = GatewayConfig(
        replica=replica_from_level(args.id),
        db=args.db,
        devices=devices,
        upstream=upstream,
        upstream_ids=ups,
        upstream_interests=_list(args.upstream_interests) or None,
        open_vars=_list(args.open_vars),
        forward_period_ms=args.forward_period_ms,
        ack_timeout_ms=args.ack_timeout_ms,
        max_timeout_ms=args.max_timeout_ms,
        max_payload=args.max_payload,
        max_message=args.max_message,
        status_period_ms=args.status_period_ms,
        synchronous=args.synchronous,
        commit_delay_ms=args.commit_delay_ms,
    )
    gw = Gateway(cfg)
    http = None if not args.http else ApiServer(args.http, gateway_routes(gw))
    return _serve(gw, http, "gateway")


# -- aggregator ------------------------------------------------------------------------------


def cmd_aggregator(args: argparse.Namespace) -> int:
    from lasp_gateway.aggregator import Aggregator, AggregatorConfig, load_program
    from lasp_gateway.http_api import ApiServer, aggregator_routes, dashboard_html
    from lasp_gateway.topics import replica_from_level

    _setup_logging(args.log_level)
    if args.program_path:
        sys.path.insert(0, args.program_path)
    cfg = AggregatorConfig(
        replica=replica_from_level(args.id),
        db=args.db,
        broker=broker_settings(args.broker, args),
        program=load_program(args.program) if args.program else None,
        trusted=args.trusted,
        peer_aggregators=_ids(args.peer_aggregators),
        sync_period_ms=args.sync_period_ms,
        ack_timeout_ms=args.ack_timeout_ms,
        max_timeout_ms=args.max_timeout_ms,
        synchronous=args.synchronous,
    )
    agg = Aggregator(cfg)
    http = (
        None
        if not args.http
        else ApiServer(args.http, aggregator_routes(agg), index=dashboard_html())
    )
    return _serve(agg, http, "aggregator")


# -- provision, query ------------------------------------------------------------------------


def cmd_provision(args: argparse.Namespace) -> int:
    from lasp_gateway.provision import provision

    devices = _list(args.devices)
    if not devices:
        print("lasp-edge provision: --devices needs at least one id", file=sys.stderr)
        return 2
    secrets_file = args.secrets_file or args.password_file + ".secrets"
    chosen = provision(
        devices,
        args.password_file,
        args.acl_file,
        gateways=_list(args.gateway),
        aggregators=_list(args.aggregator),
        secrets_file=secrets_file,
        hasher=args.hasher,
        owner=args.owner,
    )
    print("wrote %s (%d users), %s" % (args.password_file, len(chosen), args.acl_file))
    print("passwords (user:password) in %s; mosquitto.conf needs:" % secrets_file)
    print("  allow_anonymous false")
    print("  password_file %s" % args.password_file)
    print("  acl_file %s" % args.acl_file)
    print(
        "or print a whole recommended config: lasp-edge mosquitto-conf --password-file %s"
        " --acl-file %s" % (args.password_file, args.acl_file)
    )
    return 0


def cmd_mosquitto_conf(args: argparse.Namespace) -> int:
    from lasp_gateway.mosquitto_conf import recommended_conf

    sys.stdout.write(
        recommended_conf(
            args.port, args.bind, args.persistence_dir, args.password_file, args.acl_file
        )
    )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    url = "%s/api/variables/%s" % (args.url.rstrip("/"), urllib.parse.quote(args.var, safe=""))
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        print(
            "lasp-edge query: %s: %s" % (args.var, exc.read().decode(errors="replace")),
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print("lasp-edge query: cannot reach %s: %s" % (args.url, exc), file=sys.stderr)
        return 2
    if "error" in body:
        print("lasp-edge query: %s: %s" % (args.var, body["error"]), file=sys.stderr)
        return 1
    print(json.dumps(body["value"], indent=None if args.compact else 2, sort_keys=True))
    return 0


# -- emulate ---------------------------------------------------------------------------------


def cmd_emulate(args: argparse.Namespace) -> int:
    """Run a fleet under faults; 0 only when it converged and the oracle matched exactly."""
    from lasp_gateway.emulator import Emulation, EmulationConfig, FaultSpecError, parse_faults
    from lasp_gateway.emulator.apps import AppError
    from lasp_gateway.emulator.report import PlotError, plot
    from lasp_gateway.emulator.services import ServiceError

    if args.plot:
        try:
            import matplotlib  # noqa: F401  (fail before the run, not after it)
        except ImportError:
            print("lasp-edge emulate: --plot needs matplotlib: pip install 'lasp-edge[plot]'",
                  file=sys.stderr)  # fmt: skip
            return 2
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    # the emulator's own links drop on purpose (broker restarts, the end of the run)
    logging.getLogger("lasp_gateway.mqtt").setLevel(logging.ERROR)
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    try:
        cfg = EmulationConfig(
            app=args.app,
            devices=args.devices,
            real=args.real,
            duration=args.duration,
            seed=args.seed,
            faults=parse_faults(args.faults),
            broker=args.broker,
            workdir=args.workdir,
            view_ms=args.view_ms,
            sync_period_ms=args.sync_period_ms,
            heap=args.heap,
            drain_timeout=args.drain_timeout,
            broken=args.broken,
        )
        emu = Emulation(cfg, out=sys.stdout)
    except (FaultSpecError, AppError, ValueError) as e:
        print("lasp-edge emulate: %s" % e, file=sys.stderr)
        return 2
    print(
        "lasp-edge emulate: %s, %d devices (%d real), %.0fs, seed %d, faults %s"
        % (emu.spec.name, cfg.devices, cfg.real, cfg.duration, cfg.seed,
           cfg.faults.text() or "none"),
        flush=True,
    )  # fmt: skip

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through run(), which stops every child it started

    signal.signal(signal.SIGTERM, on_term)
    try:
        report = emu.run()
    except ServiceError as e:
        print("lasp-edge emulate: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    report.write_table(sys.stdout)
    if args.report:
        report.write_json(args.report)
        print("report: %s" % args.report)
    if args.plot:
        try:
            plot(report, args.plot)
        except PlotError as e:
            print("lasp-edge emulate: %s" % e, file=sys.stderr)
            return 2
        print("plot: %s" % args.plot)
    return 0 if report.ok else 1


# -- parsers ---------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the subcommands to ``lasp-edge``'s subparsers."""
    g = sub.add_parser("gateway", help="run the gateway: devices over MQTT -> SQLite -> aggregator")
    g.add_argument("--broker", default="127.0.0.1:1883", help="the devices' broker HOST:PORT")
    g.add_argument("--id", default="gw", help="replica id (the devices' GATEWAY_ID)")
    g.add_argument("--db", default="gw.db", help="SQLite file (created if missing)")
    g.add_argument("--upstream", help="the aggregator's broker HOST:PORT (default: --broker)")
    g.add_argument("--upstream-id", default="agg", help="aggregator replica id(s), comma-separated")
    g.add_argument(
        "--upstream-interests", help="variables to ask the aggregator for (default: all)"
    )
    g.add_argument(
        "--open-vars", help="variables any device may write without replica ids (comma list)"
    )
    g.add_argument("--forward-period-ms", type=int, default=1000, help="sync period (upward)")
    g.add_argument("--ack-timeout-ms", type=int, default=3000)
    g.add_argument("--max-timeout-ms", type=int, default=60000)
    g.add_argument("--max-payload", type=int, default=8192, help="split DELTAs above this")
    g.add_argument(
        "--max-message", type=int, default=1 << 20, help="reject messages above this (bytes)"
    )
    g.add_argument("--status-period-ms", type=int, default=5000, help="0: no status report")
    g.add_argument("--synchronous", choices=["full", "normal"], default="full")
    g.add_argument(
        "--commit-delay-ms",
        type=_non_negative,
        default=20,
        help="group commit: a batch waits this long after its first message (0: none)",
    )
    g.add_argument("--http", help="serve the gateway's JSON API on HOST:PORT")
    g.add_argument("--log-level", default="INFO")
    _add_broker_args(g, "", "the devices' broker")
    _add_broker_args(g, "upstream-", "the upstream broker")
    g.set_defaults(fn=cmd_gateway)

    a = sub.add_parser("aggregator", help="run an aggregator: gateways -> the Lasp program")
    a.add_argument("--program", help="module:function (or file.py:function) called with the Store")
    a.add_argument("--program-path", help="directory to import the program from")
    a.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT")
    a.add_argument("--db", default="agg.db", help="the Store's SQLite file (+ FILE.sync)")
    a.add_argument("--id", default="agg", help="replica id")
    a.add_argument("--trusted", action="store_true", help="arm enforce_once effects here")
    a.add_argument("--http", help="serve the JSON API on HOST:PORT, e.g. 127.0.0.1:8080")
    a.add_argument("--peer-aggregators", help="other aggregator replica ids, comma-separated")
    a.add_argument("--sync-period-ms", type=int, default=1000)
    a.add_argument("--ack-timeout-ms", type=int, default=3000)
    a.add_argument("--max-timeout-ms", type=int, default=60000)
    a.add_argument("--synchronous", choices=["full", "normal"], default="full")
    a.add_argument("--log-level", default="INFO")
    _add_broker_args(a)
    a.set_defaults(fn=cmd_aggregator)

    p = sub.add_parser("provision", help="mosquitto password file and ACL for devices")
    p.add_argument("--devices", required=True, help="device ids, comma-separated")
    p.add_argument("--password-file", required=True)
    p.add_argument("--acl-file", required=True)
    p.add_argument("--gateway", default="gw", help="gateway user(s), comma-separated")
    p.add_argument("--aggregator", default="agg", help="aggregator user(s), comma-separated")
    p.add_argument("--secrets-file", help="user:password lines (default PASSWORD_FILE.secrets)")
    p.add_argument("--hasher", choices=["auto", "mosquitto_passwd", "python"], default="auto")
    p.add_argument("--owner", help="chown the files to this user (e.g. mosquitto; needs root)")
    p.set_defaults(fn=cmd_provision)

    m = sub.add_parser(
        "mosquitto-conf",
        help="print a recommended mosquitto.conf, each changed default explained",
    )
    m.add_argument("--port", type=int, default=1883)
    m.add_argument("--bind", help="listen on this address only (default: all)")
    m.add_argument("--persistence-dir", default="/var/lib/mosquitto/")
    m.add_argument("--password-file", help="from `lasp-edge provision`; disables anonymous")
    m.add_argument("--acl-file", help="from `lasp-edge provision`")
    m.set_defaults(fn=cmd_mosquitto_conf)

    e = sub.add_parser(
        "emulate",
        help="a fleet of virtual and MicroPython devices under faults, checked against an oracle",
        description="Emulate a fleet against a broker, a gateway and an aggregator, inject "
        "seeded faults, and check that everything converges to exactly what the devices "
        "counted (docs/EMULATOR.md). Exit status 1 when it did not.",
    )
    e.add_argument("--app", default="firmware_examples/ad_counter", help="firmware example")
    e.add_argument("--devices", type=int, default=20, help="fleet size (real ones included)")
    e.add_argument("--real", type=int, default=0, help="how many are MicroPython processes")
    e.add_argument("--duration", type=float, default=30.0, help="seconds of counting")
    e.add_argument("--seed", type=int, default=1, help="the fault schedule and message faults")
    e.add_argument(
        "--faults",
        default="",
        help="comma-separated name:parameter, e.g. loss:0.2,dup:0.1,partition:0.3 (names: "
        "loss, dup, reorder, delay, offline, partition, crash, gateway-kill, broker-restart, "
        "aggregator-down)",
    )
    e.add_argument(
        "--broker", help="embedded (default), mosquitto (started here) or HOST:PORT (external)"
    )
    e.add_argument("--report", help="write the JSON report here")
    e.add_argument("--plot", help="write the divergence plot (PNG) here")
    e.add_argument("--view-ms", type=int, default=1000, help="each device counts about this often")
    e.add_argument("--sync-period-ms", type=int, default=1000, help="device sync period")
    e.add_argument("--heap", default="256K", help="MicroPython heap cap of real devices")
    e.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to converge")
    e.add_argument("--workdir", help="keep the run's files here (default: a temporary dir)")
    e.add_argument(
        "--broken",
        choices=["lying-flash"],
        help="deliberately broken devices (flash writes lost at a crash): the oracle must fail",
    )
    e.set_defaults(fn=cmd_emulate)

    q = sub.add_parser("query", help="print a variable's value from an aggregator's HTTP API")
    q.add_argument("var")
    q.add_argument("--url", default="http://127.0.0.1:8080")
    q.add_argument("--timeout", type=float, default=10.0)
    q.add_argument("--compact", action="store_true", help="one line of JSON")
    q.set_defaults(fn=cmd_query)
