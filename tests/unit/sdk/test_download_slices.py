"""A download of several slices fetches two at once, each with one writer thread, and a
download of one slice leaves the writers to the backend."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from soko.client.backend import Progress
from soko.core.digests import Algorithm, Digest
from soko.core.entries import b64_of
from soko.core.manifest import Entry
from soko.sdk import transfer


class FakeTransfer:
    """Writes blobs from a map, noting each call's writers and how many calls overlap."""

    def __init__(self, blobs: dict[Digest, bytes], *, meet: int = 0, fail_on: int = -1) -> None:
        self.blobs = blobs
        self.writers: list[int | None] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        # The first *meet* calls wait for each other: they pass only if they run at once.
        self._meeting = threading.Barrier(meet) if meet else None
        self._fail_on = fail_on

    def fetch_blobs(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        progress: Progress | None = None,
        use_cache: bool = True,
        writers: int | None = None,
    ) -> None:
        with self._lock:
            call = len(self.writers)
            self.writers.append(writers)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self._meeting is not None and call < self._meeting.parties:
                self._meeting.wait(timeout=30)
            if call == self._fail_on:
                raise OSError("disk full")
            for digest, dest in items:
                Path(dest).parent.mkdir(parents=True, exist_ok=True)
                Path(dest).write_bytes(self.blobs[digest])
        finally:
            with self._lock:
                self.running -= 1


def entries_of(count: int) -> tuple[list[Entry], dict[Digest, bytes]]:
    entries: list[Entry] = []
    blobs: dict[Digest, bytes] = {}
    for i in range(count):
        data = f"file {i}".encode()
        raw = hashlib.md5(data).digest()
        blobs[Digest(Algorithm.MD5, raw)] = data
        entries.append(Entry(f"d{i % 3}/f{i}.txt", b64_of(raw), len(data)))
    return entries, blobs


def test_several_slices_are_fetched_two_at_once_with_one_writer_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_DOWNLOAD_SLICE", 4)
    entries, blobs = entries_of(18)
    backend = FakeTransfer(blobs, meet=2)
    transfer.download_entries(backend, entries, str(tmp_path / "root"), cache=None)
    assert backend.writers == [1] * 5
    assert backend.most_at_once == 2
    for entry in entries:
        assert (tmp_path / "root" / entry.path).read_bytes() == blobs[entry.blob_digest()]


def test_one_slice_leaves_the_writers_to_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_DOWNLOAD_SLICE", 4)
    entries, blobs = entries_of(4)
    backend = FakeTransfer(blobs)
    transfer.download_entries(backend, entries, str(tmp_path / "root"), cache=None)
    assert backend.writers == [None]
    assert sorted(p.name for p in (tmp_path / "root").rglob("*.txt")) == sorted(
        Path(e.path).name for e in entries
    )


def test_a_failed_slice_is_raised_and_the_slices_not_begun_are_not_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_DOWNLOAD_SLICE", 2)
    entries, blobs = entries_of(20)
    backend = FakeTransfer(blobs, fail_on=0)
    with pytest.raises(OSError, match="disk full"):
        transfer.download_entries(backend, entries, str(tmp_path / "root"), cache=None)
    # The slice beside the failed one may have begun; none after it.
    assert len(backend.writers) <= 2
