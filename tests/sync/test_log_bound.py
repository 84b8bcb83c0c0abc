"""``DeltaLog._bound``: at most MAX_SEGMENTS_PER_VAR sealed segments per variable.

The bound joins adjacent sealed segments, oldest first, in one pass (a gateway forwarding
for hundreds of devices seals one segment per device, and a rescan per join was quadratic).
The reference below is the obvious loop, one join at a time, each time the first adjacent
sealed pair: the one-pass version must leave exactly the segments it leaves.
"""

from hypothesis import given
from hypothesis import strategies as st

from lasp_edge import GCounter
from lasp_edge.sync.log import MAX_SEGMENTS_PER_VAR, DeltaLog, Segment


def reference_bound(segs):
    while sum(1 for s in segs if s.sealed) > MAX_SEGMENTS_PER_VAR:
        for i in range(len(segs) - 1):
            a, b = segs[i], segs[i + 1]
            if a.sealed and b.sealed:
                a.delta.merge(b.delta)
                a.hi = b.hi
                if a.origin != b.origin:
                    a.origin = None
                del segs[i + 1]
                break
        else:
            return


def build(pattern):
    segs = []
    for i, (sealed, origin) in enumerate(pattern):
        g = GCounter()
        g.increment("r%d" % (i % 5), i + 1)
        s = Segment(i + 1, i + 1, origin, g)
        s.sealed = sealed
        segs.append(s)
    return segs


def shape(segs):
    return [(s.lo, s.hi, s.origin, s.sealed, s.delta.value()) for s in segs]


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["a", "b", None])), max_size=40))
def test_one_pass_bound_equals_one_join_at_a_time(pattern):
    log = DeltaLog()
    for s in build(pattern):
        log.add_segment("v", s)
    if pattern:
        log._bound("v")
    expected = build(pattern)
    reference_bound(expected)
    assert shape(log.by_var.get("v", [])) == shape(expected)
    if all(sealed for sealed, _origin in pattern):  # open segments can keep sealed ones apart
        assert len(log.by_var.get("v", [])) <= MAX_SEGMENTS_PER_VAR
