"""An unexpected error in a route, served by a real uvicorn: a well-formed 500, and the
keep-alive connection it came on still serves the next request.

The app is the one :func:`soko.server.app.create_app` builds, with routes that fail added
here (production has no route that fails on purpose), served by uvicorn in a thread with
each of its HTTP implementations.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import Response

from soko.metadata.engine import sqlite_url
from soko.server.app import create_app
from soko.server.config import ServerConfig

pytestmark = pytest.mark.integration


class Failure(RuntimeError):
    """The error the failing routes raise."""


def _fail() -> None:
    raise Failure("a route failed")


def app_with_failing_routes(root: Path) -> FastAPI:
    app = create_app(ServerConfig(db_url=sqlite_url(root / "meta.db"), store_url=str(root / "b")))

    @app.get("/test/fails")
    def fails() -> None:
        _fail()

    @app.post("/test/fails-before-reading")
    def fails_before_reading() -> None:
        _fail()

    @app.get("/test/fails-mid-answer")
    def fails_mid_answer() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            yield b"the first part"
            _fail()

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.get("/test/fails-after-answer")
    def fails_after_answer() -> Response:
        return Response(b"done", background=BackgroundTask(_fail))

    return app


@pytest.fixture(params=["httptools", "h11"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of the app served by uvicorn in a thread (with ``request.param``)."""
    # A socket listening before uvicorn runs: connections made before it accepts wait in
    # the backlog, so no test has to wait for the server to be up.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app_with_failing_routes(tmp_path), http=request.param, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def connection_of(response: httpx.Response) -> object:
    """The client's address of the connection *response* came on (one per connection)."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def one_connection(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, limits=httpx.Limits(max_connections=1), timeout=30.0)


def assert_internal_error(response: httpx.Response) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "internal_error"
    assert "a route failed" not in response.text  # no internals leak
    assert response.headers.get("connection", "").lower() != "close"


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], Failure)]


def test_after_an_unexpected_error_the_connection_serves_the_next_request(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    connections = set()
    with one_connection(server_url) as client:
        for attempt in range(20):
            if attempt % 2 == 0:
                response = client.get("/test/fails")
                assert_internal_error(response)
            else:
                response = client.get("/api/v1/health")
                assert response.status_code == 200
                assert response.json()["status"] == "ok"
            connections.add(connection_of(response))
    assert len(connections) == 1
    assert len(tracebacks(caplog)) == 10  # each failure logged once, with its traceback


def test_a_body_the_failing_route_did_not_read_does_not_spoil_the_connection(
    server_url: str,
) -> None:
    with one_connection(server_url) as client:
        failed = client.post("/test/fails-before-reading", content=b"x" * 300_000)
        assert_internal_error(failed)
        first = connection_of(failed)
        after = client.get("/api/v1/health")
        assert after.status_code == 200
        assert connection_of(after) == first


def test_an_error_after_the_answer_leaves_the_connection_usable(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with one_connection(server_url) as client:
        answered = client.get("/test/fails-after-answer")
        assert answered.status_code == 200
        assert answered.content == b"done"
        first = connection_of(answered)
        after = client.get("/api/v1/health")
        assert after.status_code == 200
        assert connection_of(after) == first
    assert len(tracebacks(caplog)) == 1


def test_an_error_mid_answer_cuts_the_answer_and_closes_the_connection(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with one_connection(server_url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/test/fails-mid-answer")
        after = client.get("/api/v1/health")
        assert after.status_code == 200
    assert len(tracebacks(caplog)) == 1
