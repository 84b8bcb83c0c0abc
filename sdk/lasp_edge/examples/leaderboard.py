"""Seed program 3: the leaderboard. Local top-10s, one global top-10 via fold_dynamic.

Each device keeps the top-10 of its own players' scores in a *dynamic* variable (local,
never merged). ``fold_dynamic("local_top", None, "leaderboard")`` publishes each device's
top-10 as its slot of the global ``leaderboard``; every replica's view is the top-10 of the
union, which is exact because keeping the k best commutes with join.

Then one device starts a new season (``reset``): its local top-10 shrinks to nothing, its
slot is withdrawn, and the global leaderboard drops exactly the scores only it held.
"""

from __future__ import annotations

import argparse
import random

from lasp_edge.store import LocalNetwork, Store

NAMES = ("ana", "bo", "cy", "dee", "eli", "fay", "gus", "hal", "ivy", "jo", "kai", "lu")


def declare_program(s: Store, k: int) -> None:
    s.declare_dynamic("local_top", "topk", k=k)
    s.fold_dynamic("local_top", None, "leaderboard")


def fmt(entries: list[tuple[str, int]], limit: int | None = None) -> str:
    shown = entries if limit is None else entries[:limit]
    return ", ".join("%s %d" % e for e in shown) or "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=3)
    p.add_argument("--games", type=int, default=40, help="games played on each device")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)

    devices = [Store("dev%d" % (i + 1)) for i in range(args.devices)]
    net = LocalNetwork()
    for i, d in enumerate(devices):
        declare_program(d, args.k)
        if i:
            net.connect(devices[0], d)  # a star: dev1 relays between the others

    for i, d in enumerate(devices):
        players = ["%s@%s" % (n, d.replica) for n in NAMES[i * 4 : i * 4 + 4] or NAMES[:4]]
        for _ in range(args.games):
            d.update("local_top", "add", rng.choice(players), rng.randrange(1000))
    net.sync()

    for d in devices:
        print("%s local top-3:  %s" % (d.replica, fmt(d.query("local_top"), 3)))
    board = devices[0].query("leaderboard")
    print("global top-%d (%d entries):" % (args.k, len(board)))
    for rank, (player, score) in enumerate(board, 1):
        print("  %2d. %-10s %d" % (rank, player, score))
    same = all(d.query("leaderboard") == board for d in devices)
    print("every replica sees the same leaderboard: %s" % same)

    gone = devices[-1]
    gone.reset("local_top")
    net.sync()
    board = devices[0].query("leaderboard")
    print("%s starts a new season (reset): its entries leave the board" % gone.replica)
    print("  global now: %s" % fmt(board))
    left = [p for p, _ in board if p.endswith("@" + gone.replica)]
    print("  entries of %s left: %d" % (gone.replica, len(left)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
