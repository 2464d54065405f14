"""The server's framed batch answer (``POST /versions/{id}/blobs/batch``).

A batch is checked against the sizes the store holds, never against the manifest's: a
manifest that understates a blob's size (built here with the service layer, as the commit
route would refuse it) gets a 4xx before any byte is read, and the server's memory does not
grow with what it would have read. An honest batch streams within the stated bound. A blob
that vanishes (or grows) between the check and its read cuts the answer off: the client
sees a broken transfer, never a frame whose header lies, and then the JSON error.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_fixtures
from server_fixtures import ServerUnderTest, SokoServer, unique_project

import soko
from soko.client import connect
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest
from soko.core.requests import CommitRequest
from soko.errors import CorruptBlobError
from soko.server.config import ServerConfig
from soko.service.commit import commit_version
from soko.service.store import Store
from soko.storage.local import LocalBlobStore
from soko.storage.packs import SizedReads
from soko.wire.base import format_digest
from soko.wire.framing import BATCH_BLOB_LIMIT, FrameReader

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database
cloud_server = server_fixtures.cloud_server
any_server = server_fixtures.any_server

MiB = 1024 * 1024
ENTITY = "local"
GROWTH_LIMIT = 32 * MiB
"""What a batch request may add to the server's peak memory in these tests: the bound
docs/server.md states (16 MiB of blobs, a few megabytes on their way out), with room for
the allocator; reading a 60 MiB batch whole, as the server once did, takes twice that."""


# ----- helpers ----------------------------------------------------------------------------


def server_store(kind: str, server: ServerUnderTest, request: pytest.FixtureRequest) -> Store:
    """The store *server* serves, opened in this process, to build versions behind its back."""
    if kind == "folder":
        root = server.server.log_path.parent
        return Store.open(f"sqlite:///{root / 'meta.db'}", LocalBlobStore(root / "blobs"))
    from soko.storage.s3 import S3BlobStore

    blobs = server.blobs
    assert isinstance(blobs, server_fixtures.BucketBlobs)
    bucket_store = S3BlobStore(blobs.bucket, blobs.prefix, client=blobs.client)
    return Store.open(request.getfixturevalue("pg_database"), bucket_store)


def store_blob(store: Store, data: bytes) -> Digest:
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    store.blobs.put_bytes(digest, data)
    return digest


def commit(store: Store, project: str, files: dict[str, tuple[Digest, int]]) -> str:
    """A version naming *files* ``{path: (digest, size the manifest gives)}``; its id."""
    entries = [
        Entry(path, digest.b64, size, extra={ALG_EXTRA_KEY: Algorithm.XXH128.value})
        for path, (digest, size) in files.items()
    ]
    request = CommitRequest(
        entity=ENTITY,
        project=project,
        name="batch",
        type="dataset",
        manifest=Manifest.of(entries, Algorithm.XXH128),
    )
    return commit_version(store, request).id


def ask_batch(api: httpx.Client, version_id: str, digests: list[Digest]) -> httpx.Response:
    body = {"digests": [format_digest(d) for d in digests]}
    return api.post(f"/versions/{version_id}/blobs/batch", json=body)


def read_frames(body: bytes) -> dict[Digest, bytes]:
    reader = FrameReader()
    frames = dict(reader.feed(body))
    reader.close()
    return frames


def status_line(pid: int, field: str) -> int:
    """A memory figure of process *pid* from ``/proc/<pid>/status``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@dataclass
class MemoryProbe:
    """The growth of a process's peak resident memory over one step."""

    pid: int

    def start(self) -> None:
        # Writing 5 to clear_refs resets the peak (VmHWM) to the current resident size, so
        # each step is measured on its own, whatever earlier steps peaked at.
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.baseline = status_line(self.pid, "VmRSS")

    def growth(self) -> int:
        return status_line(self.pid, "VmHWM") - self.baseline


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SokoServer]:
    """A folder server of its own, so that no other test's requests move its memory."""
    root = tmp_path_factory.mktemp("soko-batch-server")
    server = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
    try:
        yield server
    finally:
        server.stop()


def own_store(server: SokoServer) -> Store:
    root = server.log_path.parent
    return Store.open(f"sqlite:///{root / 'meta.db'}", LocalBlobStore(root / "blobs"))


# ----- the check -------------------------------------------------------------------------


def test_a_batch_is_checked_against_the_stored_sizes_before_the_answer_starts(
    any_server: ServerUnderTest, request: pytest.FixtureRequest
) -> None:
    store = server_store(any_server.kind, any_server, request)
    big = store_blob(store, os.urandom(BATCH_BLOB_LIMIT + 1))
    small_data = b"an honest small blob"
    small = store_blob(store, small_data)
    gone = store_blob(store, os.urandom(4000))
    files = {"big.bin": (big, 1), "small.txt": (small, len(small_data)), "gone": (gone, 4000)}
    version = commit(store, unique_project(), files)
    any_server.blobs.delete(gone)
    with any_server.server.client() as api:
        lying = ask_batch(api, version, [big, small])
        honest = ask_batch(api, version, [small])
        twice = ask_batch(api, version, [small, small])
        missing = ask_batch(api, version, [small, gone])

    assert lying.status_code == 400, lying.headers["content-type"]
    assert lying.json()["error"]["code"] == "validation_error"
    assert format_digest(big) in lying.json()["error"]["message"]
    assert honest.status_code == 200
    assert read_frames(honest.content) == {small: small_data}
    assert twice.status_code == 400
    assert "names each blob once" in twice.json()["error"]["message"]
    assert missing.status_code == 500
    assert missing.json()["error"]["code"] == "corrupt_blob"
    assert "missing from the store" in missing.json()["error"]["message"]


# ----- memory ----------------------------------------------------------------------------


def test_a_lying_manifest_cannot_make_the_server_read_what_it_hides(
    own_server: SokoServer,
) -> None:
    store = own_store(own_server)
    big = store_blob(store, os.urandom(64 * MiB))
    # Each under the per-blob limit, together over the batch's 64 MiB.
    parts = [store_blob(store, os.urandom(14 * MiB)) for _ in range(5)]
    files = {"big.bin": (big, 1)} | {f"part-{i}": (d, 1) for i, d in enumerate(parts)}
    version = commit(store, unique_project(), files)
    probe = MemoryProbe(own_server.process.pid)
    with own_server.client() as api:
        assert ask_batch(api, version, []).status_code == 200  # the route's first use

        for digests in ([big] * 8, [big], parts):  # 512, 64 and 70 MiB by the store
            probe.start()
            answer = ask_batch(api, version, digests)
            assert 400 <= answer.status_code < 500, answer.headers["content-type"]
            assert answer.json()["error"]["code"] == "validation_error"
            assert probe.growth() < GROWTH_LIMIT, f"{probe.growth() / MiB:.0f} MiB"


def test_an_honest_batch_streams_within_the_memory_bound(own_server: SokoServer) -> None:
    store = own_store(own_server)
    contents = [os.urandom(15 * MiB) for _ in range(4)]  # 60 MiB: a batch may carry 64
    digests = [store_blob(store, data) for data in contents]
    files = {f"f{i}": (d, 15 * MiB) for i, d in enumerate(digests)}
    version = commit(store, unique_project(), files)
    probe = MemoryProbe(own_server.process.pid)
    reader = FrameReader()
    received: dict[Digest, bytes] = {}
    with own_server.client() as api:
        probe.start()
        body = {"digests": [format_digest(d) for d in digests]}
        with api.stream("POST", f"/versions/{version}/blobs/batch", json=body) as answer:
            assert answer.status_code == 200
            for chunk in answer.iter_bytes():
                received.update(reader.feed(chunk))
    reader.close()
    assert received == dict(zip(digests, contents, strict=True))
    assert probe.growth() < GROWTH_LIMIT, f"{probe.growth() / MiB:.0f} MiB"


# ----- a blob that changes between the check and the read ------------------------------


class ChangingBlobs(LocalBlobStore):
    """A folder store that, once armed, removes or rewrites one blob right after a batch's
    sizes were checked: what garbage collection or a damaged disk might do at that moment."""

    victim: Digest | None = None
    change: str = "gone"

    def sized_reads(self, digests: Any) -> SizedReads:
        wanted = list(digests)
        found = super().sized_reads(wanted)
        victim = self.victim
        if victim is not None and victim in wanted:
            self.victim = None
            path = self.local_path(victim)
            assert path is not None
            if self.change == "gone":
                os.unlink(path)
            else:
                os.chmod(path, 0o644)
                with open(path, "ab") as grown:
                    grown.write(b"more")
        return found


@dataclass
class InProcessServer:
    url: str
    admin_key: str
    blobs: ChangingBlobs
    store: Store


@pytest.fixture
def in_process_server(tmp_path: Path) -> Iterator[InProcessServer]:
    """A server app in a thread of this process, on a store the test can change mid-answer."""
    import uvicorn

    from soko.server.app import create_app
    from soko.server.auth import bootstrap_admin

    db_url = f"sqlite:///{tmp_path / 'meta.db'}"
    blobs = ChangingBlobs(tmp_path / "blobs")
    store = Store.open(db_url, blobs)
    key = "soko_test_in_process_admin_key_0123456789"
    bootstrap_admin(store.engine, env_key=key)
    app = create_app(ServerConfig(db_url=db_url, store_url=str(tmp_path / "blobs")), store=store)
    # The socket listens before the thread starts: no waiting for the server to come up.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield InProcessServer(f"http://127.0.0.1:{port}", key, blobs, store)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.mark.parametrize("change", ["gone", "grown"])
def test_a_blob_changed_mid_answer_cuts_the_answer_off(
    in_process_server: InProcessServer, change: str
) -> None:
    served = in_process_server
    first_data, victim_data = os.urandom(900 * 1024), os.urandom(2000)
    first, victim = store_blob(served.store, first_data), store_blob(served.store, victim_data)
    version = commit(
        served.store, unique_project(), {"a": (first, 900 * 1024), "v": (victim, 2000)}
    )
    served.blobs.victim, served.blobs.change = victim, change

    reader = FrameReader()
    received: list[tuple[Digest, bytes]] = []
    headers = {"Authorization": f"Bearer {served.admin_key}"}
    with httpx.Client(base_url=f"{served.url}/api/v1", headers=headers) as api:
        body = {"digests": [format_digest(first), format_digest(victim)]}
        with api.stream("POST", f"/versions/{version}/blobs/batch", json=body) as answer:
            assert answer.status_code == 200  # the check passed; the answer had started
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in answer.iter_bytes():
                    received.extend(reader.feed(chunk))
    # What came before the cut is whole and right; nothing of the changed blob came.
    assert received == [(first, first_data)]


def test_a_client_sees_a_cut_off_answer_as_an_error_and_writes_nothing(
    in_process_server: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = in_process_server
    project = unique_project()
    first, victim = (
        store_blob(served.store, os.urandom(900 * 1024)),
        store_blob(served.store, os.urandom(2000)),
    )
    commit(served.store, project, {"a.bin": (first, 900 * 1024), "v.bin": (victim, 2000)})
    served.blobs.victim = victim
    monkeypatch.setenv("SOKO_DIR", str(tmp_path / "client-soko"))
    monkeypatch.setenv("SOKO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOKO_BASE_URL", served.url)
    monkeypatch.setenv("SOKO_API_KEY", served.admin_key)
    connect.reset()
    try:
        artifact = soko.Api().artifact(f"{ENTITY}/{project}/batch:v0")
        with pytest.raises(CorruptBlobError, match="missing from the store"):
            artifact.download(str(tmp_path / "out"))
    finally:
        connect.reset()
    assert served.blobs.victim is None  # the answer was cut, and the retry got the error
    assert not (tmp_path / "out" / "a.bin").exists()
    assert not (tmp_path / "out" / "v.bin").exists()


# ----- a large blob, read past the page cache -----------------------------------------


def test_a_large_blob_streams_whole_and_a_range_of_it_still_answers(
    in_process_server: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soko.server.routes import downloads

    # From 1 MiB on here (64 MiB in the server), so that a cheap blob takes that path.
    monkeypatch.setattr(downloads, "_DIRECT_MIN", MiB)
    opened: list[str] = []

    class Reader(downloads.DirectReader):
        def __init__(self, path: str, **sizes: int) -> None:
            opened.append(path)
            super().__init__(path, **sizes)

    monkeypatch.setattr(downloads, "DirectReader", Reader)
    served = in_process_server
    data = os.urandom(2 * 8 * MiB + 3 * 4096 + 5)
    digest = store_blob(served.store, data)
    version = commit(served.store, unique_project(), {"big.bin": (digest, len(data))})
    headers = {"Authorization": f"Bearer {served.admin_key}"}
    path = f"/versions/{version}/blobs/xxh128/{digest.hex}"
    with httpx.Client(base_url=f"{served.url}/api/v1", headers=headers) as api:
        whole = api.get(path)
        part = api.get(path, headers={"Range": "bytes=10-19"})
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(len(data))
    assert whole.content == data
    assert part.status_code == 206 and part.content == data[10:20]
    assert len(opened) == 1  # the whole blob was read directly; the range was not
