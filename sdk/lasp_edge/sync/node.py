"""The sans-IO sync node: one replica's variables, delta log and peer sessions.

Theory of operation. A ``Node`` never touches a socket, a clock or a file. Adapters feed it
received bytes (``receive``) and the time (``tick(now_ms)``), take the bytes it wants sent
(``take()``), and tell it what is durable (``commit``, ``mark_durable``). The same node
runs on a device (one peer: its gateway), on a gateway (devices plus the aggregator) and on
an aggregator (gateways, other aggregators).

Rules that make "nothing lost, nothing counted twice" hold:

1. *Only durable data leaves.* Local changes are shipped only once the adapter reported
   them persisted (``mark_durable``). Otherwise a crash could make the device reuse a
   counter value or a dot that a peer already holds for different data.
2. *Ack after durable.* Receiving a DELTA yields a ``merged`` event with a token; the ACK
   is produced only by ``commit(token)``, which the adapter calls after persisting.
3. *Forget only on ack.* The log releases a segment once every peer that needs it has
   acknowledged it; until then every send ships the join of everything unacknowledged, so
   loss, duplication and reordering are repaired by the next send (join is idempotent).
4. *Epochs order sessions.* Every boot has a higher epoch. Messages from an older epoch of
   a peer are stale and dropped; a DEATH (MQTT last will) counts only for the current one.
5. *Gaps rebirth.* A DELTA that starts past what we hold of that peer's log (we restarted
   and lost our record of it) makes us answer with our BIRTH. The ``recv_to`` of a BIRTH
   that opens a new session (a higher epoch) is authoritative: the peer rewinds, and sends
   full state if its log was released that far. Within a session a BIRTH only ever moves
   the mark forward, so a duplicated or late copy cannot make a peer resend old data.

One message is in flight per peer (stop-and-wait with the join of everything pending);
a lost message or ack is repaired after ``ack_timeout_ms``, doubled per retry up to
``max_timeout_ms``. Sends to a peer happen at most once per ``sync_period_ms``, which is
what batches many updates into one delta.
"""

from lasp_edge import cbor, wire
from lasp_edge.crdts.base import check_replica
from lasp_edge.sync import messages as M
from lasp_edge.sync.log import DeltaLog

# Event kinds returned by ``receive``.
EV_BIRTH = "birth"
EV_DEATH = "death"
EV_MERGED = "merged"
EV_ACKED = "acked"
EV_REJECTED = "rejected"


def _typed_later(state):
    """``wire.to_typed(state)``, deferred until called (see ``Node.snapshot``)."""
    return lambda: wire.to_typed(state)


class Peer:
    """What this node knows about one peer; persisted with the node (see ``snapshot``)."""

    def __init__(self, pid):
        self.id = pid
        self.epoch = 0  # the peer's epoch as last seen
        self.interests = None  # var names the peer wants from us; None = everything
        self.acked = 0  # highest seq of OUR log the peer acknowledged
        self.recv_to = 0  # highest seq of THEIR log we hold durably (contiguous)
        self.online = False
        self.need_full = False
        self.inflight = None  # (seq_to, sent_at_ms) of the unacknowledged send
        self.timeout = 0
        self.last_send = None
        self.parts = None  # ((seq_from, seq_to, nparts), set of parts committed)
        self.rejected = 0
        self.last_seen = None
        self.hello_at = None  # when we last asked for its birth and got none yet
        self.hello_wait = 0
        self.checked = -1  # log position at which nothing was pending for it (cheap ticks)

    def wants(self, var):
        return self.interests is None or var in self.interests


class Node:
    def __init__(
        self,
        replica,
        epoch=1,
        interests=None,
        sync_period_ms=1000,
        ack_timeout_ms=3000,
        max_timeout_ms=60000,
        max_payload=None,
        max_message=1 << 20,
        auto_declare=False,
        authorize=None,
        track_durable=False,
    ):
        self.replica = check_replica(replica)
        self.epoch = epoch
        self.interests = interests  # what we want from peers (sent in our BIRTH)
        self.sync_period_ms = sync_period_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.max_timeout_ms = max_timeout_ms
        self.max_payload = max_payload  # soft limit per DELTA message, in bytes
        self.max_message = max_message  # hard limit on what we accept
        self.auto_declare = auto_declare  # adopt variables peers send (gateway, aggregator)
        self.authorize = authorize  # fn(peer, var, delta) -> reason str or None
        self.vars = {}
        self.log = DeltaLog()
        self.peers = {}
        # With ``track_durable`` only changes reported by ``mark_durable`` may be sent (a
        # device that persists on a flush policy); without it every change counts as durable
        # (a process that persists before acknowledging anything, or keeps nothing).
        self.durable_seq = 0 if track_durable else None
        self._out = []

    # -- local API -----------------------------------------------------------------------

    def declare(self, name, state):
        """Add a variable (a CRDT, usually bottom); again with the same type is a no-op."""
        M.check_var(name)
        cur = self.vars.get(name)
        if cur is None:
            self.vars[name] = state
            return state
        if type(cur) is not type(state) or cur.params() != state.params():
            raise ValueError("variable %r is already a %s" % (name, type(cur).__name__))
        return cur

    def update(self, name, op, *args):
        """Run mutator ``op`` on variable ``name`` and log the delta for every peer."""
        var = self.vars.get(name)
        if var is None:
            raise KeyError("no variable %r; declared: %s" % (name, ", ".join(sorted(self.vars))))
        if op not in var.MUTATORS:
            raise ValueError(
                "%s has no mutator %r; valid: %s"
                % (type(var).__name__, op, ", ".join(var.MUTATORS))
            )
        d = getattr(var, op)(*args)
        if not d.is_bottom():
            self.log.append(name, d)
        return d

    def bind(self, name, state, origin=None):
        """Merge a state from outside the protocol (e.g. the local program); True if grew."""
        var = self.vars.get(name)
        if var is None:
            var = self.declare(name, state.bottom())
        if var.merge(state):
            self.log.append(name, state, origin)
            return True
        return False

    def mark_durable(self, seq=None):
        """The adapter persisted everything up to ``seq`` (default: all logged so far)."""
        self.durable_seq = self.log.last_seq if seq is None else seq

    # -- sessions ------------------------------------------------------------------------

    def peer(self, pid):
        p = self.peers.get(pid)
        if p is None:
            check_replica(pid)
            p = self.peers[pid] = Peer(pid)
            p.timeout = self.ack_timeout_ms
        return p

    def hello(self, pid, ask=True):
        """Queue our BIRTH to ``pid`` (on connect; ``ask`` requests theirs in return)."""
        p = self.peer(pid)
        self._queue_birth(p, ask)
        return p

    def birth_message(self, pid, ask=True):
        return M.birth(
            self.replica,
            self.epoch,
            {n: v.TAG for n, v in self.vars.items()},
            self.interests,
            self.peer(pid).recv_to,
            ask,
        )

    def death_message(self):
        """Register this as the MQTT last will: it names our current epoch."""
        return M.death(self.replica, self.epoch)

    def _queue_birth(self, p, ask, now_ms=None):
        if ask and not p.online and p.hello_at is None:
            p.hello_at = now_ms  # None until the first tick stamps it
            p.hello_wait = self.ack_timeout_ms
        self._out.append((p.id, self.birth_message(p.id, ask)))

    def take(self):
        """Messages to send, as ``[(peer id, bytes), ...]``; the queue is emptied."""
        out, self._out = self._out, []
        return out

    # -- receiving -----------------------------------------------------------------------

    def receive(self, data, now_ms=0, peer=None):
        """Handle one message; return a list of events. Never raises on bad input.

        ``peer`` is who the transport says sent it (e.g. from the MQTT topic); a message
        claiming another sender is rejected, which is how a device is kept to its own id.
        """
        try:
            m = M.decode(data, self.max_message)
        except M.ProtocolError as e:
            return self._reject(peer, "malformed: %s" % e)
        if peer is not None and m.sender != peer:
            return self._reject(peer, "sender %r does not match its channel" % (m.sender,))
        if m.sender == self.replica:
            return []  # our own message echoed by the broker
        p = self.peer(m.sender)
        if m.epoch < p.epoch:
            if m.kind == M.DEATH:
                return []  # the will of a session already replaced by a reboot: expected
            return self._reject(p.id, "stale epoch %d < %d" % (m.epoch, p.epoch))
        p.last_seen = now_ms
        if m.kind == M.BIRTH:
            return self._on_birth(p, m)
        if m.kind == M.DEATH:
            if m.epoch == p.epoch and p.online:
                p.online = False
                p.inflight = None
                p.hello_wait = 0  # it is gone: wait for its next birth, do not poll it
                return [(EV_DEATH, p.id)]
            return []
        if m.kind == M.ACK:
            return self._on_ack(p, m)
        return self._on_delta(p, m)

    def _reject(self, pid, reason):
        if pid is not None and pid in self.peers:
            self.peers[pid].rejected += 1
        return [(EV_REJECTED, pid, reason)]

    def _on_birth(self, p, m):
        if m.recv_to > self.log.last_seq:
            return self._reject(p.id, "birth claims seq %d we never sent" % m.recv_to)
        new_epoch = m.epoch > p.epoch
        p.epoch = m.epoch
        p.interests = None if m.interests is None else set(m.interests)
        p.online = True
        p.hello_at = None
        if new_epoch or m.recv_to > p.acked:
            # A new session's recv_to is authoritative (a peer that lost data restarted, so
            # we rewind); within a session a birth can only be a duplicate or reordered
            # copy, which must never move the mark backwards.
            p.acked = m.recv_to
            p.need_full = m.recv_to < self.log.trimmed_to
        p.inflight = None
        p.timeout = self.ack_timeout_ms
        p.last_send = None
        p.parts = None
        p.checked = -1  # its interests may have changed
        # ``holds`` names types only, not parameters (TopK's k, AWMap's value type), so
        # auto-declared variables are created from the first delta, which carries them.
        if m.ask:
            self._queue_birth(p, False)
        return [(EV_BIRTH, p.id, new_epoch)]

    def _on_ack(self, p, m):
        if m.acked_epoch != self.epoch:
            return []  # an ack for an earlier boot of ours: stale, harmless
        if m.recv_to > self.log.last_seq:
            return self._reject(p.id, "ack for seq %d we never sent" % m.recv_to)
        if m.recv_to <= p.acked:
            return []  # duplicate or reordered ack
        p.acked = m.recv_to
        if p.inflight is not None and m.recv_to >= p.inflight[0]:
            p.inflight = None
            p.need_full = False
            p.timeout = self.ack_timeout_ms
        self._release()
        return [(EV_ACKED, p.id, m.recv_to)]

    def _on_delta(self, p, m):
        if m.epoch > p.epoch:
            p.epoch = m.epoch  # its birth was lost; the delta is still good data
        if not p.online and p.hello_at is None:
            # Merge its data, but send nothing until its BIRTH tells us what it wants.
            self._queue_birth(p, True)
        accepted = {}
        events = []
        for name, d in m.deltas.items():
            if self.interests is not None and name not in self.interests:
                continue  # not something we asked for: never let it in
            var = self.vars.get(name)
            if var is None:
                if not self.auto_declare:
                    continue  # a variable we do not hold: not for us
            elif type(var) is not type(d) or var.params() != d.params():
                # A configuration mismatch, not an attack: drop this variable (counted) and
                # take the others, or one wrong declaration would stall every variable.
                events += self._reject(
                    p.id, "variable %r is a %s here" % (name, type(var).__name__)
                )
                continue
            if self.authorize is not None:
                why = self.authorize(p.id, name, d)
                if why:
                    return self._reject(p.id, "unauthorized write to %r: %s" % (name, why))
            accepted[name] = d
        changed = {}
        for name, d in accepted.items():
            var = self.vars.get(name)
            if var is None:
                var = self.vars[name] = d.bottom()
            if var.merge(d):
                self.log.append(name, d, p.id)
                changed[name] = d
        gap = not m.full and m.seq_from > p.recv_to + 1
        if gap:
            self._queue_birth(p, False)
        elif self._all_parts(p, m) and m.seq_to > p.recv_to:
            # recv_to moves with the merged data, so one snapshot persists both together;
            # the ACK that announces it waits for ``commit``.
            p.recv_to = m.seq_to
        events.append(
            (EV_MERGED, p.id, changed, (p.id, m.epoch, m.nparts > 1 and p.parts is not None))
        )
        return events

    def _all_parts(self, p, m):
        if m.nparts == 1:
            return True
        key = (m.seq_from, m.seq_to, m.nparts)
        if p.parts is None or p.parts[0] != key:
            p.parts = (key, set())
        p.parts[1].add(m.part)
        if len(p.parts[1]) < m.nparts:
            return False
        p.parts = None
        return True

    def commit(self, token):
        """What ``token``'s message brought is durable here: acknowledge it.

        Call it after persisting the snapshot taken *after* ``receive`` returned. A message
        that is one part of several is acknowledged once every part has arrived.
        """
        pid, epoch, waiting_for_parts = token
        p = self.peers.get(pid)
        if p is None or epoch != p.epoch or waiting_for_parts:
            return
        self._out.append((pid, M.ack(self.replica, self.epoch, epoch, p.recv_to)))

    # -- sending -------------------------------------------------------------------------

    def tick(self, now_ms):
        """Queue the DELTA messages that are due at ``now_ms``."""
        for p in self.peers.values():
            if not p.online:
                self._retry_hello(p, now_ms)
                continue
            if p.inflight is not None:
                if now_ms - p.inflight[1] < p.timeout:
                    continue
                p.inflight = None  # lost message or lost ack: resend everything pending
                p.timeout = min(p.timeout * 2, self.max_timeout_ms)
            elif p.last_send is not None and now_ms - p.last_send < self.sync_period_ms:
                continue
            c = p.checked  # nothing was pending for it at this log position
            if c >= 0 and not p.need_full:
                # Skip it if nothing it wants was logged since: a gateway ticks hundreds of
                # devices while they grow variables most of them never asked for. (Inline,
                # not a method: a device's heap pays for every function object.)
                if self.log.last_seq <= c:
                    continue
                if p.interests is not None:
                    for name, seq in self.log.var_seq.items():
                        if seq > c and name in p.interests:  # interests may be a predicate
                            break
                    else:
                        continue
            if not self._send_to(p, now_ms):
                p.checked = self._upto()

    def _retry_hello(self, p, now_ms):
        """Our BIRTH (or its answer) may have been lost: ask again, backing off."""
        if p.hello_wait == 0:
            return  # we never said hello to this peer: wait for it to speak first
        if p.hello_at is None:
            p.hello_at = now_ms
        elif now_ms - p.hello_at >= p.hello_wait:
            p.hello_at = now_ms
            p.hello_wait = min(p.hello_wait * 2, self.max_timeout_ms)
            self._out.append((p.id, self.birth_message(p.id, True)))

    def flush(self, now_ms):
        """Send now to every online peer with something pending (ignores the period)."""
        for p in self.peers.values():
            if p.online and p.inflight is None:
                self._send_to(p, now_ms)

    def next_deadline_ms(self):
        """When ``tick`` next has work, or None when only input can create work."""
        best = None
        for p in self.peers.values():
            if not p.online:
                if p.hello_wait:
                    t = 0 if p.hello_at is None else p.hello_at + p.hello_wait
                    if best is None or t < best:
                        best = t
                continue
            if p.inflight is not None:
                t = p.inflight[1] + p.timeout
            elif p.need_full or self._has_pending(p):
                t = 0 if p.last_send is None else p.last_send + self.sync_period_ms
            else:
                continue
            if best is None or t < best:
                best = t
        return best

    def _upto(self):
        return self.log.last_seq if self.durable_seq is None else self.durable_seq

    def _has_pending(self, p):
        return bool(self.log.pending(p.acked, self._upto(), p.id, p.interests))

    def _send_to(self, p, now_ms):
        """Queue what ``p`` still needs, as one DELTA (in parts); False if nothing was due."""
        upto = self._upto()
        if upto <= p.acked:
            p.need_full = False  # it holds all of our log there is: nothing to send
            return False
        if p.need_full:
            if upto < self.log.last_seq:
                return False  # full state would include changes not yet durable: wait
            segs = {}
            states = {n: v for n, v in self.vars.items() if p.wants(n) and not v.is_bottom()}
            if not states and upto == 0:
                p.need_full = False
                return False
        else:
            segs = self.log.pending(p.acked, upto, p.id, p.interests)
            if not segs:
                return False
            states = {}
            for name, ss in segs.items():
                d = ss[0].delta.copy()
                for s in ss[1:]:
                    d.merge(s.delta)
                states[name] = d
        seq_from, seq_to = p.acked + 1, upto
        parts = self._pack(states)
        for i, body in enumerate(parts):
            self._out.append(
                (
                    p.id,
                    M.delta(
                        self.replica, self.epoch, seq_from, seq_to, i, len(parts), p.need_full, body
                    ),
                )
            )
        self.log.seal(segs)
        p.inflight = (seq_to, now_ms)
        p.last_send = now_ms
        return True

    def _pack(self, states):
        """Group ``{var: state}`` into message bodies of about ``max_payload`` bytes."""
        typed = {n: wire.to_typed(s) for n, s in states.items()}
        if self.max_payload is None:
            return [typed]
        budget = max(64, self.max_payload - 48)  # room for the header
        bodies: list = []
        cur: dict = {}
        used = 0
        for name in sorted(typed):
            tag, payload = typed[name]
            size = len(cbor.dumps(payload)) + len(name) + 4
            if size <= budget:
                pieces = [payload]
            else:
                # Imported only when a payload is too big: most nodes never split, and the
                # splitter is ~2 KB of device heap once loaded.
                from lasp_edge.sync.split import split_payload

                pieces = split_payload(tag, payload, budget)
            for piece in pieces:
                psize = len(cbor.dumps(piece)) + len(name) + 4
                if cur and (used + psize > budget or name in cur):
                    bodies.append(cur)
                    cur, used = {}, 0
                cur[name] = [tag, piece]
                used += psize
        if cur or not bodies:
            bodies.append(cur)
        return bodies

    def _release(self):
        peers = list(self.peers.values())

        def needed(seg, var):
            for q in peers:
                if seg.hi > q.acked and seg.origin != q.id and q.wants(var):
                    return True
            return False

        self.log.release(needed)

    # -- persistence ---------------------------------------------------------------------

    def snapshot(self, lazy=False):
        """Everything to persist, as CBOR-able data (vars, log, peers, counters).

        With ``lazy`` every CRDT state in it (each variable, each log segment's delta) is a
        function that builds its wire form: ``cbor.dump`` calls each when its turn comes, so
        a device streaming its flush holds one of those trees at a time (they are most of
        the record, and several times their encoding on a 64-bit port).
        """
        typed = _typed_later if lazy else wire.to_typed

        def segments():
            segs = []
            for var, ss in self.log.by_var.items():
                for s in ss:
                    segs.append([var, s.lo, s.hi, s.origin, s.sealed, typed(s.delta)])
            return segs

        def variables():
            return {n: typed(v) for n, v in self.vars.items()}

        return {
            "replica": self.replica,
            "epoch": self.epoch,
            "vars": variables if lazy else variables(),
            "last_seq": self.log.last_seq,
            "trimmed_to": self.log.trimmed_to,
            "segments": segments if lazy else segments(),
            "peers": [
                [
                    p.id,
                    p.epoch,
                    p.acked,
                    p.recv_to,
                    None if p.interests is None else sorted(p.interests),
                ]
                for p in self.peers.values()
            ],
        }

    def restore(self, snap):
        """Load a ``snapshot``; the caller sets the new epoch afterwards (boot counter)."""
        from lasp_edge.sync.log import Segment

        self.vars = {n: wire.from_typed(t) for n, t in snap["vars"].items()}
        self.log = DeltaLog()
        self.log.last_seq = snap["last_seq"]
        self.log.trimmed_to = snap["trimmed_to"]
        for var, lo, hi, origin, sealed, typed in snap["segments"]:
            s = Segment(lo, hi, origin, wire.from_typed(typed))
            s.sealed = sealed
            self.log.add_segment(var, s)
        self.peers = {}
        for pid, epoch, acked, recv_to, interests in snap["peers"]:
            p = self.peer(pid)
            p.epoch, p.acked, p.recv_to = epoch, acked, recv_to
            p.interests = None if interests is None else set(interests)
        if self.durable_seq is not None:
            self.durable_seq = self.log.last_seq  # what was restored is durable by definition
