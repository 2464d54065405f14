"""``fetch`` of ``file://`` and ``http(s)://`` references: the recorded bytes, or a refusal.

The HTTP side runs a real server on 127.0.0.1 in a thread, whose objects (body and ETag)
a test can replace between recording an entry and fetching it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from soko.core.manifest import Entry
from soko.errors import DigestMismatchError, NotFoundError
from soko.refs.base import handler_for


def entries(uri: str, *, name: str | None = None, checksum: bool = True) -> list[Entry]:
    return handler_for(uri).entries(uri, name=name, checksum=checksum, max_objects=None)


def fetch(entry: Entry) -> bytes:
    out = io.BytesIO()
    assert entry.ref is not None
    handler_for(entry.ref).fetch(entry, out)
    return out.getvalue()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# ----- file:// ------------------------------------------------------------------------


def test_file_fetch_returns_the_recorded_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000  # several read chunks
    source = tmp_path / "weights.bin"
    source.write_bytes(data)

    (entry,) = entries(source.as_uri())

    assert entry.digest == md5_b64(data)
    assert fetch(entry) == data


def test_file_fetch_detects_a_changed_file(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"original")
    (entry,) = entries(source.as_uri())
    source.write_bytes(b"modified")

    out = io.BytesIO()
    with pytest.raises(DigestMismatchError, match="changed"):
        handler_for(source.as_uri()).fetch(entry, out)
    assert out.getvalue() == b""


def test_file_fetch_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"original")
    (entry,) = entries(source.as_uri())
    source.unlink()

    with pytest.raises(NotFoundError):
        fetch(entry)


def test_file_checksum_false_fetches_whatever_is_there(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"original")
    (entry,) = entries(source.as_uri(), checksum=False)
    source.write_bytes(b"modified later")

    assert entry.digest != md5_b64(b"original")
    assert fetch(entry) == b"modified later"


def test_file_directory_entries_each_fetch_their_file(tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "sub/b.bin": b"bravo", "sub/deeper/c": b"charlie"}
    for relative, content in files.items():
        target = tmp_path / "tree" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    found = entries((tmp_path / "tree").as_uri(), name="t")

    assert {e.path: fetch(e) for e in found} == {f"t/{k}": v for k, v in files.items()}


# ----- http(s):// ---------------------------------------------------------------------


@dataclass
class Served:
    """What the test server answers: path -> (body, ETag header or None)."""

    objects: dict[str, tuple[bytes, str | None]] = field(default_factory=dict)
    base_url: str = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@pytest.fixture
def http_server() -> Iterator[Served]:
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = served.objects.get(self.path)
            if found is None:
                self.send_error(404)
                return
            body, etag = found
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if etag is not None:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    served.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_http_entry_uses_the_etag_and_fetch_returns_the_bytes(http_server: Served) -> None:
    data = b"x" * 1_500_000 + b"end"  # more than one read chunk
    http_server.objects["/files/model.bin"] = (data, '"v1-etag"')

    (entry,) = entries(http_server.url("/files/model.bin"))

    assert entry.path == "model.bin"
    assert entry.digest == "v1-etag"
    assert entry.extra == {"etag": '"v1-etag"'}
    assert entry.size == len(data)
    assert fetch(entry) == data


def test_http_fetch_detects_a_changed_etag(http_server: Served) -> None:
    http_server.objects["/a.txt"] = (b"original", '"one"')
    (entry,) = entries(http_server.url("/a.txt"))
    http_server.objects["/a.txt"] = (b"replaced", '"two"')

    out = io.BytesIO()
    with pytest.raises(DigestMismatchError, match="changed"):
        handler_for(entry.ref or "").fetch(entry, out)
    assert out.getvalue() == b""


def test_http_without_etag_is_recorded_by_url_and_fetched_as_is(http_server: Served) -> None:
    http_server.objects["/plain.txt"] = (b"no etag here", None)
    url = http_server.url("/plain.txt")

    (entry,) = entries(url, name="renamed.txt")

    assert (entry.path, entry.digest, entry.ref, entry.size) == ("renamed.txt", url, url, 12)
    http_server.objects["/plain.txt"] = (b"changed, and nothing can tell", None)
    assert fetch(entry) == b"changed, and nothing can tell"


def test_http_checksum_false_fetches_the_current_bytes(http_server: Served) -> None:
    http_server.objects["/a.txt"] = (b"first", '"one"')
    url = http_server.url("/a.txt")
    (entry,) = entries(url, checksum=False)
    assert (entry.digest, entry.ref, entry.size) == (url, url, None)

    http_server.objects["/a.txt"] = (b"second", '"two"')
    assert fetch(entry) == b"second"


def test_http_fetch_of_a_missing_object_is_not_found(http_server: Served) -> None:
    http_server.objects["/a.txt"] = (b"here", '"one"')
    (entry,) = entries(http_server.url("/a.txt"))
    del http_server.objects["/a.txt"]

    with pytest.raises(NotFoundError, match="404"):
        fetch(entry)
