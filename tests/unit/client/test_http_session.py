"""Retries of a dropped connection: an idempotent request is sent again on a fresh
connection; a non-idempotent one is not, once it may have reached the server. A busy
server's Retry-After sets the wait before the next attempt."""

from __future__ import annotations

import email.utils
import socket
import struct
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from soko.client import http_session
from soko.client.http_session import ApiSession
from soko.errors import StoreError

_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


class FlakyServer:
    """A loopback HTTP server whose first connection fails as *failure* says (after reading
    the request) and whose later connections answer ``{"ok": true}``."""

    def __init__(self, failure: str) -> None:
        self.failure = failure
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # stop() shut the listener down
                return
            with conn:
                self._handle(conn, first=not self.requests)

    def _handle(self, conn: socket.socket, *, first: bool) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                return
            received += chunk
        self.requests.append(received.split(b"\r\n", 1)[0])
        if not first:
            conn.sendall(_ANSWER)
        elif self.failure == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif self.failure == "cut":
            conn.sendall(_ANSWER[:-4])
        elif self.failure.startswith("busy"):  # "busy:<Retry-After value>"
            after = self.failure.split(":", 1)[1]
            conn.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                + f"Retry-After: {after}\r\nConnection: close\r\n\r\n".encode()
            )
        # "drop": closed without a word

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=10)


@pytest.fixture(params=["drop", "reset", "cut"])
def flaky(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyServer]:
    monkeypatch.setattr(http_session, "backoff", lambda attempt: 0.0)
    server = FlakyServer(request.param)
    yield server
    server.stop()


def test_an_idempotent_request_is_sent_again_on_a_fresh_connection(flaky: FlakyServer) -> None:
    session = ApiSession(flaky.url, api_key="k", timeout=10.0)
    try:
        assert session.json("GET", "/things") == {"ok": True}
    finally:
        session.close()
    assert flaky.requests == [b"GET /api/v1/things HTTP/1.1"] * 2


def test_a_non_idempotent_request_that_may_have_arrived_is_not_sent_again(
    flaky: FlakyServer,
) -> None:
    session = ApiSession(flaky.url, api_key="k", timeout=10.0)
    try:
        with pytest.raises(StoreError, match="did not answer"):
            session.call("DELETE", "/things/1", idempotent=False)
    finally:
        session.close()
    assert flaky.requests == [b"DELETE /api/v1/things/1 HTTP/1.1"]


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("3600", 60.0), ("soon", None)])
def test_a_busy_server_is_asked_again_after_its_retry_after(
    monkeypatch: pytest.MonkeyPatch, header: str, expected: float | None
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(http_session, "_sleep", waits.append)
    monkeypatch.setattr(http_session, "backoff", lambda attempt: 0.5)
    server = FlakyServer(f"busy:{header}")
    session = ApiSession(server.url, api_key="k", timeout=10.0)
    try:
        assert session.json("GET", "/things") == {"ok": True}
    finally:
        session.close()
        server.stop()
    assert server.requests == [b"GET /api/v1/things HTTP/1.1"] * 2
    # Capped at a minute; one that cannot be read leaves the usual back-off.
    assert waits == [expected if expected is not None else 0.5]


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    response = httpx.Response(503, headers={"Retry-After": later})
    seconds = http_session.retry_after(response)
    assert seconds is not None and 25 <= seconds <= 30
    assert http_session.retry_after(httpx.Response(503)) is None
