"""A real ``soko server`` on a loopback port (SQLite + a folder, PostgreSQL + S3): what
only a server does.

The SDK behaviour every backend shares is the backend conformance suite's
(``tests/conformance/backends/``). Here: the API without the SDK (bad requests get 4xx
with a JSON body naming the problem, never a 500; blob uploads are verified); downloads
through the client's verified cache (packs, copies, clones, ``skip_cache`` past it);
corrupt bytes from the store refused; incremental logs that upload only what is missing;
nothing sent to the server before a log.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_fixtures
from server_fixtures import ServerEnv, ServerUnderTest, unique_project

import soko
from soko.client import connect, http_download
from soko.client.cache import BlobCache
from soko.client.http import HttpBackend
from soko.client.statcache import STAT_CACHE_FILE, StatCache
from soko.core.digests import Digest
from soko.errors import CorruptBlobError, DigestMismatchError
from soko.storage import copying
from soko.storage.base import blob_key
from soko.wire.framing import MEDIA_TYPE, frame_header

pytestmark = pytest.mark.integration

# The fixtures this module uses (pytest finds fixtures by name in the module's globals).
soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database
cloud_server = server_fixtures.cloud_server
any_server = server_fixtures.any_server
server_env = server_fixtures.any_server_env


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def read_tree(root: str | Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root).replace(os.sep, "/")] = Path(full).read_bytes()
    return found


def sample_files() -> dict[str, bytes]:
    files = {f"small/{i:03d}.txt": f"file number {i}\n".encode() for i in range(40)}
    files["big/weights.bin"] = os.urandom(3 * 1024 * 1024 + 17)  # travels alone, not batched
    files["empty.txt"] = b""
    return files


def log_folder(project: str, name: str, folder: Path, **kwargs: Any) -> soko.Artifact:
    with soko.init(project=project) as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact, **kwargs)
        artifact.wait()
    return artifact


def blob_digest(artifact: soko.Artifact, path: str) -> Digest:
    entry = artifact.manifest.get(path)
    assert entry is not None
    return entry.blob_digest()


# ----- the API without the SDK -----------------------------------------------------------

# Uploads and the missing-blob question are made for a project.
OWNER = {"entity": "local", "project": "raw-api"}


def test_health_answers_without_a_key(any_server: ServerUnderTest) -> None:
    answer = httpx.get(f"{any_server.server.url}/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["api"] == "v1"


def test_openapi_schema_lists_the_versioned_api(any_server: ServerUnderTest) -> None:
    schema = httpx.get(f"{any_server.server.url}/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/health", "/api/v1/versions", "/api/v1/blobs/missing"} <= paths
    assert all(p.startswith("/api/v1/") for p in paths)


def test_no_key_is_401_with_the_error_code(any_server: ServerUnderTest) -> None:
    answer = httpx.get(f"{any_server.server.url}/api/v1/projects")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    wrong = httpx.get(
        f"{any_server.server.url}/api/v1/projects", headers={"Authorization": "Bearer soko_nope"}
    )
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (
            b'{"entity": "e", "project": "p", "digests": [], "colour": 1}',
            422,
            "unknown field 'colour'",
        ),
        (b'{"entity": "e", "project": "p", "digests": "md5:00"}', 422, "digests"),
        (b'{"entity": "e", "project": "p", "digests": ["nonsense"]}', 400, "Not a blob digest"),
        (b'{"digests": []}', 422, "missing field 'entity'"),
        (b"[]", 422, "body"),
    ],
)
def test_bad_requests_are_4xx_with_a_clear_message(
    any_server: ServerUnderTest, body: bytes, status: int, needle: str
) -> None:
    with any_server.server.client() as api:
        answer = api.post(
            "/blobs/missing", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert needle in error["message"]


def test_oversize_bodies_are_413(any_server: ServerUnderTest) -> None:
    huge = b'{"digests": [' + b'"md5:00",' * (2 * 1024 * 1024) + b'"md5:00"]}'
    with any_server.server.client() as api:
        declared = api.post(
            "/blobs/missing", content=huge, headers={"Content-Type": "application/json"}
        )

        def chunks() -> Any:
            for start in range(0, len(huge), 1 << 20):
                yield huge[start : start + (1 << 20)]

        streamed = api.post(
            "/blobs/missing", content=chunks(), headers={"Content-Type": "application/json"}
        )
    for answer in (declared, streamed):
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "payload_too_large"


def test_unknown_routes_and_methods_are_json_4xx(any_server: ServerUnderTest) -> None:
    with any_server.server.client() as api:
        missing = api.get("/no/such/thing")
        wrong_method = api.delete("/blobs/missing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_a_batch_with_wrong_bytes_stores_nothing(any_server: ServerUnderTest) -> None:
    claimed = Digest.of_bytes(b"the real content")
    body = frame_header(claimed, 5) + b"wrong"
    with any_server.server.client() as api:
        answer = api.post(
            "/blobs/batch", params=OWNER, content=body, headers={"Content-Type": MEDIA_TYPE}
        )
        missing = api.post("/blobs/missing", json={**OWNER, "digests": [str(claimed)]}).json()
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "digest_mismatch"
    assert missing["missing"] == [str(claimed)]


def test_a_truncated_batch_is_refused(any_server: ServerUnderTest) -> None:
    digest = Digest.of_bytes(b"hello")
    with any_server.server.client() as api:
        answer = api.post(
            "/blobs/batch",
            params=OWNER,
            content=frame_header(digest, 5) + b"hel",
            headers={"Content-Type": MEDIA_TYPE},
        )
    assert answer.status_code == 400
    assert "Truncated" in answer.json()["error"]["message"]


# Past two whole 8 MiB chunks, which a folder store writes past the page cache, and a tail.
DIRECT_SIZE = 2 * copying.CHUNK + 3 * 4096 + 5


@pytest.mark.parametrize("size", [100, DIRECT_SIZE], ids=["small", "direct-chunks"])
def test_a_single_blob_put_with_wrong_bytes_is_refused(
    any_server: ServerUnderTest, size: int
) -> None:
    claimed = Digest.of_bytes(b"x" * size)
    with any_server.server.client() as api:
        answer = api.put(f"/blobs/md5/{claimed.hex}", params=OWNER, content=b"x" * (size - 1))
        missing = api.post("/blobs/missing", json={**OWNER, "digests": [str(claimed)]}).json()
    assert answer.status_code == 422
    assert missing["missing"] == [str(claimed)]


@pytest.mark.parametrize(
    "size",
    [100, 5 * 1024 * 1024 + 3, DIRECT_SIZE],
    ids=["small", "several-groups", "direct-chunks"],
)
def test_a_single_blob_put_streams_and_a_stored_one_is_verified_again(
    any_server: ServerUnderTest, size: int
) -> None:
    data = os.urandom(size)
    digest = Digest.of_bytes(data)
    target = f"/blobs/md5/{digest.hex}"
    with any_server.server.client() as api:
        first = api.put(target, params=OWNER, content=data)
        # Stored already: the body is hashed all the same (an upload proves that the
        # project holds the blob), and the connection stays usable (one keep-alive
        # connection for the client).
        again = api.put(target, params=OWNER, content=iter([data[: size // 2], data[size // 2 :]]))
        wrong = api.put(target, params=OWNER, content=bytes([data[0] ^ 0xFF]) + data[1:])
        after = api.post("/blobs/missing", json={**OWNER, "digests": [str(digest)]})
    assert first.status_code == 200 and first.json() == {"stored": 1, "bytes": size}
    assert again.status_code == 200 and again.json()["bytes"] == size
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "digest_mismatch"
    assert after.status_code == 200 and after.json()["missing"] == []
    assert any_server.blobs.read(digest) == data


# ----- the SDK through the server ---------------------------------------------------------


def test_adding_sends_nothing_and_a_file_changed_before_the_log_fails_it(
    server_env: ServerEnv, tmp_path: Path
) -> None:
    # A server is written to by a log only: the draft hashes (the embedded store would
    # take the bytes at add time), and log_artifact captures what the server lacks. The
    # file is larger than what a draft keeps in memory, so the log reads it again.
    project = unique_project()
    data = tmp_path / "model.bin"
    data.write_bytes(b"a" * 300_000)
    artifact = soko.Artifact("late", "model")
    artifact.add_file(str(data))
    backend = connect.get_backend()
    digest = artifact.manifest.get("model.bin").blob_digest()  # type: ignore[union-attr]
    assert backend.missing_blobs([digest], entity="local", project=project) == {digest}
    data.write_bytes(b"b" * 300_000)
    with soko.init(project=project) as run, pytest.raises(soko.errors.DigestMismatchError):
        run.log_artifact(artifact)


def _link_mode(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("SOKO_LINK", mode)
    connect.reset()


def _record_fetches(monkeypatch: pytest.MonkeyPatch) -> list[Digest]:
    """The digests downloads of this test find neither cached nor copied (fetched)."""
    fetched: list[Digest] = []
    original = http_download.BlobDownloads._plan

    def recording(self: http_download.BlobDownloads, digests: list[Digest]) -> Any:
        fetched.extend(digests)
        return original(self, digests)

    monkeypatch.setattr(http_download.BlobDownloads, "_plan", recording)
    return fetched


@pytest.mark.parametrize(
    ("link", "cache_large"), [("copy", "auto"), ("reflink", "auto"), ("auto", "always")]
)
def test_downloads_come_from_the_cache_once_fetched(
    server_env: ServerEnv,
    any_server: ServerUnderTest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    link: str,
    cache_large: str,
) -> None:
    monkeypatch.setenv("SOKO_CACHE_LARGE", cache_large)
    _link_mode(monkeypatch, link)
    project = unique_project()
    files = {"a.txt": b"alpha", "b.bin": os.urandom(2 * 1024 * 1024)}
    folder = write_files(tmp_path / "data", files)
    log_folder(project, "cached", folder)
    artifact = soko.Api().artifact(f"{project}/cached:latest")
    first = artifact.download(str(tmp_path / "first"))

    # Every blob is on this machine now, verified: remove them from the server's store and
    # a second download into another root still works.
    digests = [blob_digest(artifact, path) for path in files]
    for digest in digests:
        any_server.blobs.delete(digest)
    second = soko.Api().artifact(f"{project}/cached:latest").download(str(tmp_path / "second"))
    assert read_tree(second) == files
    cache = BlobCache(server_env.cache)
    small, large = digests
    # The small blob came in a batch and is packed.
    assert dict(cache.read_packed([small])) == {small: files["a.txt"]}
    stats = StatCache(server_env.cache / STAT_CACHE_FILE)
    if link == "reflink" or cache_large == "always":
        # The large one is a file of its own in the cache, cloned (or copied) into roots.
        assert (server_env.cache / blob_key(large)).read_bytes() == files["b.bin"]
        assert stats.copies([large]) == {}
    else:
        # Written once, into the first root, which the second download copied from.
        assert not (server_env.cache / blob_key(large)).exists()
        assert sorted(stats.copies([large])[large]) == sorted(
            [os.path.join(first, "b.bin"), os.path.join(second, "b.bin")]
        )
    assert Digest.of_bytes(files["b.bin"], large.algorithm) == large


@pytest.mark.parametrize("clones", [True, False])
def test_by_default_a_large_blob_goes_through_the_cache_only_where_it_clones(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clones: bool
) -> None:
    project = unique_project()
    files = {"model.bin": os.urandom(3 * 1024 * 1024)}
    log_folder(project, "model", write_files(tmp_path / "data", files))
    asked: list[tuple[str, str]] = []

    def probe(src: str, dest: str) -> bool:
        asked.append((src, dest))
        return clones

    monkeypatch.setattr(http_download, "clones_between", probe)
    artifact = soko.Api().artifact(f"{project}/model:latest")
    root = artifact.download(str(tmp_path / "out"))

    assert read_tree(root) == files
    assert asked == [(os.path.join(server_env.cache, "tmp"), root)]
    digest = blob_digest(artifact, "model.bin")
    assert (server_env.cache / blob_key(digest)).exists() is clones
    copies = StatCache(server_env.cache / STAT_CACHE_FILE).copies([digest])
    assert copies == ({} if clones else {digest: [os.path.join(root, "model.bin")]})


def test_roots_linking_to_the_cache_get_its_file_even_from_a_copy(
    server_env: ServerEnv,
    any_server: ServerUnderTest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _link_mode(monkeypatch, "copy")
    project = unique_project()
    files = {"model.bin": os.urandom(2 * 1024 * 1024)}
    log_folder(project, "linked", write_files(tmp_path / "data", files))
    artifact = soko.Api().artifact(f"{project}/linked:latest")
    first = Path(artifact.download(str(tmp_path / "first")))
    digest = blob_digest(artifact, "model.bin")
    any_server.blobs.delete(digest)  # what follows comes from this machine

    _link_mode(monkeypatch, "hardlink")
    second = Path(soko.Api().artifact(f"{project}/linked:latest").download(str(tmp_path / "l")))

    assert read_tree(second) == files
    cached = os.stat(server_env.cache / blob_key(digest))
    linked = os.stat(second / "model.bin")
    assert (linked.st_ino, linked.st_dev) == (cached.st_ino, cached.st_dev)
    # The user's first copy is not linked to anything.
    assert os.stat(first / "model.bin").st_nlink == 1
    assert os.stat(first / "model.bin").st_ino != cached.st_ino


def test_a_killed_download_s_temp_file_is_removed_by_the_next(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _link_mode(monkeypatch, "copy")
    project = unique_project()
    files = {"model.bin": os.urandom(2 * 1024 * 1024)}
    log_folder(project, "killed", write_files(tmp_path / "data", files))
    root = tmp_path / "out"
    root.mkdir()
    left = root / ".model.bin.soko-dl-0123456789ab.tmp"  # as a killed download leaves it
    left.write_bytes(b"partial")
    long_ago = time.time() - 3600
    os.utime(left, (long_ago, long_ago))

    soko.Api().artifact(f"{project}/killed:latest").download(str(root))

    assert sorted(p.name for p in root.iterdir()) == ["model.bin"]


def test_a_changed_copy_is_not_used_and_the_blob_is_fetched_again(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _link_mode(monkeypatch, "copy")
    project = unique_project()
    files = {name: os.urandom(2 * 1024 * 1024) for name in ("edited", "removed", "damaged")}
    log_folder(project, "copies", write_files(tmp_path / "data", files))
    artifact = soko.Api().artifact(f"{project}/copies:latest")
    first = Path(artifact.download(str(tmp_path / "first")))
    digests = {name: blob_digest(artifact, name) for name in files}
    stats = StatCache(server_env.cache / STAT_CACHE_FILE)
    assert set(stats.copies(digests.values())) == set(digests.values())

    with open(first / "edited", "r+b") as f:
        f.write(b"X")
    (first / "removed").unlink()
    # Damaged behind a stat that still matches (a disk error, or a record gone wrong):
    # only hashing the copy as it is read finds it.
    with open(first / "damaged", "r+b") as f:
        f.write(b"X")
    stats.remember_copies([(str(first / "damaged"), digests["damaged"])])
    fetched = _record_fetches(monkeypatch)
    second = soko.Api().artifact(f"{project}/copies:latest").download(str(tmp_path / "second"))

    assert read_tree(second) == files
    assert sorted(fetched, key=str) == sorted(digests.values(), key=str)
    # Only the new root's files are remembered now.
    assert stats.copies(digests.values()) == {
        digest: [os.path.join(second, name)] for name, digest in digests.items()
    }


def test_a_corrupted_cached_blob_is_evicted_and_fetched_again(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _link_mode(monkeypatch, "reflink")  # the large blob goes through the cache
    project = unique_project()
    files = {f"small-{i}.txt": os.urandom(200) for i in range(40)}
    files["large.bin"] = os.urandom(2 * 1024 * 1024)
    log_folder(project, "damaged", write_files(tmp_path / "data", files))
    artifact = soko.Api().artifact(f"{project}/damaged:latest")
    artifact.download(str(tmp_path / "first"))
    cache = BlobCache(server_env.cache)
    small, large = blob_digest(artifact, "small-7.txt"), blob_digest(artifact, "large.bin")
    assert cache.get(large) is not None and dict(cache.read_packed([small]))

    # A damaged disk: one byte of each changes in the cache.
    large_file = server_env.cache / blob_key(large)
    large_file.chmod(0o644)
    with open(large_file, "r+b") as f:
        f.write(b"X")
    for pack in (server_env.cache / "packs").glob("*.pack"):
        pack.chmod(0o644)
        pack.write_bytes(pack.read_bytes().replace(files["small-7.txt"][:8], b"XXXXXXXX"))
    fetched = _record_fetches(monkeypatch)
    again = soko.Api().artifact(f"{project}/damaged:latest").download(str(tmp_path / "second"))

    assert read_tree(again) == files
    assert sorted(fetched, key=str) == sorted([small, large], key=str)
    assert (server_env.cache / blob_key(large)).read_bytes() == files["large.bin"]
    assert dict(cache.read_packed([small])) == {small: files["small-7.txt"]}


def test_many_small_blobs_come_in_batches_and_are_cached_in_packs(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique_project()
    files = {f"d{i % 5}/f{i:03d}.bin": os.urandom(100 + i) for i in range(120)}
    files["copy.bin"] = files["d0/f000.bin"]  # one blob, two destinations
    log_folder(project, "many", write_files(tmp_path / "data", files))
    monkeypatch.setattr(http_download, "BATCH_BLOBS", 7)  # many batches, more than fetched ahead
    fetched: list[int] = []
    original = http_download.BlobDownloads._fetch_batch

    def counting(self: http_download.BlobDownloads, batch: http_download.Batch) -> Any:
        fetched.append(len(batch.digests))
        return original(self, batch)

    monkeypatch.setattr(http_download.BlobDownloads, "_fetch_batch", counting)
    artifact = soko.Api().artifact(f"{project}/many:latest")

    assert read_tree(artifact.download(str(tmp_path / "first"))) == files
    assert sorted(fetched) == sorted([7] * 17 + [1])  # 120 distinct blobs
    cache = BlobCache(server_env.cache)
    cached = [b for b in cache.blobs() if b.packed]
    assert {b.digest for b in cached} == {blob_digest(artifact, path) for path in files}
    # One pack per writing thread: 18 batches are many, written by two threads.
    assert len({b.path for b in cached}) == 2

    fetched.clear()
    again = soko.Api().artifact(f"{project}/many:latest").download(str(tmp_path / "second"))
    assert read_tree(again) == files
    assert fetched == []  # all from the cache's pack

    # The pack files removed behind the cache's index: the blobs come from the server.
    for pack in (server_env.cache / "packs").glob("*.pack"):
        pack.unlink()
    third = soko.Api().artifact(f"{project}/many:latest").download(str(tmp_path / "third"))
    assert read_tree(third) == files
    assert len(fetched) == 18
    fetched.clear()  # and they are cached again
    fourth = soko.Api().artifact(f"{project}/many:latest").download(str(tmp_path / "fourth"))
    assert read_tree(fourth) == files
    assert fetched == []


def test_skip_cache_downloads_past_the_cache(server_env: ServerEnv, tmp_path: Path) -> None:
    # W&B's download(skip_cache=True): straight into the root, the cache left untouched.
    project = unique_project()
    files = {
        "a.txt": b"alpha",
        "b.txt": b"beta",
        "big.bin": os.urandom(2 * 1024 * 1024),
        "same-big.bin": b"",
    }
    files["same-big.bin"] = files["big.bin"]  # one blob, two destinations
    folder = write_files(tmp_path / "data", files)
    log_folder(project, "uncached", folder)
    artifact = soko.Api().artifact(f"{project}/uncached:latest")

    root = artifact.download(str(tmp_path / "out"), skip_cache=True)

    assert read_tree(root) == files
    record = artifact._record
    assert record is not None and record.manifest_blob is not None
    manifest_hex = record.manifest_blob.partition(":")[2]
    cached = [p.name for p in (server_env.cache / "blobs").rglob("*") if p.is_file()]
    assert cached in ([], [manifest_hex])  # only the manifest, read to list the files
    cache = BlobCache(server_env.cache)
    assert not any(cache.contains(blob_digest(artifact, path)) for path in files)
    assert not any(p.name.endswith(".tmp") for p in Path(root).rglob("*"))
    # Nor is the root remembered as a copy of the large blob.
    with sqlite3.connect(server_env.cache / STAT_CACHE_FILE) as db:
        assert db.execute("SELECT count(*) FROM copies").fetchone() == (0,)


@pytest.mark.parametrize("size", [1000, 2 * 1024 * 1024], ids=["batched", "alone"])
def test_corrupt_bytes_from_the_server_are_refused(
    server_env: ServerEnv, any_server: ServerUnderTest, tmp_path: Path, size: int
) -> None:
    project = unique_project()
    content = os.urandom(size)
    logged = log_folder(project, "corrupt", write_files(tmp_path / "data", {"f.bin": content}))
    digest = blob_digest(logged, "f.bin")
    any_server.blobs.overwrite(digest, b"X" + content[1:])
    # Whatever this client cached while logging, another client's cache is empty.
    shutil.rmtree(server_env.cache / "blobs", ignore_errors=True)
    shutil.rmtree(server_env.cache / "packs", ignore_errors=True)
    assert not BlobCache(server_env.cache).contains(digest)
    assert any_server.blobs.read(digest)[:1] == b"X"

    artifact = soko.Api().artifact(f"{project}/corrupt:latest")
    with pytest.raises((DigestMismatchError, CorruptBlobError)):
        artifact.download(str(tmp_path / "out"))
    assert not (tmp_path / "out" / "f.bin").exists()
    assert not BlobCache(server_env.cache).contains(digest)


def test_an_incremental_log_uploads_only_what_changed(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique_project()
    folder = write_files(tmp_path / "data", sample_files())
    first = log_folder(project, "inc", folder)
    uploaded: list[Digest] = []
    original = HttpBackend.store_blobs

    def recording(self: HttpBackend, sources: Any, **kwargs: Any) -> Any:
        uploaded.extend(s.digest for s in sources)
        return original(self, sources, **kwargs)

    monkeypatch.setattr(HttpBackend, "store_blobs", recording)
    with soko.init(project=project) as run:
        draft = soko.Api().artifact(f"{project}/inc:latest").new_draft()
        new_file = write_files(tmp_path / "extra", {"new.txt": b"only this is new"})
        draft.add_file(str(new_file / "new.txt"))
        run.log_artifact(draft)
        draft.wait()

    assert uploaded == [blob_digest(draft, "new.txt")]
    assert draft.version == "v1"
    assert len(draft.manifest) == len(first.manifest) + 1
