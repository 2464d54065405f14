"""A webhook receiver on a loopback port, for the tests of automations.

It records every POST (headers and body), and can be told to refuse (answer 503) or to be
down (its socket closed, so a connection is refused) and to come back on the same port.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    arrived_at: float
    """Wall-clock seconds, to compare with the payload's timestamp."""

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def signed_by(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("X-Soko-Signature", ""), expected)


@dataclass
class Receiver:
    received: list[Received] = field(default_factory=list)
    refusing: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.refusing:
                    self.send_response(503)
                    self.end_headers()
                    return
                with receiver._lock:
                    got = Received(dict(self.headers.items()), body, time.time())
                    receiver.received.append(got)
                    receiver._lock.notify_all()
                receiver.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def event_ids(self) -> set[str]:
        with self._lock:
            return {r.headers["X-Soko-Event-Id"] for r in self.received}

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """The requests received once there are *count* distinct events (or the timeout)."""
        with self._lock:
            self._lock.wait_for(
                lambda: len({r.headers["X-Soko-Event-Id"] for r in self.received}) >= count,
                timeout,
            )
            return list(self.received)
