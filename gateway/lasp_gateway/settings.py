"""How to reach a broker: address, credentials, TLS. Plain data, no paho in sight.

Both services take one ``BrokerSettings`` per MQTT connection (the gateway two: its devices'
broker and its uplink, which may be the same broker or another one). Keeping this a plain
dataclass is what lets the tests check that TLS options reach the adapter without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def parse_hostport(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``"host:port"``, ``"host"`` or ``"[v6]:port"`` -> ``(host, port)``; ValueError if bad."""
    text = text.strip()
    if not text:
        raise ValueError("empty broker address")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_s = text.partition(":")
    else:
        host, port_s = text, ""
    if not host:
        raise ValueError("no host in broker address %r" % text)
    if not port_s:
        return host, default_port
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError("bad port in broker address %r" % text) from None
    if not 0 <= port < 65536:  # 0: any free port (HTTP API in tests)
        raise ValueError("port out of range in %r" % text)
    return host, port


@dataclass
class BrokerSettings:
    """One MQTT connection. ``tls_ca`` (or ``tls``) turns TLS on; cert+key add a client cert."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False  # skip the host name check (self-signed test certs only)
    keepalive: int = 30
    client_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def uses_tls(self) -> bool:
        return self.tls or bool(self.tls_ca or self.tls_cert)

    def describe(self) -> str:
        return "%s%s:%d%s" % (
            "mqtts://" if self.uses_tls else "mqtt://",
            self.host,
            self.port,
            "" if self.username is None else " as %s" % self.username,
        )

    @classmethod
    def from_address(cls, address: str, **kw: object) -> BrokerSettings:
        host, port = parse_hostport(address, 8883 if kw.get("tls") or kw.get("tls_ca") else 1883)
        return cls(host=host, port=port, **kw)  # type: ignore[arg-type]
