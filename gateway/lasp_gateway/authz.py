"""Who may write what: the gateway's rule for device deltas, and what devices may read.

The rule (DESIGN.md principle 6: a device may only inflate its own replica's entries):

1. **Owned variables.** A variable named ``<name>@<owner>`` belongs to replica ``owner``
   (the text after the last ``@``). Device ``d`` may write anything into a variable it owns
   (``temp@d``) and nothing into a variable another replica owns (``temp@e``, ``status@gw``).
2. **Types with replica ids** (GCounter and PNCounter slots; the dots of AWSet, MVRegister and
   EWFlag, *including their causal context*; the writer of an LWWRegister; AWMaps of those,
   nested values and tombstones alike): in a shared variable a delta is accepted only if
   every replica id it mentions (``delta.replicas()``) is the device's own. A forged slot,
   a dot of another device, an LWW write signed by someone else: rejected. So is a device's
   AWSet remove (or re-add) of an element another replica added, since its context names
   the other replica's dots: removing is writing to their entries.
3. **Types without replica ids** (GSet, TwoPSet, MaxRegister, TopK, and AWMaps of those) say
   nothing about who wrote them, so a device may write them only into a variable it owns
   (rule 1), or into a variable the operator opened to every device (``--open-vars``).
4. **Shared variables come from upstream.** A device may not create a shared variable: it
   writes only shared variables the gateway already holds, which it declares, with their
   exact type and parameters, from its aggregator's schema (the register ``schema@<agg>``,
   see aggregator.py), or ``--open-vars``. Otherwise the first device to speak would fix
   the variable's type at the gateway, and a wrong type would make the aggregator reject
   every delta group carrying it: a stalled uplink. The node itself then refuses a delta of
   another type or parameters for a declared variable.

A rejected delta rejects its whole message (nothing of it is merged or acknowledged); the
device's reject counter grows and the reason is logged. Upstream peers (aggregators) are
trusted: the policy applies to device peers only.

Reading. A device gets the variables it declared interest in. A device that declared no
interests (wants everything) gets everything *except* variables owned by other replicas
(``DeviceInterests``), so one device's own data never reaches another unless asked for by
name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lasp_edge.crdts.awmap import AWMap

# Types whose deltas carry the replica ids that wrote them (see rule 2).
_REPLICA_TYPES = frozenset(
    ["gcounter", "pncounter", "awset", "mvregister", "ewflag", "lwwregister"]
)


def owner_of(var: str) -> str | None:
    """The owner named by ``<name>@<owner>``, or None for a shared variable."""
    name, sep, owner = var.rpartition("@")
    if not sep or not name or not owner:
        return None
    return owner


def has_replica_ids(state: Any) -> bool:
    """Whether ``state.replicas()`` says who wrote every part of it (rule 2 applies)."""
    if isinstance(state, AWMap):
        return state.vtype.NAME in _REPLICA_TYPES
    return getattr(state, "NAME", None) in _REPLICA_TYPES


class DevicePolicy:
    """The ``Node.authorize`` hook of a gateway: ``policy(peer, var, delta) -> reason|None``.

    ``trusted`` names the peers the rule does not apply to (the gateway's upstreams).
    """

    def __init__(
        self,
        open_vars: Iterable[str] = (),
        trusted: Iterable[Any] = (),
        known: Callable[[str], bool] | None = None,
    ) -> None:
        self.open_vars = frozenset(open_vars)
        self.trusted = set(trusted)
        self.known = known  # var -> whether the gateway holds it (None: all are known)

    def __call__(self, peer: Any, var: str, delta: Any) -> str | None:
        if peer in self.trusted:
            return None
        owner = owner_of(var)
        if owner is not None:
            if owner == str(peer):
                return None
            return "%r is owned by %r" % (var, owner)
        if var not in self.open_vars and self.known is not None and not self.known(var):
            return "unknown shared variable %r (shared variables come from upstream)" % var
        if has_replica_ids(delta):
            others = [r for r in delta.replicas() if r != peer]
            if others:
                return "entries of other replicas %s" % ", ".join(
                    sorted(repr(r) for r in others)[:5]
                )
            return None
        if var in self.open_vars:
            return None
        return "%s has no replica ids: a device may write it only as %s@%s or in --open-vars" % (
            type(delta).__name__,
            var,
            peer,
        )


class DeviceInterests:
    """Interests of a device that asked for everything: all but others' owned variables.

    Used in place of ``None`` on the gateway's ``Peer.interests``; the Node only asks
    ``var in interests``.
    """

    def __init__(self, device: Any) -> None:
        self.device = str(device)

    def __contains__(self, var: object) -> bool:
        if not isinstance(var, str):
            return False
        owner = owner_of(var)
        return owner is None or owner == self.device

    def __iter__(self) -> Any:  # "everything but ...": not enumerable
        raise TypeError("DeviceInterests is a predicate, not a list")

    def __repr__(self) -> str:
        return "DeviceInterests(%r)" % self.device


def restrict_interests(interests: Any, device: Any) -> Any:
    """What a device may receive, from what it asked for (None = everything)."""
    if interests is None:
        return DeviceInterests(device)
    return interests


Authorize = Callable[[Any, str, Any], "str | None"]
