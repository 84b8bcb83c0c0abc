"""TopK(k): the k best ``(score, id)`` pairs, keeping the best score seen per id.

State: ``{id: best score}`` holding at most k ids. Join takes the per-id maximum of both
sides and keeps the k best, ranked by score (higher first) then id (ints before strs,
ascending). That truncation is a lattice homomorphism: an entry that falls out of one
replica's top k can never re-enter the global top k, because scores only grow and an entry
out-ranked locally is out-ranked globally. So devices ship only their top k, and the
gateway/aggregator joins them into the exact global top k (the Lasp leaderboard).

Wire form: ``[k, [id, score, id, score, ...]]`` best first.
"""

from lasp_edge.crdts.base import MAX_UINT, Lattice, check_replica, expect, replica_rank

MAX_K = 1024


def _check_score(s):
    """Validate a score and return its canonical form.

    ``3 == 3.0`` (and ``0 == -0.0``) in Python, but they encode differently: if both were
    kept, whichever arrived first would decide the bytes of equal states. So a float that
    holds an integer CBOR can carry becomes that int; every other float stays a float.
    """
    t = type(s)
    if t is int:
        if not -MAX_UINT - 1 <= s <= MAX_UINT:
            raise ValueError("score out of CBOR integer range")
        return s
    if t is not float:
        raise TypeError("score must be an int or float")
    if s != s:
        raise ValueError("score must not be NaN")
    if -MAX_UINT - 1 <= s <= MAX_UINT and s == int(s):
        return int(s)
    return s


class TopK(Lattice):
    TAG = 10
    NAME = "topk"
    MUTATORS = ("add",)

    def __init__(self, k=10):
        if type(k) is not int or not 1 <= k <= MAX_K:
            raise ValueError("k must be an int in [1, %d]" % MAX_K)
        self.k = k
        self._best = {}  # id -> best score, at most k entries

    def params(self):
        return {"k": self.k}

    def _rank(self, i):
        """Sort key: smallest is best."""
        return (-self._best[i], replica_rank(i))

    def _worst(self):
        worst = None
        for i in self._best:
            if worst is None or self._rank(i) > self._rank(worst):
                worst = i
        return worst

    def _offer(self, i, s):
        """Put ``(i, s)`` if it improves the state; True iff the state changed."""
        old = self._best.get(i)
        if old is not None and s <= old:
            return False
        if old is None and len(self._best) >= self.k:
            w = self._worst()
            if (-s, replica_rank(i)) >= self._rank(w):
                return False
            del self._best[w]
        self._best[i] = s
        return True

    def add(self, id, score):
        check_replica(id)
        score = _check_score(score)
        delta = TopK(self.k)
        if self._offer(id, score):
            delta._best[id] = score
        return delta

    def _check(self, other):
        Lattice._check(self, other)
        if other.k != self.k:
            raise ValueError("cannot join TopK(k=%d) with TopK(k=%d)" % (self.k, other.k))

    def replicas(self):
        return set()

    def merge(self, other):
        self._check(other)
        grew = False
        for i, s in other._best.items():
            if self._offer(i, s):
                grew = True
        return grew

    def leq(self, other):
        return self.join(other)._eq(other)

    def _eq(self, other):
        return self.k == other.k and self._best == other._best

    def copy(self):
        c = TopK(self.k)
        c._best = dict(self._best)
        return c

    def is_bottom(self):
        return not self._best

    def ranked(self):
        return sorted(self._best, key=self._rank)

    def value(self):
        """``[(id, score), ...]`` best first."""
        return [(i, self._best[i]) for i in self.ranked()]

    def to_wire(self):
        flat = []
        for i in self.ranked():
            flat.append(i)
            flat.append(self._best[i])
        return [self.k, flat]

    @classmethod
    def from_wire(cls, w):
        expect(type(w) is list and len(w) == 2 and type(w[1]) is list, "topk wants [k, pairs]")
        expect(type(w[0]) is int and 1 <= w[0] <= MAX_K, "topk k")
        t = cls(w[0])
        flat = w[1]
        expect(len(flat) % 2 == 0 and len(flat) // 2 <= t.k, "topk pairs")
        for j in range(0, len(flat), 2):
            i = check_replica(flat[j])
            try:
                s = _check_score(flat[j + 1])
            except TypeError:
                raise ValueError("malformed wire form: topk score") from None
            expect(i not in t._best, "topk duplicate id")
            t._best[i] = s
        return t
