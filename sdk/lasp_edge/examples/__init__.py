"""Runnable seed programs of the Lasp model: ``python -m lasp_edge.examples.<name>``.

``map_set``        S2 = map(S1, x*2) and provenance on removal
``ad_counter``     the advertisement counter: union, product, filter, threshold, bill once
``leaderboard``    per-device top-10 as dynamic variables, fold_dynamic into a global top-10
``sensor_windows`` per-device and global averages over 5-minute windows, old ones pruned
"""
