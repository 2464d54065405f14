"""One suite for every BlobStore: each rule of the contract in ``soko/storage/base.py``.

The ``blob_store`` fixture is parametrised over ``STORE_FACTORIES``; a new store (S3…) joins
the suite by adding one factory there. A factory gets the pytest request, so it can ask for
a service fixture (an S3 endpoint) with ``request.getfixturevalue``. Rules that only a store
on the local file system has (the format marker, temp files, several processes) are tested
at the end against ``LocalBlobStore`` alone.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError, NotFoundError, StoreError
from soko.storage import capabilities, durability
from soko.storage import local as local_module
from soko.storage.base import BlobStore, blob_key, digest_of_key
from soko.storage.local import LocalBlobStore
from soko.storage.memory import MemoryBlobStore

StoreFactory = Callable[[pytest.FixtureRequest, Path], BlobStore]


def _s3_store(request: pytest.FixtureRequest, tmp: Path) -> BlobStore:
    """An S3BlobStore on a fresh bucket of the session's moto server, under a prefix."""
    import uuid

    endpoint = request.getfixturevalue("moto_endpoint")
    import boto3

    from soko.storage.s3 import S3BlobStore

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket = f"soko-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, "some/prefix", client=client)


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": lambda request, tmp: MemoryBlobStore(),
    "local": lambda request, tmp: LocalBlobStore(tmp / "store"),
    "s3": _s3_store,
}


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto in server mode on a free loopback port; fails under CI=true when it cannot
    start, skips the S3 cases otherwise."""
    import socket
    import urllib.request

    def unavailable(message: str) -> None:
        if os.environ.get("CI", "").strip().lower() in ("true", "1"):
            pytest.fail(f"{message} (CI=true: the S3 emulator is required)", pytrace=False)
        pytest.skip(message)

    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        unavailable(f"moto[server] or boto3 is not installed ({exc})")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                unavailable(f"moto server did not start on {url}")
            time.sleep(0.05)  # between asks: the answer is the signal
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


ALGORITHMS = [Algorithm.MD5, Algorithm.XXH128]
CHUNK = 8 * 1024 * 1024
# Sizes around the local store's code paths: empty, one read (< 1 MiB), the 1 MiB edge,
# the chunked copy, and the pipelined copy of large files (>= 4 chunks).
FILE_SIZES = [0, 1, 4096, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 2 * CHUNK + 5,
              4 * CHUNK + 3]  # fmt: skip


@pytest.fixture(params=sorted(STORE_FACTORIES))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return STORE_FACTORIES[request.param](request, tmp_path)


def blob(data: bytes, algorithm: Algorithm = Algorithm.MD5) -> tuple[Digest, bytes]:
    return Digest.of_bytes(data, algorithm), data


def other_digest(digest: Digest) -> Digest:
    """A digest of the same algorithm that is not *digest*."""
    return Digest(digest.algorithm, bytes(b ^ 0xFF for b in digest.raw))


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


class ReadOnlyStream:
    """A stream with ``read`` only (no ``readinto``) that returns short reads, like a
    socket: stores must not assume more of a stream than ``read``."""

    def __init__(self, data: bytes, step: int = 1000) -> None:
        self._data = data
        self._offset = 0
        self._step = step

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data)
        part = self._data[self._offset : self._offset + min(size, self._step)]
        self._offset += len(part)
        return part


def put_each_way(store: BlobStore, digest: Digest, data: bytes, tmp_path: Path, way: str) -> None:
    if way == "bytes":
        store.put_bytes(digest, data)
    elif way == "file":
        name = f"src-{threading.get_ident()}-{digest.hex}-{time.monotonic_ns()}"
        assert store.put_file(digest, write(tmp_path / name, data)) == len(data)
    else:
        assert store.put_stream(digest, io.BytesIO(data)) == len(data)


WAYS = ["bytes", "file", "stream"]


def assert_no_temp_files(store: BlobStore) -> None:
    """A store on the local file system leaves no temp file once its writers returned."""
    if isinstance(store, LocalBlobStore):
        assert os.listdir(Path(store.root) / "tmp") == []


def listed(store: BlobStore, algorithm: Algorithm | None = None) -> dict[Digest, int]:
    return {info.digest: info.size for info in store.list(algorithm)}


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_bytes_round_trip(blob_store: BlobStore, algorithm: Algorithm) -> None:
    digest, data = blob(b"hello, blob store\n" * 100, algorithm)
    blob_store.put_bytes(digest, data)

    assert blob_store.read_bytes(digest) == data
    with blob_store.open(digest) as reader:
        assert reader.read() == data
    info = blob_store.stat(digest)
    assert (info.digest, info.size) == (digest, len(data))
    assert blob_store.exists(digest)


@pytest.mark.parametrize("size", FILE_SIZES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_file_round_trip(
    blob_store: BlobStore, tmp_path: Path, algorithm: Algorithm, size: int
) -> None:
    digest, data = blob(os.urandom(size), algorithm)
    source = write(tmp_path / "source.bin", data)

    assert blob_store.put_file(digest, source) == size

    assert blob_store.read_bytes(digest) == data
    assert blob_store.stat(digest).size == size
    assert Path(source).read_bytes() == data, "the source must be left as it was"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024 + 7])
def test_put_stream_round_trip(blob_store: BlobStore, algorithm: Algorithm, size: int) -> None:
    digest, data = blob(os.urandom(size), algorithm)
    assert blob_store.put_stream(digest, io.BytesIO(data)) == size
    assert blob_store.read_bytes(digest) == data


def test_put_stream_needs_only_read(blob_store: BlobStore) -> None:
    digest, data = blob(os.urandom(250_000))
    stream: BinaryIO = ReadOnlyStream(data)  # type: ignore[assignment]
    assert blob_store.put_stream(digest, stream) == len(data)
    assert blob_store.read_bytes(digest) == data


def test_stat_modified_is_the_time_of_the_write(blob_store: BlobStore) -> None:
    before = time.time()
    digest, data = blob(b"when")
    blob_store.put_bytes(digest, data)
    # File systems keep coarse timestamps: allow a few seconds either side.
    assert before - 5 <= blob_store.stat(digest).modified <= time.time() + 5


# -- verification ---------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digest_mismatch_raises_and_stores_nothing(
    blob_store: BlobStore, tmp_path: Path, algorithm: Algorithm, way: str
) -> None:
    digest, data = blob(os.urandom(5000), algorithm)
    wrong = other_digest(digest)

    with pytest.raises(DigestMismatchError) as caught:
        put_each_way(blob_store, wrong, data, tmp_path, way)

    assert isinstance(caught.value, ValueError)
    assert str(wrong) in str(caught.value)
    assert not blob_store.exists(wrong)
    assert not blob_store.exists(digest)
    assert listed(blob_store) == {}
    assert blob_store.missing([wrong]) == {wrong}
    assert_no_temp_files(blob_store)


def test_digest_mismatch_of_a_large_file_stores_nothing(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    digest, data = blob(os.urandom(4 * CHUNK + 1))
    wrong = other_digest(digest)
    with pytest.raises(DigestMismatchError):
        blob_store.put_file(wrong, write(tmp_path / "big.bin", data))
    assert listed(blob_store) == {}
    assert_no_temp_files(blob_store)


# -- idempotence ----------------------------------------------------------------------


@pytest.mark.parametrize("second", WAYS)
@pytest.mark.parametrize("first", WAYS)
def test_putting_a_blob_again_is_harmless(
    blob_store: BlobStore, tmp_path: Path, first: str, second: str
) -> None:
    digest, data = blob(b"twice" * 1000)
    put_each_way(blob_store, digest, data, tmp_path, first)
    put_each_way(blob_store, digest, data, tmp_path, second)

    assert blob_store.read_bytes(digest) == data
    assert listed(blob_store) == {digest: len(data)}


@pytest.mark.parametrize("way", ["bytes", "stream"])
def test_wrong_bytes_for_a_stored_blob_are_refused(blob_store: BlobStore, way: str) -> None:
    # A server takes a successful put as proof that its client holds the blob's bytes.
    digest, data = blob(os.urandom(5000))
    blob_store.put_bytes(digest, data)
    with pytest.raises(DigestMismatchError):
        if way == "bytes":
            blob_store.put_bytes(digest, b"other bytes")
        else:
            blob_store.put_stream(digest, io.BytesIO(b"other bytes"))
    assert blob_store.read_bytes(digest) == data
    assert blob_store.put_stream(digest, ReadOnlyStream(data)) == len(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("way", ["bytes", "stream"])
def test_wrong_bytes_get_the_same_words_whether_the_blob_is_stored_or_not(
    blob_store: BlobStore, way: str
) -> None:
    # A server sends the message to the writer: it must not tell which digests exist.
    stored, data = blob(os.urandom(5000))
    blob_store.put_bytes(stored, data)
    absent, _ = blob(os.urandom(5000))
    said = []
    for digest in (stored, absent):
        with pytest.raises(DigestMismatchError) as caught:
            if way == "bytes":
                blob_store.put_bytes(digest, b"wrong bytes")
            else:
                blob_store.put_stream(digest, io.BytesIO(b"wrong bytes"))
        said.append(str(caught.value).replace(str(digest), "<digest>"))
    assert said[0] == said[1]
    assert "<digest>" in said[0]


@pytest.mark.parametrize("way", ["bytes", "stream"])
def test_wrong_bytes_for_a_stored_blob_do_not_refresh_it(blob_store: BlobStore, way: str) -> None:
    # Refreshing restarts garbage collection's grace period: a failed upload of wrong bytes
    # must not keep another project's unreferenced blob alive.
    digest, data = blob(os.urandom(5000))
    blob_store.put_bytes(digest, data)
    local = isinstance(blob_store, capabilities.LocalFiles)
    path = blob_store.local_path(digest) if local else None
    if path is not None:
        a_day_ago = time.time() - 86400
        os.utime(path, (a_day_ago, a_day_ago))
    before = blob_store.stat(digest).modified
    with pytest.raises(DigestMismatchError):
        if way == "bytes":
            blob_store.put_bytes(digest, b"wrong bytes")
        else:
            blob_store.put_stream(digest, io.BytesIO(b"wrong bytes"))
    assert blob_store.stat(digest).modified == before


# Two 128-byte messages with one MD5 (Wang et al., 2004); a common suffix keeps them
# colliding, since they are whole blocks of equal length.
COLLISION = (
    bytes.fromhex(
        "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89"
        "55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b"
        "d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0"
        "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70"
    ),
    bytes.fromhex(
        "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89"
        "55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b"
        "d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0"
        "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70"
    ),
)


def colliding(suffix: bytes = b"") -> tuple[Digest, bytes, bytes]:
    """A digest and two different byte strings that both hash to it (MD5)."""
    original, forged = COLLISION[0] + suffix, COLLISION[1] + suffix
    digest = Digest.of_bytes(original, Algorithm.MD5)
    assert original != forged and Digest.of_bytes(forged, Algorithm.MD5) == digest
    return digest, original, forged


def put_one_way(store: BlobStore, digest: Digest, data: bytes, way: str) -> None:
    if way == "bytes":
        store.put_bytes(digest, data)
    else:
        store.put_stream(digest, ReadOnlyStream(data, step=64 * 1024))  # type: ignore[arg-type]


@pytest.mark.parametrize("way", ["bytes", "stream"])
@pytest.mark.parametrize("suffix", [0, 3 * 1024 * 1024 + 7], ids=["128B", "3MiB"])
def test_other_bytes_with_a_stored_blob_s_digest_are_refused(
    blob_store: BlobStore, way: str, suffix: int
) -> None:
    # A digest is no proof of the bytes: a server records possession of a blob when a put
    # of it succeeds, so bytes that only collide with the stored ones must not pass.
    digest, original, forged = colliding(os.urandom(suffix))
    blob_store.put_bytes(digest, original)
    with pytest.raises(DigestMismatchError) as forged_put:
        put_one_way(blob_store, digest, forged, way)
    with pytest.raises(DigestMismatchError) as wrong_put:
        put_one_way(blob_store, digest, b"wrong bytes", way)
    assert str(forged_put.value) == str(wrong_put.value)  # the same answer: nothing to learn
    assert blob_store.read_bytes(digest) == original
    put_one_way(blob_store, digest, original, way)  # the stored bytes themselves pass
    assert blob_store.read_bytes(digest) == original
    assert_no_temp_files(blob_store)


def damage(store: BlobStore, digest: Digest, data: bytes) -> None:
    """Replace the stored bytes of *digest* with *data* behind the store's back."""
    path = store.local_path(digest) if isinstance(store, capabilities.LocalFiles) else None
    if path is not None:
        os.chmod(path, 0o644)
        Path(path).write_bytes(data)
    elif isinstance(store, MemoryBlobStore):
        store._blobs[digest] = (data, time.time())
    else:
        store.client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=data)  # type: ignore[attr-defined]


@pytest.mark.parametrize("way", ["bytes", "stream"])
def test_the_right_bytes_replace_a_damaged_stored_copy(blob_store: BlobStore, way: str) -> None:
    # A flipped bit on disk makes the stored copy differ from the right bytes: they repair
    # it rather than being refused as a forgery.
    digest, data = blob(os.urandom(5000))
    blob_store.put_bytes(digest, data)
    damage(blob_store, digest, bytes([data[0] ^ 1]) + data[1:])
    put_one_way(blob_store, digest, data, way)
    assert blob_store.read_bytes(digest) == data
    if isinstance(blob_store, LocalBlobStore):
        assert blob_store.quarantine.holds([digest]) == {digest}
    assert_no_temp_files(blob_store)


def test_the_same_bytes_under_two_algorithms_are_two_blobs(blob_store: BlobStore) -> None:
    data = b"same bytes"
    md5, xxh = Digest.of_bytes(data, Algorithm.MD5), Digest.of_bytes(data, Algorithm.XXH128)
    blob_store.put_bytes(md5, data)
    assert blob_store.missing([md5, xxh]) == {xxh}
    blob_store.put_bytes(xxh, data)
    assert listed(blob_store) == {md5: len(data), xxh: len(data)}


# -- missing, exists, not found, delete -----------------------------------------------


def test_missing_answers_a_batch(blob_store: BlobStore) -> None:
    blobs = [blob(f"blob {i}".encode(), ALGORITHMS[i % 2]) for i in range(6)]
    for digest, data in blobs[:3]:
        blob_store.put_bytes(digest, data)
    wanted = (digest for digest, _ in blobs + blobs)  # a generator, with repeats

    assert blob_store.missing(wanted) == {digest for digest, _ in blobs[3:]}
    assert blob_store.missing([]) == set()
    assert [blob_store.exists(d) for d, _ in blobs] == [True] * 3 + [False] * 3


def test_open_stat_and_read_of_a_missing_blob_raise_not_found(blob_store: BlobStore) -> None:
    digest, _ = blob(b"never stored")
    for call in (blob_store.open, blob_store.stat, blob_store.read_bytes):
        with pytest.raises(NotFoundError) as caught:
            call(digest)
        assert isinstance(caught.value, LookupError)
        # A server sends it to its clients: the digest, and no folder or bucket of the store.
        message = str(caught.value)
        assert str(digest) in message and "/" not in message.replace(str(digest), "")


def test_delete(blob_store: BlobStore) -> None:
    keep, keep_data = blob(b"keep")
    gone, gone_data = blob(b"gone")
    blob_store.put_bytes(keep, keep_data)
    blob_store.put_bytes(gone, gone_data)

    blob_store.delete(gone)
    blob_store.delete(gone)  # a second time: missing is not an error
    blob_store.delete(blob(b"never stored")[0])

    assert listed(blob_store) == {keep: len(keep_data)}
    with pytest.raises(NotFoundError):
        blob_store.read_bytes(gone)
    blob_store.put_bytes(gone, gone_data)  # and it can come back
    assert blob_store.read_bytes(gone) == gone_data


# -- list -----------------------------------------------------------------------------


def test_list_by_algorithm(blob_store: BlobStore) -> None:
    md5 = dict(blob(f"md5 {i}".encode() * (i + 1)) for i in range(5))
    xxh = dict(blob(f"xxh {i}".encode(), Algorithm.XXH128) for i in range(3))
    for digest, data in {**md5, **xxh}.items():
        blob_store.put_bytes(digest, data)

    assert listed(blob_store) == {d: len(v) for d, v in {**md5, **xxh}.items()}
    assert listed(blob_store, Algorithm.MD5) == {d: len(v) for d, v in md5.items()}
    assert listed(blob_store, Algorithm.XXH128) == {d: len(v) for d, v in xxh.items()}
    for info in blob_store.list():
        assert digest_of_key(blob_key(info.digest)) == info.digest


def test_an_empty_store_lists_nothing(blob_store: BlobStore) -> None:
    assert list(blob_store.list()) == []
    assert blob_store.missing([blob(b"x")[0]]) == {blob(b"x")[0]}


# -- sync, local_path -----------------------------------------------------------------


def test_sync_after_puts_and_when_idle(blob_store: BlobStore, tmp_path: Path) -> None:
    blob_store.sync()
    digests = []
    for i, way in enumerate(WAYS):
        digest, data = blob(f"durable {i}".encode())
        put_each_way(blob_store, digest, data, tmp_path, way)
        digests.append(digest)
    blob_store.sync()
    blob_store.sync()
    assert blob_store.missing(digests) == set()


def test_local_path_is_the_blob_file(blob_store: BlobStore) -> None:
    digest, data = blob(b"where am I")
    blob_store.put_bytes(digest, data)
    if not isinstance(blob_store, capabilities.LocalFiles):  # memory, S3: no file to point at
        return
    path = blob_store.local_path(digest)
    assert Path(path).read_bytes() == data
    missing_path = blob_store.local_path(blob(b"absent")[0])
    assert not os.path.exists(missing_path)


ABILITIES = {
    "memory": set(),
    "local": {
        "PackedBatches",
        "BatchReads",
        "BatchDeletes",
        "Compacts",
        "LocalFiles",
        "HasQuarantine",
    },
    "s3": {"Presigner"},
}


def test_each_store_has_the_abilities_it_claims(
    blob_store: BlobStore, request: pytest.FixtureRequest
) -> None:
    # Callers find an ability by its protocol, never by the store's class: a store that
    # loses one (a method renamed) would silently fall back to the slow path.
    kind = request.node.callspec.params["blob_store"]
    found = {name for name in capabilities.__all__ if name != "CompactReport"}
    has = {name for name in found if isinstance(blob_store, getattr(capabilities, name))}
    assert has == ABILITIES[kind]


# -- concurrency ----------------------------------------------------------------------


def test_eight_threads_put_the_same_and_different_blobs(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    shared, shared_data = blob(os.urandom(300_000))
    big_shared, big_data = blob(os.urandom(2 * CHUNK + 11), Algorithm.XXH128)
    own = [blob(os.urandom(50_000 + i), ALGORITHMS[i % 2]) for i in range(8)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            way = WAYS[index % 3]
            barrier.wait()
            for _ in range(3):
                put_each_way(blob_store, shared, shared_data, tmp_path, way)
                put_each_way(blob_store, own[index][0], own[index][1], tmp_path, way)
            put_each_way(blob_store, big_shared, big_data, tmp_path, way)
            assert blob_store.read_bytes(shared) == shared_data
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    blob_store.sync()
    expected = {shared: shared_data, big_shared: big_data, **dict(own)}
    assert listed(blob_store) == {d: len(v) for d, v in expected.items()}
    for digest, data in expected.items():
        assert blob_store.read_bytes(digest) == data
    assert_no_temp_files(blob_store)


# -- the local store only -------------------------------------------------------------


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_a_new_store_writes_its_format_marker(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    assert (store_root / "format_version").read_bytes() == b"2\n"
    digest, data = blob(b"kept")
    store.put_bytes(digest, data)

    reopened = LocalBlobStore(str(store_root))
    assert reopened.read_bytes(digest) == data


def test_an_existing_empty_folder_becomes_a_store(store_root: Path) -> None:
    store_root.mkdir()
    LocalBlobStore(store_root)
    assert (store_root / "format_version").read_text() == "2\n"


def test_a_version_1_store_is_upgraded_and_its_blobs_kept(store_root: Path) -> None:
    # Version 1 is version 2 without packs: its loose blobs stay where they are.
    store = LocalBlobStore(store_root)
    digest, data = blob(b"from a version 1 store")
    store.put_bytes(digest, data)
    (store_root / "format_version").write_bytes(b"1\n")

    reopened = LocalBlobStore(store_root)
    assert (store_root / "format_version").read_bytes() == b"2\n"
    assert reopened.read_bytes(digest) == data


@pytest.mark.parametrize("content", [b"3\n", b"0\n", b"17"])
def test_a_store_of_another_format_version_is_refused(store_root: Path, content: bytes) -> None:
    store_root.mkdir()
    (store_root / "format_version").write_bytes(content)
    with pytest.raises(StoreError, match=r"format version \d+.*version 2"):
        LocalBlobStore(store_root)
    assert (store_root / "format_version").read_bytes() == content
    assert os.listdir(store_root) == ["format_version"]


@pytest.mark.parametrize("content", [b"", b"one\n", b"\xff\xfe"])
def test_a_marker_without_a_version_is_refused(store_root: Path, content: bytes) -> None:
    store_root.mkdir()
    (store_root / "format_version").write_bytes(content)
    with pytest.raises(StoreError, match="not a soko store"):
        LocalBlobStore(store_root)


def test_a_folder_that_is_not_a_store_is_refused_and_left_alone(store_root: Path) -> None:
    store_root.mkdir()
    (store_root / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match=r"not a soko store.*thesis\.tex"):
        LocalBlobStore(store_root)
    assert os.listdir(store_root) == ["thesis.tex"]


def test_a_file_as_root_is_refused(store_root: Path) -> None:
    store_root.write_text("a file")
    with pytest.raises(StoreError, match="not a folder"):
        LocalBlobStore(store_root)


def test_a_store_whose_marker_was_never_written_is_completed(store_root: Path) -> None:
    # A process stopped after creating tmp/ and blobs/ but before the marker's rename.
    (store_root / "tmp").mkdir(parents=True)
    (store_root / "blobs").mkdir()
    LocalBlobStore(store_root)
    assert (store_root / "format_version").read_text() == "2\n"


def test_blobs_live_at_their_key_read_only(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    digests = []
    for i in range(20):
        digest, data = blob(f"laid out {i}".encode(), ALGORITHMS[i % 2])
        store.put_bytes(digest, data)
        digests.append(digest)
        path = store_root.joinpath(*blob_key(digest).split("/"))
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o222 == 0, "blobs are never modified in place"

    # Every file under blobs/ is a key whose digest the store lists.
    keys = {
        p.relative_to(store_root).as_posix()
        for p in (store_root / "blobs").rglob("*")
        if p.is_file()
    }
    assert {digest_of_key(k) for k in keys} == set(digests) == set(listed(store))
    assert {blob_key(d) for d in listed(store)} == keys


def test_stray_files_are_never_listed(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    digest, data = blob(b"real")
    store.put_bytes(digest, data)
    real = store_root.joinpath(*blob_key(digest).split("/"))
    strays = [
        real.parent / "notes.txt",
        real.parent / real.name.upper(),
        store_root / "blobs" / "md5" / "zz" / ("zz" + "0" * 30),
        store_root / "blobs" / "sha1" / "ab" / ("ab" + "0" * 38),
        real.parent.parent / "README",
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_text("stray")
    assert listed(store) == {digest: len(data)}


def test_a_temp_file_left_by_a_writer_is_not_a_blob(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    digest, data = blob(b"half written")
    leftover = store_root / "tmp" / f"999999-1-{'ab' * 8}.tmp"
    leftover.write_bytes(data[:4])

    assert listed(store) == {}
    assert store.missing([digest]) == {digest}
    assert not store.exists(digest)
    store.put_bytes(digest, data)
    assert store.read_bytes(digest) == data
    assert leftover.exists(), "a fresh temp file may belong to a live writer"


def test_stale_temp_files_are_removed_after_the_grace_period(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    old = store_root / "tmp" / "1-1-old.tmp"
    fresh = store_root / "tmp" / "1-1-fresh.tmp"
    old.write_bytes(b"old")
    fresh.write_bytes(b"fresh")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    assert store.temp_files_older_than(600) == [str(old)]
    assert store.remove_stale_temp(600) == 1
    assert sorted(os.listdir(store_root / "tmp")) == ["1-1-fresh.tmp"]
    assert store.remove_stale_temp(600) == 0


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from soko.core.digests import Digest
    from soko.storage.local import LocalBlobStore

    store = LocalBlobStore(sys.argv[1])
    store.put_stream(Digest.from_hex(sys.argv[2]), sys.stdin.buffer)
    """
)


def test_a_writer_killed_mid_blob_leaves_no_blob(store_root: Path) -> None:
    LocalBlobStore(store_root)
    # More than one 8 MiB chunk is sent, so the writer has written to its temp file when
    # it is killed, while it waits for the rest.
    digest, data = blob(os.urandom(12 * 1024 * 1024))
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(store_root), digest.hex],
        stdin=subprocess.PIPE,
    )
    assert writer.stdin is not None
    try:
        writer.stdin.write(data[: 10 * 1024 * 1024])
        writer.stdin.flush()
        temp_dir = store_root / "tmp"
        # Polled: the writer's only sign of progress is its temp file.
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in temp_dir.iterdir()):
            assert writer.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "the writer never started its temp file"
            time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdin.close()

    store = LocalBlobStore(store_root)
    assert len(os.listdir(store_root / "tmp")) == 1
    assert listed(store) == {}
    assert store.missing([digest]) == {digest}
    with pytest.raises(NotFoundError):
        store.open(digest)
    store.put_bytes(digest, data)
    assert store.read_bytes(digest) == data


_PROCESS_WRITER = textwrap.dedent(
    """
    import sys
    from soko.core.digests import Algorithm, Digest
    from soko.storage.local import LocalBlobStore

    store = LocalBlobStore(sys.argv[1])
    sys.stdin.readline()  # start together
    for line in sys.argv[2:]:
        alg, hex_digest, path = line.split(",", 2)
        assert store.put_file(Digest.from_hex(hex_digest, Algorithm(alg)), path) >= 0
    store.sync()
    print("done")
    """
)


def test_two_processes_put_the_same_blobs_at_once(store_root: Path, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    items = []
    for i in range(120):
        size = [0, 100, 5000, 1024 * 1024 + 3][i % 4] + i
        digest, data = blob(os.urandom(size), ALGORITHMS[i % 2])
        items.append((digest, data, write(sources / f"f{i}", data)))
    args = [f"{d.algorithm.value},{d.hex},{path}" for d, _, path in items]

    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_WRITER, str(store_root), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    # Both open the store (possibly creating it at once), then are let go together, so they
    # put the same blob at the same moment.
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outputs = [w.communicate(timeout=300)[0] for w in writers]

    assert [w.returncode for w in writers] == [0, 0]
    assert outputs == ["done\n", "done\n"]
    store = LocalBlobStore(store_root)
    assert listed(store) == {d: len(data) for d, data, _ in items}
    for digest, data, _ in items:
        assert store.read_bytes(digest) == data
    assert os.listdir(store_root / "tmp") == []


def test_putting_an_existing_blob_refreshes_its_time(store_root: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(store_root)
    digest, data = blob(b"old but wanted again")
    store.put_bytes(digest, data)
    path = store_root.joinpath(*blob_key(digest).split("/"))
    a_day_ago = time.time() - 86400
    os.utime(path, (a_day_ago, a_day_ago))

    assert store.put_file(digest, write(tmp_path / "again", data)) == len(data)

    # Garbage collection's grace period starts again for a blob that is wanted again.
    assert store.stat(digest).modified > a_day_ago + 3600


def test_a_batch_with_wrong_bytes_refreshes_no_packed_blob(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    blobs = [blob(f"packed {i}".encode()) for i in range(40)]
    store.put_blobs(blobs)
    stored, _ = blobs[0]
    before = store.stat(stored).modified
    batch = [(stored, b"wrong bytes")] + [blob(f"new {i}".encode()) for i in range(40)]
    with pytest.raises(DigestMismatchError):
        store.put_blobs(batch)
    assert store.stat(stored).modified == before


@pytest.mark.parametrize("stored_as", ["packed", "loose"])
def test_a_batch_with_other_bytes_for_a_stored_blob_s_digest_is_refused(
    store_root: Path, stored_as: str
) -> None:
    store = LocalBlobStore(store_root)
    digest, original, forged = colliding()
    others = [blob(f"other {i}".encode()) for i in range(40)]
    if stored_as == "packed":
        store.put_blobs([(digest, original), *others])
    else:
        store.put_bytes(digest, original)
    new = [blob(f"new {i}".encode()) for i in range(40)]
    with pytest.raises(DigestMismatchError):
        store.put_blobs([*new, (digest, forged)])
    assert store.read_bytes(digest) == original
    store.put_blobs([*new, (digest, original)])
    assert store.read_bytes(digest) == original
    assert store.missing(d for d, _ in new) == set()


def test_a_missing_source_file_raises_and_stores_nothing(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    with pytest.raises(FileNotFoundError):
        store.put_file(blob(b"x")[0], str(store_root / "no such file"))
    assert listed(store) == {}
    assert os.listdir(store_root / "tmp") == []


def test_a_failed_write_is_a_store_error_and_leaves_no_temp(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(store_root)
    digest, data = blob(b"no room")

    def disk_full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_module.os, "write", disk_full)
    with pytest.raises(StoreError, match="No space left"):
        store.put_bytes(digest, data)
    monkeypatch.undo()
    assert listed(store) == {}
    assert os.listdir(store_root / "tmp") == []


@pytest.fixture
def syncfs_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The file descriptors the store asks to ``syncfs``, which is only recorded."""
    calls: list[int] = []

    def fake_syncfs(fd: int) -> int:
        calls.append(fd)
        return 0

    monkeypatch.setattr(durability, "_syncfs", lambda: fake_syncfs)
    return calls


def test_sync_calls_syncfs_once_per_batch(store_root: Path, syncfs_calls: list[int]) -> None:
    store = LocalBlobStore(store_root)
    store.sync()
    assert syncfs_calls == [], "nothing written, nothing to flush"
    for i in range(50):
        store.put_bytes(*blob(f"batch {i}".encode()))
    store.sync()
    assert len(syncfs_calls) == 1
    store.sync()
    assert len(syncfs_calls) == 1


def test_sync_covers_puts_through_another_instance_of_the_root(
    store_root: Path, monkeypatch: pytest.MonkeyPatch, syncfs_calls: list[int]
) -> None:
    monkeypatch.setattr(durability, "FSYNC_UP_TO", 0)
    writer = LocalBlobStore(store_root)
    committer = LocalBlobStore(store_root / ".." / store_root.name)
    writer.put_bytes(*blob(b"written by one, committed by the other"))
    committer.sync()
    assert len(syncfs_calls) == 1


def test_a_failed_sync_raises_and_is_retried(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = iter([-1, 0])
    calls: list[int] = []

    def flaky_syncfs(fd: int) -> int:
        calls.append(fd)
        return next(results)

    monkeypatch.setattr(durability, "_syncfs", lambda: flaky_syncfs)
    monkeypatch.setattr(durability, "FSYNC_UP_TO", 0)
    store = LocalBlobStore(store_root)
    store.put_bytes(*blob(b"must be durable"))
    with pytest.raises(StoreError, match="syncfs"):
        store.sync()
    store.sync()  # the writes are still pending: this call flushes them
    assert len(calls) == 2


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the store fsyncs one by one (they are still fsynced)."""
    paths: list[str] = []
    fsync_file = durability.fsync_file

    def record(path: str) -> None:
        paths.append(path)
        fsync_file(path)

    monkeypatch.setattr(durability, "fsync_file", record)
    return paths


def test_without_syncfs_each_written_file_is_fsynced(
    store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flushed: list[str]
) -> None:
    monkeypatch.setattr(durability, "_syncfs", lambda: None)
    store = LocalBlobStore(store_root)
    digests = []
    for i in range(30):
        digest, data = blob(f"fsync me {i}".encode(), ALGORITHMS[i % 2])
        put_each_way(store, digest, data, tmp_path, WAYS[i % 3])
        digests.append(digest)

    store.sync()
    paths = {str(store_root.joinpath(*blob_key(d).split("/"))) for d in digests}
    assert sorted(flushed) == sorted(paths)
    flushed.clear()
    store.sync()
    assert flushed == []


def test_a_few_blobs_are_fsynced_one_by_one_rather_than_the_file_system(
    store_root: Path, syncfs_calls: list[int], flushed: list[str]
) -> None:
    store = LocalBlobStore(store_root)
    few = [blob(f"few {i}".encode()) for i in range(durability.FSYNC_UP_TO)]
    for digest, data in few:
        store.put_bytes(digest, data)
    store.sync()
    assert syncfs_calls == []
    assert sorted(flushed) == sorted(
        str(store_root.joinpath(*blob_key(d).split("/"))) for d, _ in few
    )

    for i in range(durability.FSYNC_UP_TO + 1):
        store.put_bytes(*blob(f"many {i}".encode()))
    flushed.clear()
    store.sync()
    assert len(syncfs_calls) == 1 and flushed == []


def test_list_skips_a_blob_deleted_while_listing(store_root: Path) -> None:
    store = LocalBlobStore(store_root)
    digests = [blob(f"d{i}".encode())[0] for i in range(10)]
    for i, digest in enumerate(digests):
        store.put_bytes(digest, f"d{i}".encode())
    seen = []
    for info in store.list():
        seen.append(info.digest)
        for digest in digests:
            store.delete(digest)
    assert len(seen) == 1 and seen[0] in digests


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # A store's helper threads may be on their way out still: each gets until the deadline.
    deadline = time.monotonic() + 5
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    left = [t.name for t in set(threading.enumerate()) - before]
    assert not left, f"a store left threads running: {left}"
