"""A small read-only JSON API over ``http.server`` (stdlib), for dashboards and ``lasp-edge query``.

Aggregator routes (all ``GET``, all JSON):

``/api/variables``          ``{name: {"type": ..., "value": ...}}`` for every variable
``/api/variables/<name>``   one variable (name URL-encoded); 404 if unknown
``/api/devices``            ``[{gateway, id, online, epoch, backlog, rejected, ...}]``:
                            every device as its gateway last reported it
``/api/gateways``           ``[{id, kind, online, epoch, backlog, rejected, last_seen_ms,
                            report}]``: the aggregator's own sync peers
``/api/triggers``           ``{"trusted": bool, "effects": {key: status}}``
``/api/status``             service counters
``/metrics``                the same counters, per-device backlog, rejections and sync lag
                            in Prometheus text format (see ``metrics.py``)

A gateway started with ``--http`` serves ``/api/devices``, ``/api/gateway`` (its report:
devices, uplink, counters, table sizes), ``/api/status``, ``/metrics`` and
``/api/variables[/<name>]`` (the replica it holds) for itself.

Values are made JSON-friendly the same way everywhere (``jsonable``): sets become sorted
lists, tuples lists, map keys strings, bytes hex. The server runs in a daemon thread and
only ever reads (under the service lock), so it cannot disturb the sync loop's guarantees.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from lasp_gateway import metrics
from lasp_gateway.settings import parse_hostport

log = logging.getLogger("lasp_gateway.http")

Route = Callable[[str], Any]  # rest of the path -> JSON-able data; KeyError -> 404


def jsonable(x: Any) -> Any:
    if isinstance(x, (set, frozenset)):
        return sorted((jsonable(v) for v in x), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, bytes):
        return x.hex()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


class ApiServer:
    """Serve ``routes`` (``{"/api/x": fn}``; a route ending in ``/`` takes the rest).

    ``index``, if given, is an HTML page served at ``/`` (the aggregator's dashboard): it
    is static and fetches the JSON routes itself, so the server stays read-only and
    stateless.
    """

    def __init__(self, address: str, routes: dict[str, Route], index: bytes | None = None) -> None:
        host, port = parse_hostport(address, 8080)
        self.routes = routes
        self.index = index
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = urlsplit(self.path).path
                if api.index is not None and path in ("/", "/index.html"):
                    data, ctype = api.index, "text/html; charset=utf-8"
                    status = 200
                else:
                    status, body = api.handle(path)
                    if isinstance(body, Text):
                        data, ctype = body.encode(), body.content_type
                    else:
                        data = json.dumps(body, indent=1, sort_keys=True).encode()
                        ctype = "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("http: " + fmt, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = host
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, path: str) -> tuple[int, Any]:
        for prefix, fn in self.routes.items():
            if prefix.endswith("/"):
                if not path.startswith(prefix) or len(path) == len(prefix):
                    continue
                rest = unquote(path[len(prefix) :])
            elif path.rstrip("/") != prefix:
                continue
            else:
                rest = ""
            try:
                body = fn(rest)
                return 200, body if isinstance(body, Text) else jsonable(body)
            except KeyError as exc:
                return 404, {"error": "not found: %s" % (exc.args[0] if exc.args else rest)}
            except Exception as exc:  # a broken variable must not take the API down
                log.exception("http %s failed", path)
                return 500, {"error": "%s: %s" % (type(exc).__name__, exc)}
        return 404, {"error": "no route %s" % path, "routes": sorted(self.routes)}


class Text(str):
    """A route's body served as-is (``/metrics``) instead of as JSON."""

    content_type = metrics.CONTENT_TYPE


def dashboard_html() -> bytes:
    """The dashboard page (``dashboard.html``, package data next to this module).

    Read through ``importlib.resources`` so it is found from a wheel or a zip as well as
    from the source tree.
    """
    from importlib import resources

    return resources.files("lasp_gateway").joinpath("dashboard.html").read_bytes()


def aggregator_routes(agg: Any) -> dict[str, Route]:
    """The aggregator's API (``agg`` is an ``Aggregator``)."""
    store = agg.store

    def variable(name: str) -> Any:
        kinds = store.variables()
        if name not in kinds:
            raise KeyError(name)
        try:
            value = store.query(name)
        except Exception as exc:  # DataflowError: report it, do not fail the listing
            return {"name": name, "type": kinds[name], "error": str(exc)}
        return {"name": name, "type": kinds[name], "value": value}

    def variables(_rest: str) -> Any:
        out = {}
        for name in store.variables():
            v = variable(name)
            del v["name"]
            out[name] = v
        return out

    def devices(_rest: str) -> Any:
        rows = []
        for gw, report in sorted(agg.gateway_reports().items(), key=lambda kv: repr(kv[0])):
            for dev, info in sorted(report.get("devices", {}).items(), key=lambda kv: repr(kv[0])):
                rows.append(dict(info, id=dev, gateway=gw, reported_at_ms=report.get("at_ms")))
        return rows

    def gateways(_rest: str) -> Any:
        reports = agg.gateway_reports()
        out = []
        for r in agg.peers_report():
            rep = reports.get(r["id"])
            if rep is not None:
                r["report"] = {k: v for k, v in rep.items() if k != "devices"}
                r["devices"] = len(rep.get("devices", {}))
            out.append(r)
        return out

    def status(_rest: str) -> Any:
        with agg.lock:
            return agg.counters()

    return {
        "/api/variables": variables,
        "/api/variables/": variable,
        "/api/devices": devices,
        "/api/gateways": gateways,
        "/api/triggers": lambda _r: agg.triggers(),
        "/api/status": status,
        "/metrics": lambda _r: Text(
            metrics.render(
                metrics.service_families("aggregator", status(""))
                + metrics.device_families(devices(""))
            )
        ),
    }


def gateway_routes(gw: Any) -> dict[str, Route]:
    """A gateway's own API (``gw`` is a ``Gateway``)."""

    def devices(_rest: str) -> Any:
        report = gw.report()
        me = report["gateway"]
        return [dict(info, id=dev, gateway=me) for dev, info in report["devices"].items()]

    def variable(name: str) -> Any:
        with gw.lock:
            state = gw.node.vars[name]
            return {"name": name, "type": state.NAME, "value": state.value()}

    def variables(_rest: str) -> Any:
        with gw.lock:
            return {n: {"type": s.NAME, "value": s.value()} for n, s in gw.node.vars.items()}

    return {
        "/api/devices": devices,
        "/api/gateway": lambda _r: gw.report(),
        "/api/status": lambda _r: gw.report()["counters"],
        "/api/variables": variables,
        "/api/variables/": variable,
        "/metrics": lambda _r: Text(
            metrics.render(
                metrics.service_families("gateway", gw.report()["counters"])
                + metrics.device_families(devices(""))
            )
        ),
    }
