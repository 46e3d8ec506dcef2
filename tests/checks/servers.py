"""Real HTTP endpoints on loopback for HTTP checks: a CRM API that answers, and a server that never does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CrmApi:
    """Answers ``routes[path]`` as (status, JSON body); ``/echo...`` answers 500 with the request it got."""

    url: str = ""
    routes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)


@contextmanager
def crm_api() -> Iterator[CrmApi]:
    api = CrmApi(routes={"/health": (200, {"status": "ok", "checks": [{"name": "db", "ok": True}]})})

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen = Seen(self.command, self.path, dict(self.headers.items()), body)
            api.requests.append(seen)
            if self.path.startswith("/echo"):
                status, payload = 500, {"error": "boom", "path": seen.path, "headers": seen.headers,
                                        "body": body.decode()}
            else:
                status, payload = api.routes.get(self.path.split("?")[0], (404, {"error": "not found"}))
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _answer

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for serve_forever to look at its flag again (every 0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback port that completes TCP handshakes (the kernel's backlog) and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


