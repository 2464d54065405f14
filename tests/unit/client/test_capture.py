"""Storing files in the embedded store while a draft hashes them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soko.client.capture import StoreCapture
from soko.client.hashing import hash_files_cached
from soko.client.sources import BlobSource
from soko.client.statcache import StatCache
from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError
from soko.storage.base import blob_key
from soko.storage.local import LocalBlobStore


def source(data: bytes) -> BlobSource:
    return BlobSource(Digest.of_bytes(data), len(data), "kept", data)


def test_put_new_file_stores_under_the_digest_of_what_it_copied(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    data = os.urandom(3 * 1024 * 1024 + 5)
    source = tmp_path / "big.bin"
    source.write_bytes(data)

    digest, size, st = store.put_new_file(str(source), Algorithm.XXH128)

    assert digest == Digest.of_bytes(data, Algorithm.XXH128)
    assert size == len(data) and st.st_ino == os.stat(source).st_ino
    assert (tmp_path / "store" / blob_key(digest)).read_bytes() == data
    # Again: the blob exists, the copy is dropped, nothing is left in tmp/.
    assert store.put_new_file(str(source), Algorithm.XXH128)[0] == digest
    assert os.listdir(tmp_path / "store" / "tmp") == []


def test_hashing_with_a_capture_stores_every_file_it_reads(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    folder = tmp_path / "in"
    folder.mkdir()
    contents = {f"small{i}": os.urandom(100 + i) for i in range(100)}
    contents["large"] = os.urandom(400_000)  # above what hashing keeps: copied instead
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    paths = sorted(str(p) for p in folder.iterdir())
    capture = StoreCapture(store)

    hashed = hash_files_cached(
        paths,
        Algorithm.XXH128,
        StatCache(tmp_path / "stat.db"),
        keep_bytes=1 << 20,
        capture=capture,
    )
    capture.close()

    assert store.missing(h.digest for h in hashed) == set()
    for h in hashed:
        assert store.read_bytes(h.digest) == contents[Path(h.path).name]
    assert list((tmp_path / "store" / "packs").glob("*.pack"))  # the small ones, packed


def test_a_capture_raises_what_storing_raised_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    capture = StoreCapture(store)
    good = [source(bytes([i]) * 10) for i in range(40)]
    bad = BlobSource(Digest.of_bytes(b"announced"), 11, "bad", b"other bytes")
    capture.store([*good, bad])
    with pytest.raises(DigestMismatchError):
        capture.close()

    monkeypatch.setattr("soko.client.capture.BATCH_BYTES", 1)  # every add is sent at once
    quiet = StoreCapture(store)
    quiet.store([bad])  # fails on the helper thread
    quiet.abandon()  # the caller's own error wins: nothing raised here
    assert store.exists(bad.digest) is False


def test_hashed_bytes_are_stored_as_given_and_readable_after_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("soko.client.capture.BATCH_BYTES", 4000)  # several batches
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    capture = StoreCapture(store)
    datas = [os.urandom(100) for _ in range(200)]
    raws = [Algorithm.XXH128.digest_of(d) for d in datas]
    for start in range(0, 200, 50):
        capture.store_hashed(Algorithm.XXH128, raws[start : start + 50], datas[start : start + 50])
    capture.close()

    for raw, data in zip(raws, datas, strict=True):
        assert store.read_bytes(Digest(Algorithm.XXH128, raw)) == data
    assert len(list((root / "packs").glob("*.pack"))) > 1
    assert os.listdir(root / "tmp") == []


def test_an_abandoned_capture_leaves_no_staged_pack(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    capture = StoreCapture(store)
    datas = [os.urandom(100) for _ in range(100)]
    capture.store_hashed(Algorithm.XXH128, [Algorithm.XXH128.digest_of(d) for d in datas], datas)
    capture._send()  # staged on the helper thread, not yet published
    capture.abandon()
    assert os.listdir(root / "tmp") == []
    assert not list((root / "packs").glob("*.pack"))


def test_a_file_changed_after_hashing_keeps_the_bytes_hashed(tmp_path: Path) -> None:
    """What is stored is what was hashed, whatever the file becomes after its read."""
    store = LocalBlobStore(tmp_path / "store")
    folder = tmp_path / "in"
    folder.mkdir()
    originals = {f"f{i}": os.urandom(200) for i in range(50)}
    for name, data in originals.items():
        (folder / name).write_bytes(data)
    paths = sorted(str(p) for p in folder.iterdir())
    capture = StoreCapture(store)
    hashed = hash_files_cached(
        paths, Algorithm.MD5, StatCache(tmp_path / "stat.db"), capture=capture
    )
    for path in paths:
        Path(path).write_bytes(b"changed since")
    capture.close()

    for h in hashed:
        assert store.read_bytes(h.digest) == originals[Path(h.path).name]
        assert h.digest == Digest.of_bytes(originals[Path(h.path).name])
