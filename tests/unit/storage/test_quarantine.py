"""The quarantine of the local store: a damaged blob, loose or packed, is moved out so that
the store lacks it and takes it again; an intact one is never moved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from soko.core.digests import Algorithm, Digest
from soko.storage.base import blob_key
from soko.storage.local import PACK_MIN_BLOBS, LocalBlobStore


def _blobs(count: int, tag: str) -> list[tuple[Digest, bytes]]:
    return [
        (Digest.of_bytes(data, Algorithm.XXH128), data)
        for data in (f"{tag} blob {i}".encode() for i in range(count))
    ]


def _flip(path: Path, offset: int) -> None:
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def test_a_damaged_loose_blob_is_renamed_out_and_stored_again(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    [(digest, data)] = _blobs(1, "loose")
    store.put_bytes(digest, data)
    _flip(tmp_path / "store" / blob_key(digest), 0)

    assert store.quarantine.set_aside(digest) is True

    assert store.missing([digest]) == {digest}
    kept = Path(store.quarantine.path(digest))
    assert kept == tmp_path / "store" / "quarantine" / "xxh128" / digest.hex
    assert kept.read_bytes() != data and len(kept.read_bytes()) == len(data)
    assert list(store.quarantine.digests()) == [digest]
    store.put_bytes(digest, data)
    assert store.read_bytes(digest) == data


def test_a_damaged_packed_blob_loses_its_row_and_its_bytes_are_copied_out(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    blobs = _blobs(PACK_MIN_BLOBS, "packed")
    store.put_blobs(blobs)
    digest, data = blobs[3]
    location = store.packs.locate([digest])[digest]
    _flip(tmp_path / "store" / "packs" / f"{location.pack}.pack", location.offset)

    assert store.quarantine.set_aside(digest) is True

    assert store.missing([d for d, _ in blobs]) == {digest}
    kept = Path(store.quarantine.path(digest)).read_bytes()
    assert kept != data and len(kept) == len(data)
    store.put_bytes(digest, data)
    assert store.read_bytes(digest) == data


def test_an_intact_blob_is_not_set_aside(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    blobs = _blobs(PACK_MIN_BLOBS, "packed")
    store.put_blobs(blobs)
    [(loose, loose_data)] = _blobs(1, "loose")
    store.put_bytes(loose, loose_data)

    assert store.quarantine.set_aside(loose) is False
    assert store.quarantine.set_aside(blobs[0][0]) is False

    assert store.missing([loose, blobs[0][0]]) == set()
    assert store.quarantine.is_empty()
    assert store.read_bytes(loose) == loose_data


def test_an_empty_quarantine_answers_without_iterating_the_digests(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    [(digest, data)] = _blobs(1, "asked")

    def never() -> Iterator[Digest]:
        raise AssertionError("iterated")
        yield digest

    assert store.quarantine.holds(never()) == set()
    store.put_bytes(digest, data)
    _flip(tmp_path / "store" / blob_key(digest), 0)
    store.quarantine.set_aside(digest)
    assert store.quarantine.holds(iter([digest])) == {digest}
