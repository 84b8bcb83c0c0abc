"""``firmware_examples/leaderboard`` in the emulator: the global top-k of every game played.

Each device plays reaction games (its ``Game``: the LED lights, the simulated player
presses, ``score = 1000 - reaction ms``) and publishes its local top-k as its own slot of
``leaderboard`` (AWMap device id -> LWWRegister(typed TopK, version)). The aggregator
runs ``firmware_examples/leaderboard/server.py:program``: ``fold_dynamic`` folds every slot
into the global top-k, which is what its API shows for ``leaderboard``.

The oracle checks two things:

* the gateway holds exactly the slots the devices flushed (the oracle's CRDT copies);
* the aggregator's global top-k equals the top-k recomputed, with no CRDT, from every
  score every device submitted (the facts: ``Game.record`` is wrapped), keeping each
  player's best score and ranking by score then name, as ``TopK`` documents. A real
  device's facts are the entries of its own slot in its flash store: its top-k is all
  the global top-k can hold of its games.

Devices ask for ``leaderboard`` too: each device's own view of the global top-k (its
``Game.global_top``: the join of every slot it heard of) must end equal to the aggregator's.
"""

from __future__ import annotations

from typing import Any

from lasp_gateway.emulator.apps import AppSpec
from lasp_gateway.emulator.oracle import plain

K = 5
PLAYERS = "ann,bob,cy,dee,eve,fay,gus,hal"  # more players than K: the truncation is exercised
_TOPK_TAG = 10  # a slot holds [TopK.TAG, wire form] (main.py's _TOPK_TAG)


def top_k(scores: list[tuple[str, int]], k: int = K) -> list[list[Any]]:
    """The k best ``[player, score]``: best score per player, then by score and name."""
    best: dict[str, int] = {}
    for player, score in scores:
        if score > best.get(player, -1):
            best[player] = score
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    return [[p, s] for p, s in ranked[:k]]


class Spec(AppSpec):
    name = "leaderboard"
    program = "firmware_examples/leaderboard/server.py:program"
    written = ("leaderboard",)
    interests = ("leaderboard",)
    measured = "leaderboard"
    unit = "points in the top-k"

    @property
    def program_env(self) -> dict[str, str]:
        return {"LASP_K": str(K)}

    def settings(self) -> dict[str, Any]:
        return {"K": K, "PLAYERS": PLAYERS, "ROUND_MS": self.view_ms}

    def declare(self, dev: Any) -> None:
        from lasp_edge.crdts.awmap import AWMap

        dev.declare("leaderboard", AWMap("lwwregister"))

    def bottoms(self) -> dict[str, Any]:
        from lasp_edge.crdts.awmap import AWMap

        return {"leaderboard": AWMap("lwwregister")}

    def make_app(self, dev: Any, button: Any, record: Any = None) -> Any:
        ns = self.namespace()
        game = ns["Game"](
            dev, K, PLAYERS.split(","), button, ns["hw"].Led(None), ns["Oracle"](None),
            self.view_ms,
        )  # fmt: skip
        if record is not None:
            played = game.record

            def record_score(player: str, score: int) -> None:
                record((player, score))  # first: a flush inside the update includes it
                played(player, score)

            game.record = record_score
        return game

    def own(self, dev_id: str, states: dict[str, Any]) -> dict[str, Any]:
        """Only the device's own slot: it also holds the others' it heard of."""
        lb = states.get("leaderboard")
        if lb is None:
            return states
        w = lb.to_wire()  # [vtag, vparams, {key: nested}, {key: tombstone}]
        for part in (w[2], w[3]):
            for key in list(part):
                if key != dev_id:
                    del part[key]
        return dict(states, leaderboard=type(lb).from_wire(w))

    def _slot(self, dev_id: str, states: dict[str, Any]) -> Any:
        lb = states.get("leaderboard")
        return None if lb is None else lb.get(dev_id)

    def held(self, dev_id: str, states: dict[str, Any]) -> int:
        """The slot's version: the ``F`` line's number (one per improving game)."""
        slot = self._slot(dev_id, states)
        return 0 if slot is None or slot.value() is None else int(slot.to_wire()[0])

    def real_facts(self, dev_id: str, states: dict[str, Any]) -> list[Any]:
        from lasp_edge.crdts.topk import TopK

        slot = self._slot(dev_id, states)
        if slot is None or slot.value() is None:
            return []
        return [tuple(e) for e in TopK.from_wire(slot.value()[1]).value()]

    def program_expected(self, expected: dict[str, Any], facts: list[Any]) -> dict[str, Any]:
        return {"leaderboard": top_k(facts)}

    def program_view(self, read: Any) -> dict[str, Any]:
        return {"leaderboard": read("leaderboard")}

    def device_view(self, name: str, state: Any) -> Any:
        """The global top-k as the device sees it: the join of every slot it holds."""
        from lasp_edge.crdts.topk import TopK

        top = TopK(K)
        slots = state.keys()  # an AWMap, not a dict
        for key in slots:
            v = state.get(key).value()
            if v is not None and v[0] == _TOPK_TAG:
                top.merge(TopK.from_wire(v[1]))
        return plain(top.value())

    def measure(self, value: Any) -> int | None:
        """Points in the global top-k (the gateway shows slots: folded here first)."""
        if isinstance(value, dict):  # the gateway's slot map
            entries: list[Any] = []
            for v in value.values():
                if isinstance(v, list) and len(v) == 2 and v[0] == _TOPK_TAG:
                    flat = v[1][1]
                    entries += list(zip(flat[::2], flat[1::2], strict=True))
            value = top_k(entries)
        if not isinstance(value, list):
            return None
        return sum(int(e[1]) for e in value)

    def measure_made(self, made: int, facts: list[Any], real_counted: int) -> int:
        return sum(s for _, s in top_k(facts))
