"""``lasp-edge provision``: mosquitto users and an ACL that keeps every device to its topics.

What the ACL says (one ``pattern`` pair for all devices, ``%u`` = the MQTT user name, which
must equal the device id)::

    pattern write le/u/%u        a device publishes only its own uplink (and its will)
    pattern read  le/d/%u        and reads only its own downlink

    user gw                      the gateway: every device topic, its own server topics
    topic read  le/u/+
    topic write le/d/+
    topic write le/g/+/gw
    topic read  le/g/gw/+

    user agg                     an aggregator: its own server topics only
    topic write le/g/+/agg
    topic read  le/g/agg/+

So the broker itself refuses a device that publishes as another device or subscribes to
another's downlink; the gateway's topic/sender check (``Node.receive(peer=...)``) and the
write policy (``authz.py``) are the second and third lines of defence.

Passwords. Given ones are used; missing ones are generated (``secrets``) and written, with
the user names, to a ``user:password`` secrets file (mode 0600) for configuring devices.
The password file is in mosquitto 2.0's format, ``user:$7$101$<salt>$<PBKDF2-SHA512>``,
made by ``mosquitto_passwd -b`` when it is installed and by ``hash_password`` otherwise
(the same bytes mosquitto_passwd would write for the same salt; the tests check that a real
mosquitto accepts both). Existing entries for other users are kept.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable

ITERATIONS = 101  # what mosquitto_passwd 2.0 uses
SALT_BYTES = 12


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """mosquitto 2.0's ``$7$`` entry (PBKDF2-HMAC-SHA512, 64-byte key) for ``password``."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return "$7$%d$%s$%s" % (
        iterations,
        base64.b64encode(salt).decode(),
        base64.b64encode(key).decode(),
    )


def check_password(entry: str, password: str) -> bool:
    """Whether a ``$7$`` entry matches ``password`` (to test files, ours or mosquitto's)."""
    parts = entry.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise ValueError("not a mosquitto $7$ entry")
    salt = base64.b64decode(parts[3])
    return hash_password(password, salt, int(parts[2])) == entry


def acl_text(devices: Iterable[str], gateways: Iterable[str], aggregators: Iterable[str]) -> str:
    lines = [
        "# lasp-edge ACL, written by `lasp-edge provision` (see docs/GATEWAY.md).",
        "# Devices (user name = device id): own uplink and last will, own downlink.",
        "pattern write le/u/%u",
        "pattern read le/d/%u",
        "",
    ]
    for dev in devices:
        lines.append("# device %s: covered by the patterns above" % dev)
    for gw in gateways:
        lines += [
            "",
            "user %s" % gw,
            "topic read le/u/+",
            "topic write le/d/+",
            "topic write le/g/+/%s" % gw,
            "topic read le/g/%s/+" % gw,
        ]
    for agg in aggregators:
        lines += [
            "",
            "user %s" % agg,
            "topic write le/g/+/%s" % agg,
            "topic read le/g/%s/+" % agg,
        ]
    return "\n".join(lines) + "\n"


def _check_user(name: str) -> str:
    if not name or any(c in name for c in ":/+#\n\r ") or len(name) > 32:
        raise ValueError("bad user/device id %r (1..32 chars, none of ':/+# ')" % name)
    return name


def _read_entries(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line and not line.startswith("#") and ":" in line:
                    user, _, rest = line.partition(":")
                    out[user] = rest
    except FileNotFoundError:
        pass
    return out


def _write_private(path: str, text: str) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def provision(
    devices: Iterable[str],
    password_file: str,
    acl_file: str,
    gateways: Iterable[str] = ("gw",),
    aggregators: Iterable[str] = ("agg",),
    passwords: dict[str, str] | None = None,
    secrets_file: str | None = None,
    hasher: str = "auto",
    owner: str | None = None,
) -> dict[str, str]:
    """Write the password file, the ACL and the secrets file; returns ``{user: password}``.

    ``hasher``: ``"auto"`` (mosquitto_passwd if installed), ``"mosquitto_passwd"`` or
    ``"python"``. ``owner``: chown the password and ACL files to this user (mosquitto
    started as root drops to its ``user``, default ``mosquitto``, before reading them).
    """
    devices = [_check_user(d) for d in devices]
    gateways = [_check_user(g) for g in gateways]
    aggregators = [_check_user(a) for a in aggregators]
    users = devices + gateways + aggregators
    if len(set(users)) != len(users):
        raise ValueError("user names must be unique: %s" % ", ".join(users))
    given = dict(passwords or {})
    secrets_path = secrets_file or password_file + ".secrets"
    known = _read_entries(secrets_path)
    chosen = {u: given.get(u) or known.get(u) or secrets.token_urlsafe(18) for u in users}
    for d in (os.path.dirname(password_file), os.path.dirname(acl_file)):
        if d:
            os.makedirs(d, exist_ok=True)
    tool = shutil.which("mosquitto_passwd") if hasher in ("auto", "mosquitto_passwd") else None
    if hasher == "mosquitto_passwd" and tool is None:
        raise FileNotFoundError("mosquitto_passwd not found")
    entries = _read_entries(password_file)
    if tool is not None:
        body = "".join("%s:%s\n" % kv for kv in sorted(entries.items()) if kv[0] not in chosen)
        _write_private(password_file, body)
        for user in users:
            subprocess.run(
                [tool, "-b", password_file, user, chosen[user]],
                check=True,
                capture_output=True,
                timeout=30,
            )
        os.chmod(password_file, 0o600)
    else:
        for user in users:
            entries[user] = hash_password(chosen[user])
        _write_private(password_file, "".join("%s:%s\n" % kv for kv in sorted(entries.items())))
    with open(acl_file, "w") as f:
        f.write(acl_text(devices, gateways, aggregators))
    known.update(chosen)
    _write_private(secrets_path, "".join("%s:%s\n" % kv for kv in sorted(known.items())))
    if owner:
        for path in (password_file, acl_file):
            shutil.chown(path, user=owner)
    return chosen
