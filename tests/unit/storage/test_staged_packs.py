"""Blobs a capture hashed, stored without hashing again: staged packs published in groups."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError
from soko.storage.base import blob_key
from soko.storage.local import PACK_MIN_BLOBS, LocalBlobStore
from soko.storage.pack_index import INDEX_NAME
from soko.storage.pack_writer import StagedPacks

ALG = Algorithm.XXH128


def blobs(count: int, tag: str = "") -> tuple[list[bytes], list[bytes]]:
    datas = [f"{tag}{i}:".encode() + os.urandom(100) for i in range(count)]
    return [ALG.digest_of(d) for d in datas], datas


def rows(root: Path) -> list[tuple[bytes, str]]:
    with sqlite3.connect(root / "packs" / INDEX_NAME) as conn:
        return list(conn.execute("SELECT digest, pack FROM packed"))


def test_staged_packs_are_read_only_once_published_and_then_durable(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    staged = StagedPacks(store.packs, group_rows=100)
    first = blobs(40, "a")
    second = blobs(40, "b")

    store.put_hashed(ALG, *first, staged)
    # Staged, fsynced in tmp/, but not a pack yet: nothing reads it, nothing is indexed.
    assert not list((root / "packs").glob("*.pack"))
    assert store.missing(Digest(ALG, raw) for raw in first[0]) == {
        Digest(ALG, raw) for raw in first[0]
    }
    store.put_hashed(ALG, *second, staged)
    staged.close()

    assert len(list((root / "packs").glob("*.pack"))) == 2  # a pack per batch
    assert len({pack for _, pack in rows(root)}) == 2
    for raws, datas in (first, second):
        for raw, data in zip(raws, datas, strict=True):
            assert store.read_bytes(Digest(ALG, raw)) == data
    assert os.listdir(root / "tmp") == []


def test_a_group_is_published_when_it_reaches_its_rows(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    staged = StagedPacks(store.packs, group_rows=60)
    store.put_hashed(ALG, *blobs(40, "a"), staged)
    assert not list((root / "packs").glob("*.pack"))
    store.put_hashed(ALG, *blobs(40, "b"), staged)  # 80 rows: the group is published
    assert len(rows(root)) == 80
    staged.close()
    assert len(rows(root)) == 80


def test_discarded_staged_packs_leave_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    staged = StagedPacks(store.packs)
    raws, datas = blobs(40)
    store.put_hashed(ALG, raws, datas, staged)
    staged.discard()
    staged.close()  # nothing left to publish
    assert os.listdir(root / "tmp") == []
    assert not list((root / "packs").glob("*.pack"))
    assert not store.exists(Digest(ALG, raws[0]))


def test_stored_blobs_are_not_packed_again_and_a_file_twice_packs_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    raws, datas = blobs(60)
    # Ten stored loose, ten packed by an earlier batch.
    for raw, data in zip(raws[:10], datas[:10], strict=True):
        store.put_bytes(Digest(ALG, raw), data)
    store.put_blobs([(Digest(ALG, r), d) for r, d in zip(raws[10:50], datas[10:50], strict=True)])
    packed_before = len(rows(root))
    staged = StagedPacks(store.packs)

    # The same content twice in one batch (two files of one folder).
    store.put_hashed(ALG, [*raws, raws[55]], [*datas, datas[55]], staged)
    staged.close()

    new = len(rows(root)) - packed_before
    assert new == 10  # raws[50:60], each once
    assert (root / blob_key(Digest(ALG, raws[0]))).is_file()
    for raw, data in zip(raws, datas, strict=True):
        assert store.read_bytes(Digest(ALG, raw)) == data


def test_bytes_that_differ_from_a_stored_copy_with_their_digest_are_refused(
    tmp_path: Path,
) -> None:
    """The store trusts the digests put_hashed is given for new blobs only: a blob it holds
    is compared with the stored copy, as every put of a stored blob is."""
    store = LocalBlobStore(tmp_path / "store")
    raws, datas = blobs(PACK_MIN_BLOBS + 8)
    store.put_bytes(Digest(ALG, raws[0]), datas[0])
    datas[0] = b"other bytes under the same digest"
    staged = StagedPacks(store.packs)
    with pytest.raises(DigestMismatchError):
        store.put_hashed(ALG, raws, datas, staged)
    staged.discard()
    assert store.read_bytes(Digest(ALG, raws[0])) != datas[0]


def test_a_small_batch_is_stored_loose_and_verified(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalBlobStore(root)
    staged = StagedPacks(store.packs)
    raws, datas = blobs(3)
    store.put_hashed(ALG, raws, datas, staged)
    staged.close()
    assert (root / blob_key(Digest(ALG, raws[0]))).is_file()
    assert not (root / "packs").exists() or not list((root / "packs").glob("*.pack"))
    with pytest.raises(DigestMismatchError):
        store.put_hashed(ALG, [raws[1]], [b"not these"], staged)
