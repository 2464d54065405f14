"""Bytes counted as they stream (soko.core.metering), and the progress a hash of many files
reports with them: each byte once, a large file chunk by chunk."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from soko.client.hashing import hash_files, map_chunks
from soko.core import metering
from soko.core.digests import Algorithm


def test_counts_reach_the_meter_of_their_thread_only():
    seen: list[int] = []
    metering.count(5)  # nothing metered: dropped
    with metering.metered(seen.append) as meter:
        metering.count(3)
        other = threading.Thread(target=metering.count, args=(100,))
        other.start()
        other.join()
        with metering.metered(None) as inner:
            metering.count(7)
        metering.count(4)
    metering.count(9)
    # Small counts are handed on together when the block ends; a megabyte goes at once.
    assert seen == [7] and meter.counted == 7 and inner.counted == 7
    with metering.metered(seen.append):
        metering.count(metering.FLUSH_BYTES)
        assert seen == [7, metering.FLUSH_BYTES]


def test_a_failed_attempt_takes_its_bytes_back():
    seen: list[int] = []
    tries = iter([True, False])

    def attempt() -> str:
        metering.count(10)
        if next(tries):
            raise ConnectionError("cut short")
        return "done"

    with metering.metered(seen.append) as meter:
        with pytest.raises(ConnectionError):
            metering.retracting(attempt)()
        assert metering.retracting(attempt)() == "done"
    assert meter.counted == 10 and sum(seen) == 10


def test_a_counting_reader_counts_what_is_read():
    data = os.urandom(300_000)
    with metering.metered(None) as meter:
        reader = metering.CountingReader(io.BytesIO(data))
        assert b"".join(reader) == data
    assert meter.counted == len(data)


def test_hashing_reports_a_large_file_chunk_by_chunk(tmp_path: Path):
    sizes = [20 * 1024 * 1024, 3000, 2 * 1024 * 1024]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(size))
        paths.append(str(path))
    calls: list[tuple[int, int]] = []
    lock = threading.Lock()

    def progress(items: int, nbytes: int) -> None:
        with lock:
            calls.append((items, nbytes))

    hashed = hash_files(paths, Algorithm.XXH128, sizes=sizes, progress=progress)

    assert [h.size for h in hashed] == sizes
    assert sum(i for i, _ in calls) == len(sizes)
    assert sum(b for _, b in calls) == sum(sizes)  # each byte once
    # The 20 MiB file: 8 MiB chunks reported before it was done.
    assert [b for i, b in calls if i == 0].count(8 * 1024 * 1024) >= 2


def test_map_chunks_subtracts_what_was_counted():
    calls: list[tuple[int, int]] = []

    def work(chunk: list[int]) -> list[int]:
        for n in chunk:
            metering.count(n // 2)  # half of each item's bytes stream, half do not
        return chunk

    map_chunks(
        list(range(0, 1000, 10)),
        work,
        progress=lambda i, b: calls.append((i, b)),
        size_of=lambda n: n,
        workers=2,
    )
    assert sum(i for i, _ in calls) == 100
    assert sum(b for _, b in calls) == sum(range(0, 1000, 10))


def test_map_chunks_with_one_worker_runs_on_the_calling_thread():
    threads: set[int] = set()

    def work(chunk: list[int]) -> list[int]:
        threads.add(threading.get_ident())
        return [n * 2 for n in chunk]

    assert map_chunks(list(range(50)), work, workers=1) == [n * 2 for n in range(50)]
    assert threads == {threading.get_ident()}
