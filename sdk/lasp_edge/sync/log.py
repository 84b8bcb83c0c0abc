"""The delta log: what this replica still has to ship, as joined segments per variable.

Theory of operation (delta-interval anti-entropy, Almeida et al. 2018, Algorithm 2, with
bounded memory):

* Every change, local or received, takes the next sequence number of *this* replica and is
  joined into an open segment ``[lo, hi]`` of ``(var, origin)``. Joining instead of
  appending keeps the log bounded by the state size however long a peer is away.
* Sending seals the open segments it ships, so later changes start new segments and an
  acknowledgement can release exactly what it covers: a segment is dropped once every peer
  that needs it has acknowledged its ``hi``.
* ``origin`` is the peer a delta came from, so it is never echoed back to that peer.
* ``trimmed_to`` remembers the highest sequence released. A peer that acknowledged less than
  that (a new peer, or one that lost its data) gets full state instead of deltas.
* Too many sealed segments for one variable (a peer that never acknowledges) are joined
  pairwise, oldest first: fewer, coarser segments, still correct because resending joined
  data is idempotent.
"""

MAX_SEGMENTS_PER_VAR = 8


class Segment:
    def __init__(self, lo, hi, origin, delta):
        self.lo = lo
        self.hi = hi
        self.origin = origin  # peer id the data came from, or None for local updates
        self.delta = delta
        self.sealed = False


class DeltaLog:
    def __init__(self):
        self.last_seq = 0  # highest sequence number handed out
        self.trimmed_to = 0  # every seq <= this has been released
        self.by_var = {}  # var -> list of Segment, in seq order
        self._open = {}  # (var, origin) -> its open (unsealed) segment: O(1) appends
        # var -> the highest seq appended to it (``Node.tick`` skips quiet peers by it).
        # Restored segments need no entry: a peer's first check after a restore walks the
        # log whatever this says.
        self.var_seq = {}

    def append(self, var, delta, origin=None):
        """Log a change and return its sequence number."""
        self.last_seq += 1
        seq = self.last_seq
        self.var_seq[var] = seq
        s = self._open.get((var, origin))
        if s is not None:
            s.delta.merge(delta)
            s.hi = seq
            return seq
        self.add_segment(var, Segment(seq, seq, origin, delta.copy()))
        return seq

    def add_segment(self, var, s):
        """Append a segment (a new one, or one restored from disk) in seq order."""
        segs = self.by_var.get(var)
        if segs is None:
            segs = self.by_var[var] = []
        segs.append(s)
        if not s.sealed:
            self._open[(var, s.origin)] = s

    def pending(self, acked, upto, peer, interests):
        """Segments a peer still needs: after ``acked``, durable (``hi <= upto``), wanted.

        Returns ``{var: [Segment, ...]}``.
        """
        out = {}
        for var, segs in self.by_var.items():
            if interests is not None and var not in interests:
                continue
            mine = [s for s in segs if s.hi > acked and s.hi <= upto and s.origin != peer]
            if mine:
                out[var] = mine
        return out

    def _close(self, var, seg):
        """``seg`` takes no more appends (sealed or released)."""
        key = (var, seg.origin)
        if self._open.get(key) is seg:
            del self._open[key]

    def seal(self, segments_by_var):
        for var, segs in segments_by_var.items():
            for s in segs:
                if not s.sealed:
                    s.sealed = True
                    self._close(var, s)
        for var in segments_by_var:
            self._bound(var)

    def _bound(self, var):
        """Join adjacent sealed segments, oldest first, until at most MAX_SEGMENTS_PER_VAR
        are sealed. One pass: a forward that seals one segment per device (hundreds) must
        not cost a rescan of the list per join."""
        segs = self.by_var[var]
        excess = -MAX_SEGMENTS_PER_VAR
        for s in segs:
            if s.sealed:
                excess += 1
        if excess <= 0:
            return
        keep: list = []
        for b in segs:
            a = keep[-1] if keep else None
            if excess > 0 and b.sealed and a is not None and a.sealed:
                a.delta.merge(b.delta)
                a.hi = b.hi
                if a.origin != b.origin:
                    a.origin = None  # mixed: may echo back, which is harmless
                excess -= 1
            else:
                keep.append(b)
        segs[:] = keep

    def release(self, needed):
        """Drop segments no peer needs; ``needed(segment, var)`` says whether one still is."""
        for var in list(self.by_var):
            keep = []
            for s in self.by_var[var]:
                if needed(s, var):
                    keep.append(s)
                    continue
                if s.hi > self.trimmed_to:
                    self.trimmed_to = s.hi
                self._close(var, s)
            if keep:
                self.by_var[var] = keep
            else:
                del self.by_var[var]

    def size(self):
        return sum(len(segs) for segs in self.by_var.values())
