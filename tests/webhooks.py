"""A notification receiver on loopback: a real HTTP server that keeps every JSON body posted to it.

Used by the notifier and daemon tests (``tests/test_notify*.py``, ``tests/test_moved_tags.py``,
``tests/checks/``) as the webhook target of ``[[notify.webhooks]]``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """What was delivered to ``url``, in the order it arrived; the first ``fail_first`` attempts get 503."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0
    attempts: int = 0

    def events(self) -> list[tuple[str, str | None]]:
        return [(b["event"], b.get("revision")) for b in list(self.bodies)]

    def blocked(self, gate: str) -> list[dict[str, Any]]:
        return [b for b in list(self.bodies) if b["event"] == "blocked" and b.get("gate") == gate]


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A webhook receiver on loopback that answers 204 (503 while failing) and keeps what it was sent."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.attempts += 1
            if state.attempts <= state.fail_first:
                self.send_response(503)
                self.end_headers()
                return
            state.bodies.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    # shutdown() waits for serve_forever to look at its flag again: every 0.5 s by default, half a second
    # of teardown for every test.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
