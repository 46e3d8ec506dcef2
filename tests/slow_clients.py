"""Slow HTTP clients on raw sockets, for tests/test_slow_clients.py and bench/slow_clients.py.

Each kind is one way to hold a server connection without ever finishing a request:

- ``silent``: connects and sends nothing;
- ``head``: sends part of a request head, then one more byte of it every ``interval``;
- ``body``: sends a whole head announcing ``Content-Length: 60000``, then one body byte every ``interval``;
- ``idle``: sends one whole request, reads the answer, then keeps the connection open saying nothing.

``head`` and ``body`` connections opened with ``trickle=False`` stall after their first bytes
instead. (A trickling client may lose the server's last answer: bytes it sends after the server
closed make the server's kernel reset the connection, which can discard what was still unread.)

A background thread trickles the bytes and notes when the server closes each connection, and
what it answered before closing.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

KINDS = ("silent", "head", "body", "idle")
HEAD_START = b"POST /hooks/generic HTTP/1.1\r\nHost: slow\r\nX-Slow: "
BODY_HEAD = (b"POST /hooks/generic HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
             b"Content-Length: 60000\r\n\r\n")
IDLE_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: slow\r\n\r\n"


@dataclass
class SlowConnection:
    kind: str
    sock: socket.socket
    opened_at: float
    trickle: bool
    received: bytes = b""
    closed_at: float | None = None

    @property
    def answer(self) -> bytes:
        """What the server said after the part of the exchange this client completed."""
        if self.kind == "idle":
            return self.received.partition(b"\r\n\r\n")[2].partition(b"}")[2]  # after the /healthz answer
        return self.received


@dataclass
class SlowClients:
    host: str
    port: int
    interval: float = 0.25
    connections: list[SlowConnection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def open(self, kind: str, count: int, trickle: bool = True) -> None:
        for _ in range(count):
            sock = socket.create_connection((self.host, self.port), timeout=10)
            if kind == "head":
                sock.sendall(HEAD_START)
            elif kind == "body":
                sock.sendall(BODY_HEAD)
            elif kind == "idle":
                sock.sendall(IDLE_REQUEST)
            sock.setblocking(False)
            connection = SlowConnection(kind, sock, time.monotonic(), trickle and kind in ("head", "body"))
            with self._lock:
                self.connections.append(connection)
                self._selector.register(sock, selectors.EVENT_READ, connection)
        if not self._thread.is_alive():
            self._thread.start()

    def open_count(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.connections if c.closed_at is None and kind in (None, c.kind))

    def _run(self) -> None:
        # Paced by select()'s timeout, not by Event.wait(timeout): under libfaketime a timed wait on
        # a condition variable never returns, and the suite runs under faketime.
        next_trickle = time.monotonic()
        while not self._stop.is_set():
            ready = self._selector.select(timeout=0.02)
            with self._lock:
                for key, _ in ready:
                    self._read(key.data)
                if time.monotonic() >= next_trickle:
                    next_trickle = time.monotonic() + self.interval
                    for connection in self.connections:
                        if connection.closed_at is None and connection.trickle:
                            try:
                                connection.sock.send(b"a")
                            except OSError:
                                self._closed(connection)

    def _read(self, connection: SlowConnection) -> None:
        try:
            data = connection.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            connection.received += data
        else:
            self._closed(connection)

    def _closed(self, connection: SlowConnection) -> None:
        if connection.closed_at is None:
            connection.closed_at = time.monotonic()
            self._selector.unregister(connection.sock)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # it stops within one select() timeout
        for connection in self.connections:
            connection.sock.close()
        self._selector.close()
