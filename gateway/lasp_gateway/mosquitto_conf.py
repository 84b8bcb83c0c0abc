"""``lasp-edge mosquitto-conf``: a recommended mosquitto.conf, with every changed default explained.

lasp-edge does not trust the broker with data: every delta stays in its sender's durable
log until the receiver acknowledges it after its own commit, so a broker that drops a
message, or restarts with an empty memory, costs a resend, never an update. The broker
settings below are therefore about keeping resends rare and memory bounded, and about
making the mosquitto bridge to a cloud broker (the usual way to reach a remote
aggregator) survive a restart. Each changed default is printed next to its reason, so an
operator can judge it instead of copying it blindly.
"""

from __future__ import annotations

# (option, mosquitto 2's default, our value, why). Values are strings as written to the file.
CHANGED_DEFAULTS = [
    (
        "persistence",
        "false",
        "true",
        "a restart would drop queued QoS 1 messages of persistent sessions, such as a bridge"
        " to a cloud broker; lasp-edge resends its own data anyway, but the bridge's queue is"
        " the uplink's",
    ),
    (
        "autosave_interval",
        "1800",
        "60",
        "with persistence on, at most a minute of queued bridge traffic is in memory only",
    ),
    (
        "max_queued_messages",
        "1000",
        "10000",
        "per client; when a whole fleet reconnects after a partition the gateway's queue"
        " fills faster than it drains, and what overflows is dropped silently, to be resent"
        " only after the device's ack timeout",
    ),
    (
        "max_inflight_messages",
        "20",
        "100",
        "QoS 1 messages in flight per client; 20 stalls a bridge or gateway uplink on a"
        " high-latency link",
    ),
    (
        "max_packet_size",
        "0 (unlimited)",
        "1048576",
        "one oversized publish should be refused by the broker, before the gateway spends"
        " memory on it; matches the gateway's --max-message default",
    ),
]


def recommended_conf(
    port: int = 1883,
    bind: str | None = None,
    persistence_dir: str = "/var/lib/mosquitto/",
    password_file: str | None = None,
    acl_file: str | None = None,
) -> str:
    """The config text. Without a password file it allows anonymous clients (a lab setup)."""
    lines = [
        "# mosquitto.conf recommended by lasp-edge (mosquitto 2.x)",
        "# lasp-edge never relies on the broker for durability: unacknowledged deltas stay in",
        "# the sender's log and are resent. These settings keep resends rare and memory bounded.",
        "",
        "listener %d%s" % (port, "" if bind is None else " " + bind),
        "persistence_location %s" % persistence_dir,
        "",
        "# -- defaults this file changes --",
    ]
    for option, default, value, why in CHANGED_DEFAULTS:
        lines.append("# %s: mosquitto's default is %s; %s." % (option, default, why))
        lines.append("%s %s" % (option, value))
    lines.append("")
    if password_file:
        lines += ["allow_anonymous false", "password_file %s" % password_file]
    else:
        lines += [
            "# No password file given: anyone on the network may connect. Run",
            "# `lasp-edge provision` and pass --password-file/--acl-file for production.",
            "allow_anonymous true",
        ]
    if acl_file:
        lines.append("acl_file %s" % acl_file)
    return "\n".join(lines) + "\n"
