"""The download cache: verified, content-addressed, least recently used removed first."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from soko import settings
from soko.client.cache import BlobCache
from soko.core.digests import Algorithm, Digest
from soko.core.metering import metered
from soko.errors import DigestMismatchError, StoreError, ValidationError
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
    counted: list[int] = []
    with metered(counted.append):
        path = cache.put_file(digest, str(source))
    assert Path(path).read_bytes() == data
    assert sum(counted) == len(data)
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


# ----- packed blobs (the small blobs of batch downloads) ---------------------------------


def _pack(cache: BlobCache, blobs: list[tuple[Digest, bytes]]) -> None:
    with cache.packer() as writer:
        for digest, data in blobs:
            writer.add(digest, data)


def _last_used(cache_root: Path, digest: Digest, seconds_ago: float) -> None:
    # The index's "written" column is a packed blob's last use; nothing in the API moves
    # it back in time.
    with sqlite3.connect(cache_root / "packs" / "index.db") as db:
        db.execute(
            "UPDATE packed SET written = ? WHERE alg = ? AND digest = ?",
            (time.time() - seconds_ago, digest.algorithm.key, digest.raw),
        )


def _pack_files(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "packs").glob("*.pack"))


def test_packed_blobs_are_one_file_and_read_back(tmp_path: Path):
    cache = BlobCache(tmp_path)
    blobs = [_blob(i) for i in range(40)]
    _pack(cache, blobs)

    assert len(_pack_files(tmp_path)) == 1
    assert not (tmp_path / "blobs").exists()
    assert all(cache.contains(d) for d, _ in blobs)
    assert cache.get(blobs[0][0]) is None  # no file of its own
    other = _blob(99)[0]
    assert dict(cache.read_packed([d for d, _ in blobs[:3]] + [other])) == dict(blobs[:3])
    listed = {b.digest: b for b in cache.blobs()}
    assert set(listed) == {d for d, _ in blobs}
    assert all(b.packed and b.path == str(_pack_files(tmp_path)[0]) for b in listed.values())
    assert cache.size() == 40 * 1000
    assert os.listdir(tmp_path / "tmp") == []


def test_packing_the_same_blob_twice_keeps_one_copy(tmp_path: Path):
    cache = BlobCache(tmp_path)
    digest, data = _blob(1)
    _pack(cache, [(digest, data), (digest, data), _blob(2)])
    assert cache.size() == 2000
    assert _pack_files(tmp_path)[0].stat().st_size == 2000


def test_cleanup_removes_least_recently_used_packs_whole(tmp_path: Path):
    cache = BlobCache(tmp_path)
    older = [_blob(i) for i in range(3)]
    newer = [_blob(i) for i in range(10, 13)]
    _pack(cache, older)
    _pack(cache, newer)
    for i, (digest, _) in enumerate(older + newer):
        _last_used(tmp_path, digest, HOUR - 60 * i)  # the older pack's blobs first
    loose = cache.put_chunks(*_pair(20))
    _used_at(loose, HOUR - 30)  # between the two packs
    # Reading one blob of the older pack makes that pack the most recently used.
    assert dict(cache.read_packed([older[1][0]])) == dict(older[1:2])

    report = cache.cleanup(3500)
    assert (report.removed_files, report.freed_bytes, report.remaining_bytes) == (4, 4000, 3000)
    assert all(cache.contains(d) for d, _ in older)
    assert not any(cache.contains(d) for d, _ in newer) and not os.path.exists(loose)
    assert len(_pack_files(tmp_path)) == 1
    assert cache.size() == 3000


def test_dead_packs_count_on_disk_and_are_reclaimed(tmp_path: Path):
    blobs = [_blob(i) for i in range(4)]
    _pack(BlobCache(tmp_path), blobs)
    # Another process packs the same blobs meanwhile: its pack holds nothing live.
    _pack(BlobCache(tmp_path), blobs)
    cache = BlobCache(tmp_path)
    assert cache.size() == 8000  # what the disk holds, not the 4,000 live bytes
    assert len(_pack_files(tmp_path)) == 2
    assert cache.cleanup(10**9).freed_bytes == 0  # a dead pack this young may be a writer's
    for pack in _pack_files(tmp_path):
        _used_at(str(pack), HOUR)

    report = cache.cleanup(10**9)
    assert (report.removed_files, report.freed_bytes, report.remaining_bytes) == (0, 4000, 4000)
    assert len(_pack_files(tmp_path)) == 1
    assert dict(cache.read_packed([d for d, _ in blobs])) == dict(blobs)


def test_cleanup_mixes_files_and_packs_and_deletes_empty_packs(tmp_path: Path):
    cache = BlobCache(tmp_path)
    packed = [_blob(i) for i in range(3)]
    _pack(cache, packed)
    for i, (digest, _) in enumerate(packed):
        _last_used(tmp_path, digest, 2 * HOUR - i)  # the oldest of all
    loose = cache.put_chunks(*_pair(10))
    _used_at(loose, HOUR)

    report = cache.cleanup(1000)
    assert (report.removed_files, report.remaining_bytes) == (3, 1000)
    assert _pack_files(tmp_path) == []
    assert os.path.exists(loose)
    assert cache.cleanup(0).removed_files == 1
    assert list(cache.blobs()) == []


def test_a_pack_used_during_cleanup_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cache = BlobCache(tmp_path)
    blobs = [_blob(i) for i in range(2)]
    _pack(cache, blobs)
    for digest, _ in blobs:
        _last_used(tmp_path, digest, HOUR)
    listed = list(cache._units())
    # Another process reads blob 0 between the cleanup's listing and its delete.
    monkeypatch.setattr(cache, "_units", lambda: iter(listed))
    assert dict(cache.read_packed([blobs[0][0]]))

    report = cache.cleanup(0)
    assert report.removed_files == 0 and report.remaining_bytes == 2000
    assert all(cache.contains(d) for d, _ in blobs)


def test_size_cap_applies_to_packed_blobs(tmp_path: Path):
    cache = BlobCache(tmp_path, max_bytes=2500)
    _pack(cache, [_blob(i) for i in range(2)])
    assert cache.size() == 2000
    _pack(cache, [_blob(i) for i in range(2, 5)])
    assert cache.size() <= 2500


def test_an_error_inside_the_packer_caches_what_was_not_yet_written(tmp_path: Path):
    cache = BlobCache(tmp_path)
    digest, data = _blob(1)
    with pytest.raises(RuntimeError), cache.packer() as writer:
        writer.add(digest, data)
        raise RuntimeError("the download failed")
    assert not cache.contains(digest)
    assert _pack_files(tmp_path) == []


def test_get_many_finds_the_cached_files(tmp_path: Path):
    cache = BlobCache(tmp_path)
    assert cache.get_many([_blob(1)[0]]) == {}  # a cache with no folders yet
    kept = [_blob(i) for i in range(3)]
    paths = {digest: cache.put_chunks(digest, [data]) for digest, data in kept}
    for path in paths.values():
        _used_at(path, HOUR)
    others = [_blob(i)[0] for i in range(100, 140)]  # some share a fan-out folder, most not
    found = cache.get_many([*paths, *others])
    assert found == paths
    assert all(time.time() - os.stat(p).st_mtime < 60 for p in found.values())  # just used


def test_packing_after_tmp_was_removed(tmp_path: Path):
    cache = BlobCache(tmp_path)
    _pack(cache, [_blob(1)])
    shutil.rmtree(tmp_path / "tmp")  # a user clearing the cache under a running process
    _pack(cache, [_blob(2)])
    assert cache.contains(_blob(2)[0])


def test_a_read_only_cache_still_serves_its_packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cache = BlobCache(tmp_path)
    blobs = [_blob(i) for i in range(3)]
    _pack(cache, blobs)

    def refuse(digests: object) -> set[Digest]:
        raise StoreError("attempt to write a readonly database")

    monkeypatch.setattr(cache.folder.packs, "touch", refuse)
    assert dict(cache.read_packed([d for d, _ in blobs])) == dict(blobs)
