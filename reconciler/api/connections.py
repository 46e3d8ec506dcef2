"""How long and how many clients the API server waits for: the defence against slow clients.

uvicorn's h11 server bounds only the idle time between two requests of a keep-alive connection. A
client that sends a request's head or body one byte at a time holds its connection (a socket, a
file descriptor, an application task) for as long as it likes, and a few thousand of them starve
everyone else, ``/healthz`` included. ``GuardedH11Protocol`` adds, per connection:

- a **head deadline**: the request line and headers must have arrived ``header_timeout`` after the
  connection became ready for a request (it opened, or the previous response was sent);
- a **body deadline**: the whole body must have arrived ``body_timeout`` after the head, whether
  or not the application reads it;

and, per server, a **cap** of ``max_connections`` open connections. At the cap a new connection
closes the one that has waited longest on its client (for a head or a body), provided that one
has waited at least ``EVICTION_GRACE``; otherwise (a burst of new connections, or every connection
busy with a request the application is handling) the new one is answered 503 and closed, before
the application sees it. Legitimate clients send a request in milliseconds, so the connections a
flood of slow clients holds are the ones that make room, and a probe arriving while they are
held gets in.

A connection cut in the middle of a request gets a 408 JSON answer (503 when it made room); one
that sent nothing is closed silently, as an idle keep-alive connection is. The deadlines are
wall-clock totals, not idle timers, so trickling a byte now and then does not extend them. Cuts
are logged as counts, at most once a second per kind, so a flood does not become a log flood.

Called by ``reconciler.daemon.main.ApiServer``, which gives ``guarded_protocol(limits)`` to uvicorn
as its HTTP protocol class.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from reconciler import logs

log = logs.get_logger(__name__)

HEAD = "head"
BODY = "body"
# A connection accepted a moment ago may have its request waiting unread in the socket (asyncio
# accepts a burst of connections before it reads from any): it is not closed to make room until
# it has had this long to be read. Capped at header_timeout.
EVICTION_GRACE = 1.0
LOG_EVERY = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int


@dataclass
class Room:
    """One server's connections: how many are open, and which wait on their client, oldest first.

    A connection joins ``waiting`` (with the loop time its wait began) when the wait begins, so
    insertion order is age order and the connection to close at the cap is the first one: no
    scan, however many connections a flood opens.
    """

    open: int = 0
    waiting: dict[GuardedH11Protocol, float] = field(default_factory=dict)
    cuts: Counter[str] = field(default_factory=Counter)
    logged_at: float = 0.0

    def tally(self, event: str, limits: ConnectionLimits) -> None:
        """Count a cut; log the counts at most once every ``LOG_EVERY`` seconds."""
        self.cuts[event] += 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_EVERY:
            log.warning("api.connections_cut", **self.cuts, open=self.open, max_connections=limits.max_connections)
            self.cuts.clear()
            self.logged_at = now


def _answer(status: int, reason: str, error: str, detail: dict[str, Any]) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, written without h11 (which allows no
    response before a request's head has arrived)."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with head and body deadlines and a connection cap (see the module)."""

    limits: ClassVar[ConnectionLimits]
    room: ClassVar[Room]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_for: str | None = None  # HEAD or BODY while the client owes us something
        self.cut = False
        self._counted = False  # in room.open
        self._deadline: asyncio.TimerHandle | None = None
        self._received = False  # some of what we wait for has arrived

    # -- uvicorn's protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._admitted():
            self._follow()

    def data_received(self, data: bytes) -> None:
        self._received = True
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)

    # -- deadlines --------------------------------------------------------------------------------

    def _follow(self) -> None:
        """Arm the deadline of what the connection now waits for from its client, if anything."""
        if self.cut or self.transport.is_closing():
            self.waiting_for = None
            self._leave()
            return
        state = self.conn.their_state
        waiting = HEAD if state is h11.IDLE else BODY if state is h11.SEND_BODY else None
        if waiting == self.waiting_for:
            return  # still the same wait: its deadline stands, however many bytes trickle in
        self._disarm()
        self.room.waiting.pop(self, None)
        self.waiting_for = waiting
        self._received = False
        if waiting is not None:
            self.room.waiting[self] = self.loop.time()
            timeout = self.limits.header_timeout if waiting == HEAD else self.limits.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expire)

    def _leave(self) -> None:
        """Out of the room's books: the connection is closing."""
        self._disarm()
        self.room.waiting.pop(self, None)
        if self._counted:
            self._counted = False
            self.room.open -= 1

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        waiting = self.waiting_for
        limit = self.limits.body_timeout if waiting == BODY else self.limits.header_timeout
        self.room.tally(f"{waiting}_timeout", self.limits)
        self._cut(_answer(408, "Request Timeout", f"request {waiting} not received in time",
                          {"limit_seconds": limit}))

    def _cut(self, answer: bytes) -> None:
        """Close the connection; answer when the client is in the middle of a request."""
        cycle = self.cycle
        in_body = self.waiting_for == BODY
        # An application may answer before reading the body (a 413, or a route that reads none);
        # then the client already has its answer and gets no second one.
        answered = in_body and cycle is not None and cycle.response_started
        midway = in_body or self._received
        self.cut = True
        self.waiting_for = None
        self._leave()
        if cycle is not None and not cycle.response_complete:
            # The application may be waiting for the body: it now receives http.disconnect, and
            # whatever it answers is dropped, so nothing follows our answer on the wire.
            cycle.disconnected = True
            cycle.message_event.set()
        if midway and not answered:
            self.transport.write(answer)
        self.transport.close()

    # -- the cap ----------------------------------------------------------------------------------

    def _admitted(self) -> bool:
        """Make room at the cap by closing the connection that has waited longest on its client."""
        room, cap = self.room, self.limits.max_connections
        if room.open >= cap and room.waiting:
            oldest, since = next(iter(room.waiting.items()))
            if self.loop.time() - since >= min(EVICTION_GRACE, self.limits.header_timeout):
                room.tally("evicted", self.limits)
                oldest._cut(_answer(503, "Service Unavailable", "too many connections; this one waited longest",
                                    {"max_connections": cap}))
        if room.open < cap:
            room.open += 1
            self._counted = True
            return True
        room.tally("refused", self.limits)
        self.cut = True
        self.transport.write(_answer(503, "Service Unavailable", "too many connections", {"max_connections": cap}))
        self.transport.close()
        return False


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits, "room": Room()})
