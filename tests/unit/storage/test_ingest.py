"""LocalBlobStore.ingest_file: a file stored under the digest of the bytes that were stored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError
from soko.storage import local as local_module
from soko.storage.local import LocalBlobStore


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024])
@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_ingest_stores_the_file_under_its_digest(
    tmp_path: Path, size: int, algorithm: Algorithm
) -> None:
    data = os.urandom(size)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    store = LocalBlobStore(tmp_path / "store")
    digest, st = store.ingest_file(str(source), algorithm)
    assert digest == Digest.of_bytes(data, algorithm)
    assert st.st_size == size
    assert store.read_bytes(digest) == data
    again, _ = store.ingest_file(str(source), algorithm)  # idempotent
    assert again == digest
    assert [b.digest for b in store.list()] == [digest]


def test_a_file_changed_during_ingest_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"a" * 100)
    store = LocalBlobStore(tmp_path / "store")
    real_read = os.read

    def read_then_edit(fd: int, count: int) -> bytes:
        data = real_read(fd, count)
        with open(source, "ab") as handle:  # another process appends meanwhile
            handle.write(b"more")
        return data

    monkeypatch.setattr(local_module.os, "read", read_then_edit)
    with pytest.raises(DigestMismatchError, match="changed while it was being added"):
        store.ingest_file(str(source), Algorithm.XXH128)
    monkeypatch.undo()
    assert list(store.list()) == []
