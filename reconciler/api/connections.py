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
closes the one that has waited longest on its client (for a head or a body); only when every
connection is busy with a request the application is handling is the new one answered 503.
Legitimate clients send a request in milliseconds, so the connections a flood of slow clients
holds are the ones that make room.

A connection cut in the middle of a request gets a 408 JSON answer; one that sent nothing is
closed silently, as an idle keep-alive connection is. The deadlines are wall-clock totals, not
idle timers, so trickling a byte now and then does not extend them.

Called by ``reconciler.daemon.main.ApiServer``, which gives ``guarded_protocol(limits)`` to uvicorn
as its HTTP protocol class.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger(__name__)

HEAD = "head"
BODY = "body"


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_for: str | None = None  # HEAD or BODY while the client owes us something
        self.waiting_since = 0.0
        self.cut = False
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
        self._disarm()
        super().connection_lost(exc)

    # -- deadlines --------------------------------------------------------------------------------

    def _follow(self) -> None:
        """Arm the deadline of what the connection now waits for from its client, if anything."""
        if self.cut or self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        waiting = HEAD if state is h11.IDLE else BODY if state is h11.SEND_BODY else None
        if waiting == self.waiting_for:
            return  # still the same wait: its deadline stands, however many bytes trickle in
        self._disarm()
        self.waiting_for = waiting
        self._received = False
        if waiting is not None:
            self.waiting_since = self.loop.time()
            timeout = self.limits.header_timeout if waiting == HEAD else self.limits.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        waiting, limit = self.waiting_for, self.limits.header_timeout
        if waiting == BODY:
            limit = self.limits.body_timeout
        log.info("api.slow_client_cut", waiting_for=waiting, limit_seconds=limit)
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
        self._disarm()
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
        others = [c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol) and not c.cut]
        if len(others) < self.limits.max_connections:
            return True
        waiting = [c for c in others if c.waiting_for is not None]
        if waiting:
            oldest = min(waiting, key=lambda c: c.waiting_since)
            log.info("api.connection_evicted", waiting_for=oldest.waiting_for,
                     max_connections=self.limits.max_connections)
            oldest._cut(_answer(503, "Service Unavailable", "too many connections; this one waited longest",
                                {"max_connections": self.limits.max_connections}))
            return True
        log.warning("api.connection_refused", max_connections=self.limits.max_connections)
        self.cut = True
        self.transport.write(_answer(503, "Service Unavailable", "too many connections",
                                     {"max_connections": self.limits.max_connections}))
        self.transport.close()
        return False


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
