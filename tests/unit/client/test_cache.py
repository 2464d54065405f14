"""The download cache: verified, content-addressed, least recently used removed first."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from soko import settings
from soko.client.cache import BlobCache
from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError, ValidationError
from soko.storage.base import blob_key

HOUR = 3600.0


def _blob(i: int, size: int = 1000) -> tuple[Digest, bytes]:
    data = bytes([i % 256]) * size
    return Digest.of_bytes(data, Algorithm.MD5), data


def _used_at(path: str, seconds_ago: float) -> None:
    moment = time.time() - seconds_ago
    os.utime(path, (moment, moment))


def test_layout_is_the_blob_key(tmp_path: Path):
    cache = BlobCache(tmp_path)
    digest, data = _blob(1)
    path = cache.put_chunks(digest, [data[:10], data[10:]])
    assert path == str(tmp_path.joinpath(*blob_key(digest).split("/")))
    assert Path(path).read_bytes() == data
    assert cache.get(digest) == path
    assert cache.contains(digest)
    assert os.listdir(tmp_path / "tmp") == []


def test_put_file_and_stream(tmp_path: Path):
    cache = BlobCache(tmp_path / "cache")
    digest, data = _blob(2, 3 * 1024 * 1024)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    progress: list[tuple[int, int]] = []
    path = cache.put_file(digest, str(source), progress=lambda n, b: progress.append((n, b)))
    assert Path(path).read_bytes() == data
    assert sum(n for n, _ in progress) == 1 and sum(b for _, b in progress) == len(data)
    xxh = Digest.of_bytes(data, Algorithm.XXH128)
    with source.open("rb") as stream:
        assert Path(cache.put_stream(xxh, stream)).read_bytes() == data
    assert cache.size() == 2 * len(data)


def test_wrong_bytes_are_not_cached(tmp_path: Path):
    cache = BlobCache(tmp_path)
    digest, _ = _blob(3)
    with pytest.raises(DigestMismatchError):
        cache.put_chunks(digest, [b"something else"])
    assert cache.get(digest) is None
    assert not cache.contains(digest)
    assert os.listdir(tmp_path / "tmp") == []  # the temp file went too
    assert list(cache.blobs()) == []


def test_get_of_a_missing_blob(tmp_path: Path):
    assert BlobCache(tmp_path).get(_blob(4)[0]) is None


def test_cleanup_removes_least_recently_used_first(tmp_path: Path):
    cache = BlobCache(tmp_path)
    paths = {}
    for i in range(5):
        digest, data = _blob(i)
        paths[i] = cache.put_chunks(digest, [data])
        _used_at(paths[i], HOUR - 60 * i)  # blob 0 oldest, blob 4 newest
    # Reading blob 1 makes it the most recently used.
    assert cache.get(_blob(1)[0]) == paths[1]

    report = cache.cleanup(2500)
    assert (report.removed_files, report.freed_bytes, report.remaining_bytes) == (3, 3000, 2000)
    left = {i for i in paths if os.path.exists(paths[i])}
    assert left == {1, 4}
    assert cache.size() == 2000 <= 2500


def test_cleanup_orders_by_access_time_too(tmp_path: Path):
    cache = BlobCache(tmp_path)
    first = cache.put_chunks(*_pair(10))
    second = cache.put_chunks(*_pair(11))
    old = time.time() - HOUR
    os.utime(first, (old, old))
    os.utime(second, (old, old))
    # Read by something other than get(): the access time moves, the modification time not.
    os.utime(first, (time.time(), old))
    cache.cleanup(1000)
    assert os.path.exists(first) and not os.path.exists(second)


def _pair(i: int) -> tuple[Digest, list[bytes]]:
    digest, data = _blob(i)
    return digest, [data]


def test_cleanup_to_zero_and_when_under_the_limit(tmp_path: Path):
    cache = BlobCache(tmp_path)
    for i in range(3):
        cache.put_chunks(*_pair(i))
    report = cache.cleanup(10_000)
    assert (report.removed_files, report.remaining_bytes) == (0, 3000)
    report = cache.cleanup(0)
    assert (report.removed_files, report.freed_bytes, report.remaining_bytes) == (3, 3000, 0)
    assert list(cache.blobs()) == []
    with pytest.raises(ValidationError):
        cache.cleanup(-1)


def test_cleanup_leaves_other_files_alone(tmp_path: Path):
    cache = BlobCache(tmp_path)
    cache.put_chunks(*_pair(1))
    (tmp_path / "statcache.db").write_bytes(b"x" * 5000)
    stray = tmp_path / "blobs" / "md5" / "zz"
    stray.mkdir(parents=True)
    (stray / "not-a-blob").write_bytes(b"y" * 5000)
    report = cache.cleanup(0)
    assert report.removed_files == 1
    assert (tmp_path / "statcache.db").exists() and (stray / "not-a-blob").exists()


def test_remove_temp_spares_files_being_written(tmp_path: Path):
    cache = BlobCache(tmp_path)
    (tmp_path / "tmp").mkdir()
    stale = tmp_path / "tmp" / "1-1-a.tmp"
    stale.write_bytes(b"x")
    _used_at(str(stale), HOUR)
    fresh = tmp_path / "tmp" / "2-2-b.tmp"
    fresh.write_bytes(b"y")
    assert cache.cleanup(10**9).temp_files_removed == 0
    assert stale.exists()
    assert cache.cleanup(10**9, remove_temp=True).temp_files_removed == 1
    assert not stale.exists() and fresh.exists()


def test_size_cap_keeps_the_cache_under_it(tmp_path: Path):
    cache = BlobCache(tmp_path, max_bytes=3500)
    paths = []
    for i in range(6):
        digest, data = _blob(i)
        paths.append(cache.put_chunks(digest, [data]))
        _used_at(paths[-1], HOUR - 60 * i)
        assert cache.size() <= 3500
    # The newest three survive.
    assert [os.path.exists(p) for p in paths] == [False, False, False, True, True, True]


def test_from_settings_uses_cache_dir_and_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SOKO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOKO_CACHE_MAX", "2kB")
    cache = BlobCache.from_settings(settings.load())
    assert cache.root == str(tmp_path / "cache")
    assert cache.max_bytes == 2000
