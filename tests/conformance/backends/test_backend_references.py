"""References on every backend: ``file://`` and ``http://`` entries are logged without their
bytes, fetched from their source on download and checked against what was recorded."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from backend_suite import Backend, files_below, write

import soko
from soko.errors import DigestMismatchError


def test_file_references_are_downloaded_and_checked(backend: Backend) -> None:
    mount = Path("mount").resolve()
    write(mount / "data/x.csv", "1,2,3\n")
    write(mount / "data/sub/y.csv", "4,5,6\n")
    write(mount / "single.bin", b"\x01\x02")

    with soko.init() as run:
        artifact = soko.Artifact("refs", "dataset")
        artifact.add_reference(f"file://{mount}/data", name="tables")
        artifact.add_reference(f"file://{mount}/single.bin")
        run.log_artifact(artifact)

    logged = soko.Api().artifact("refs:latest")
    assert {e.path: e.ref for e in logged.manifest} == {
        "tables/x.csv": f"file://{mount}/data/x.csv",
        "tables/sub/y.csv": f"file://{mount}/data/sub/y.csv",
        "single.bin": f"file://{mount}/single.bin",
    }
    assert files_below(logged.download(root="root")) == {
        "tables/x.csv": b"1,2,3\n",
        "tables/sub/y.csv": b"4,5,6\n",
        "single.bin": b"\x01\x02",
    }

    write(mount / "data/sub/y.csv", "changed")
    with pytest.raises(DigestMismatchError, match=r"y\.csv"):
        soko.Api().artifact("refs:latest").download(root="root2")
    assert not Path("root2/tables/sub/y.csv").exists()
    soko.Api().artifact("refs:latest").download(root="root3", allow_missing_references=True)
    assert files_below("root3") == {"tables/x.csv": b"1,2,3\n", "single.bin": b"\x01\x02"}


class _Objects(BaseHTTPRequestHandler):
    """Serves ``objects`` (path -> bytes) with an ETag of their MD5, as a bucket would."""

    objects: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.objects.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_objects() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An HTTP server on a loopback port: (its URL, the objects it serves, editable)."""
    objects: dict[str, bytes] = {}
    handler = type("Handler", (_Objects,), {"objects": objects})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", objects
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_references_are_downloaded_and_checked(
    backend: Backend, http_objects: tuple[str, dict[str, bytes]]
) -> None:
    url, objects = http_objects
    objects["/files/model.bin"] = b"\x00weights" * 1000
    objects["/files/labels.txt"] = b"cat\ndog\n"

    with soko.init() as run:
        artifact = soko.Artifact("web", "dataset")
        artifact.add_reference(f"{url}/files/model.bin")
        artifact.add_reference(f"{url}/files/labels.txt", name="meta/labels.txt")
        run.log_artifact(artifact)

    logged = soko.Api().artifact("web:latest")
    entry = logged.get_entry("model.bin")
    assert (entry.ref, entry.digest, entry.size) == (
        f"{url}/files/model.bin",
        hashlib.md5(objects["/files/model.bin"]).hexdigest(),
        8000,
    )
    assert files_below(logged.download(root="root")) == {
        "model.bin": objects["/files/model.bin"],
        "meta/labels.txt": b"cat\ndog\n",
    }

    objects["/files/labels.txt"] = b"cat\ndog\nbird\n"  # a new ETag
    with pytest.raises(DigestMismatchError, match=r"labels\.txt"):
        soko.Api().artifact("web:latest").download(root="root2")
    assert not Path("root2/meta/labels.txt").exists()
