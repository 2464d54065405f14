"""soko's HTTP protocol for uvicorn (:mod:`soko.server.protocol`) under a small ASGI app.

A request body arrives whole and in order however its pieces are cut; a file answered with
``http.response.pathsend`` arrives whole (a large one read past the page cache, a small
one through ``sendfile``), with its length, on a connection that then serves the next
request; HEAD sends no body; a client gone in the middle of a file leaves the server
serving.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import FileResponse, JSONResponse

from soko.server import protocol
from soko.server.protocol import PATHSEND, PROTOCOL, BodyPieces

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


class App:
    """Hashes a PUT's body; answers a GET with the file named by its path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.extensions: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.extensions.append(dict(scope.get("extensions") or {}))
        if scope["method"] == "PUT":
            digest, pieces, more = hashlib.sha256(), 0, True
            while more:
                message = await receive()
                assert type(message["body"]) is bytes
                digest.update(message["body"])
                pieces += 1
                more = message.get("more_body", False)
            answer = {"sha256": digest.hexdigest(), "messages": pieces}
            await JSONResponse(answer)(scope, receive, send)
            return
        await FileResponse(self.folder / scope["path"].lstrip("/"))(scope, receive, send)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, App]]:
    import uvicorn

    app = App(tmp_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=PROTOCOL, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_body_pieces_hand_a_lone_piece_on_uncopied() -> None:
    pieces = BodyPieces()
    piece = os.urandom(1000)
    pieces.append(piece)
    assert bytes(pieces) is piece
    pieces.append(b"tail")
    assert bytes(pieces) == piece + b"tail" and len(pieces) == 1004


def test_a_body_arrives_whole_however_it_is_cut(served: tuple[str, App]) -> None:
    url, _ = served
    data = os.urandom(3 * MiB + 17)

    def cut() -> Iterator[bytes]:
        sizes = [1, 100, 65536, 7, 300_000]
        at = turn = 0
        while at < len(data):
            size = sizes[turn % len(sizes)]
            yield data[at : at + size]
            at, turn = at + size, turn + 1

    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.put("/up", content=cut(), headers={"Content-Length": str(len(data))})
        small = client.put("/up", content=b"abc")
    assert answer.status_code == 200
    assert answer.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert small.json() == {"sha256": hashlib.sha256(b"abc").hexdigest(), "messages": 1}


@pytest.mark.parametrize("size", [5 * MiB + 3, 2 * MiB + 4096])
def test_a_file_is_sent_by_the_server(
    served: tuple[str, App], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    url, app = served
    # From 4 MiB on past the page cache (64 MiB in the server), a chunk of 1 MiB: the
    # larger file takes that path over several chunks, the smaller one sendfile.
    monkeypatch.setattr(protocol, "DIRECT_READ_MIN", 4 * MiB)
    monkeypatch.setattr(protocol, "FILE_CHUNK", MiB)
    data = os.urandom(size)
    (tmp_path / "blob.bin").write_bytes(data)
    with httpx.Client(base_url=url, timeout=60) as client:
        whole = client.get("/blob.bin")
        head = client.head("/blob.bin")
        again = client.get("/blob.bin")  # the same connection, once the answer ended
    assert PATHSEND in app.extensions[0]
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-length"] == str(size)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size)
    assert again.content == data


def test_a_client_gone_mid_file_leaves_the_server_serving(
    served: tuple[str, App], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = served
    monkeypatch.setattr(protocol, "DIRECT_READ_MIN", MiB)
    monkeypatch.setattr(protocol, "FILE_CHUNK", MiB)
    (tmp_path / "big.bin").write_bytes(os.urandom(48 * MiB))
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # Closed after a part: the server's sending thread meets a closed connection.
    (tmp_path / "small.bin").write_bytes(b"still here")
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/small.bin").content == b"still here"


def test_a_file_sent_by_the_server_counts_as_bytes_out(tmp_path: Path) -> None:
    import anyio

    from soko.server.observe import Metrics, Observe

    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(1234))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": PATHSEND, "path": str(path)})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    metrics = Metrics()
    scope = {"type": "http", "method": "GET", "path": "/blob.bin", "extensions": {PATHSEND: {}}}
    anyio.run(Observe(app, metrics=metrics), scope, receive, send)
    assert [m["type"] for m in messages] == ["http.response.start", PATHSEND]
    labels = {"method": "GET", "route": "unmatched"}
    assert metrics.registry.get_sample_value("soko_http_sent_bytes_total", labels) == 1234
