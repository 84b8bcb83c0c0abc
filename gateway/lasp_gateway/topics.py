"""MQTT topics, and how a topic names the replica that sent a message.

Devices (fixed by the device runtime, docs/PROTOCOL.md "Topics (MQTT)")::

    le/u/<device>          device -> gateway   (BIRTH, DELTA, ACK; DEATH as the last will)
    le/d/<device>          gateway -> device   (BIRTH, DELTA, ACK)

Servers (gateway <-> aggregator, aggregator <-> aggregator)::

    le/g/<to>/<from>       from -> to          (BIRTH, DELTA, ACK; DEATH as the last will)

Every server subscribes ``le/g/<its id>/+`` and publishes to a peer on
``le/g/<peer>/<its id>``. The addressee is in the topic because the sync protocol is point to
point (a DELTA's interval only means something to the peer whose acks it follows), and the
sender is the last level so that, as for devices, the topic names the sender and a broker
ACL (``pattern write le/g/+/%u``) keeps every server to its own name.

A topic level is a replica id: a level of decimal digits without a leading zero ("7") is the
int replica 7; anything else is a str id. So a numeric device id must be an int replica.
"""

from __future__ import annotations

from typing import Any

from lasp_edge.crdts.base import check_replica

PREFIX = "le"
DEVICE_UP = "le/u/+"


def device_up(device: Any) -> str:
    return "%s/u/%s" % (PREFIX, device)


def device_down(device: Any) -> str:
    return "%s/d/%s" % (PREFIX, device)


def server_inbox(me: Any) -> str:
    """What a server subscribes to: every message addressed to it."""
    return "%s/g/%s/+" % (PREFIX, me)


def server_to(peer: Any, me: Any) -> str:
    return "%s/g/%s/%s" % (PREFIX, peer, me)


def replica_from_level(level: str) -> Any:
    """A topic level as a replica id (int when it is a canonical decimal); ValueError if bad."""
    if level.isdigit() and level.isascii() and (level == "0" or level[0] != "0"):
        return check_replica(int(level))
    return check_replica(level)


def device_of(topic: str) -> Any:
    """``le/u/<id>`` -> the device id; ValueError for anything else."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] != "u":
        raise ValueError("not a device uplink topic: %r" % topic)
    return replica_from_level(parts[2])


def server_sender(topic: str, me: Any) -> Any:
    """``le/g/<me>/<from>`` -> ``from``; ValueError for anything else."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] != "g" or parts[2] != str(me):
        raise ValueError("not a server topic addressed to %r: %r" % (me, topic))
    return replica_from_level(parts[3])
