"""A fault-injecting TCP proxy on loopback, between one MQTT client and the broker.

Two things it can do to a link:

* **Cut it** (``cut(seconds)``): open connections are closed, new ones are accepted and
  closed at once, so the client sees an unreachable broker and retries with its backoff,
  while the program behind it keeps running. That is a device going offline, a
  partition, or an aggregator that cannot be reached.
* **Fault messages** (``faults``, a ``MessageFaults``): the byte stream is split into MQTT
  packets (fixed header: type byte, then the remaining length as a base-128 varint), and
  each QoS 0 PUBLISH is dropped, duplicated, delayed or held back as ``faults.decide()``
  says. Other packets (CONNECT, SUBSCRIBE, PINGREQ, ...) pass unchanged and in order, so
  the MQTT session itself stays valid: only application messages suffer, which is what
  a lossy radio link does to a QoS 0 protocol.

Each direction has a reader thread (parse, decide) and a writer thread that sends packets
when they are due, so a delayed packet never blocks the ones behind it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time

from lasp_gateway.emulator.faults import MessageFaults

_PUBLISH = 3


def split_packets(buf: bytearray) -> list[bytes]:
    """Remove and return the complete MQTT packets at the start of ``buf``."""
    out: list[bytes] = []
    while len(buf) >= 2:
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(buf) or i > 4:
                return out  # the length is not complete yet (or > 4 bytes: wait, never)
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        end = i + length
        if len(buf) < end:
            return out
        out.append(bytes(buf[:end]))
        del buf[:end]
    return out


def is_qos0_publish(packet: bytes) -> bool:
    return packet[0] >> 4 == _PUBLISH and (packet[0] >> 1) & 3 == 0


class _Pipe:
    """One direction of one connection: parse packets, apply faults, send when due."""

    def __init__(self, src: socket.socket, dst: socket.socket, faults: MessageFaults | None):
        self.src, self.dst, self.faults = src, dst, faults
        self.heap: list[tuple[float, int, bytes]] = []
        self.seq = itertools.count()
        self.cv = threading.Condition()
        self.done = False
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        buf = bytearray()
        try:
            while True:
                data = self.src.recv(65536)
                if not data:
                    break
                if self.faults is None or not self.faults.active or self.faults.healed:
                    self._push(0.0, data)
                    continue
                buf += data
                for pkt in split_packets(buf):
                    delays = self.faults.decide() if is_qos0_publish(pkt) else [0.0]
                    for d in delays:
                        self._push(d, pkt)
        except OSError:
            pass
        self.close()

    def _push(self, delay: float, data: bytes) -> None:
        with self.cv:
            heapq.heappush(self.heap, (time.monotonic() + delay, next(self.seq), data))
            self.cv.notify()

    def _write(self) -> None:
        while True:
            with self.cv:
                while not self.done and (not self.heap or self.heap[0][0] > time.monotonic()):
                    wait = None if not self.heap else self.heap[0][0] - time.monotonic()
                    self.cv.wait(wait)
                if self.done:
                    return
                _, _, data = heapq.heappop(self.heap)
            try:
                self.dst.sendall(data)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        with self.cv:
            self.done = True
            self.cv.notify()
        for s in (self.src, self.dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class FaultProxy:
    """Relay ``127.0.0.1:port`` to the broker at ``target_host:target_port``, with faults.

    ``faults`` applies to both directions (one generator per direction, so a run is
    reproducible packet for packet given the same traffic). Without faults it is a plain
    relay that can be cut: the one-command demo's device links.
    """

    def __init__(
        self,
        target_port: int,
        faults: MessageFaults | None = None,
        faults_down: MessageFaults | None = None,
        target_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self.faults_up = faults
        self.faults_down = faults_down if faults_down is not None else faults
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.offline_until = 0.0
        self.lock = threading.Lock()
        self.pipes: list[_Pipe] = []
        self.closed = False
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def online(self) -> bool:
        return time.monotonic() >= self.offline_until

    def cut(self, seconds: float) -> None:
        """Go offline for ``seconds`` (0: only drop the current connections)."""
        self.offline_until = max(self.offline_until, time.monotonic() + seconds)
        self.drop()

    def heal(self) -> None:
        self.offline_until = 0.0

    def drop(self) -> None:
        with self.lock:
            pipes, self.pipes = self.pipes, []
        for p in pipes:
            p.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if not self.online:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            with self.lock:
                self.pipes.append(_Pipe(client, upstream, self.faults_up))
                self.pipes.append(_Pipe(upstream, client, self.faults_down))

    def close(self) -> None:
        self.closed = True
        self.cut(0)
        self.sock.close()


LinkProxy = FaultProxy  # the name the one-command demo uses
