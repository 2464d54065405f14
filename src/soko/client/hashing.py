"""Hashing local files: each file read once, many files hashed on a thread pool.

hashlib and file reads release the GIL, so threads overlap I/O and MD5; a batch is cut into
a few large chunks so that a folder of tiny files costs one task per chunk, not per file.
No file is copied anywhere to be hashed.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import NamedTuple, Protocol, TypeVar, cast

from soko.client.sources import BlobSource
from soko.core.digests import Algorithm, Digest
from soko.core.metering import count, metered

_CHUNK = 8 * 1024 * 1024
_SMALL = 1024 * 1024
_PROGRESS_STEP = 512
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
SERIAL_MAX = 256 * 1024
"""Files up to this size are hashed on the calling thread (see :func:`hash_files`)."""


class FileStat(NamedTuple):
    """What identifies one state of a file without reading it.

    A tuple, not a dataclass: stat-cache lookups hash and compare 20,000 of them at a time,
    and a tuple does both in C.
    """

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class HashedFile:
    path: str
    digest: Digest
    size: int
    stat: FileStat | None = None
    """The file's stat when it was hashed (None once recorded in the stat cache)."""
    data: bytes | None = None
    """The bytes that were hashed, when the caller asked to keep them."""


def hash_file(path: str, algorithm: Algorithm, *, keep: bool = False) -> HashedFile:
    """Hash one file in a single pass; the stat is taken from the open descriptor.

    With *keep*, a file of up to 1 MiB keeps the bytes it was hashed from.
    """
    fd = os.open(path, _READ_FLAGS)
    kept = None
    try:
        st = os.fstat(fd)
        size = st.st_size
        if size <= _SMALL:
            data = _read_all(fd, size)
            raw = algorithm.digest_of(data)
            size = len(data)  # what was hashed, should the file have changed since fstat
            if keep:
                kept = data
        else:
            hasher = algorithm.hasher()
            buffer = bytearray(_CHUNK)
            view = memoryview(buffer)
            with os.fdopen(os.dup(fd), "rb", buffering=0) as stream:
                while True:
                    read = stream.readinto(view)
                    if not read:
                        break
                    hasher.update(view[:read])
                    count(read)  # a progress bar moves inside a large file
            raw = hasher.digest()
    finally:
        os.close(fd)
    return HashedFile(path, Digest(algorithm, raw), size, FileStat.of(st), kept)


def _read_all(fd: int, expected: int) -> bytes:
    # One read answers for a file that did not grow since fstat: a short read of a
    # regular file means its end, so asking for one byte more saves a second read.
    data = os.read(fd, expected + 1)
    if len(data) <= expected:
        return data
    parts = [data]
    while chunk := os.read(fd, 65536):
        parts.append(chunk)
    return b"".join(parts)


_T = TypeVar("_T")
_R = TypeVar("_R")

ProgressCallback = Callable[[int, int], None]
"""Called with (files done in this step, bytes done in this step)."""


def map_in_chunks(
    items: Sequence[_T],
    work: Callable[[_T], _R],
    *,
    progress: ProgressCallback | None = None,
    size_of: Callable[[_R], int] = lambda _: 0,
    workers: int | None = None,
) -> list[_R]:
    """``[work(i) for i in items]`` on a thread pool, cut into a few large chunks so that
    many tiny files cost one task per chunk, not per file; results in the order of items."""
    return map_chunks(
        items,
        lambda chunk: [work(i) for i in chunk],
        progress=progress,
        size_of=size_of,
        workers=workers,
    )


def map_chunks(
    items: Sequence[_T],
    work: Callable[[Sequence[_T]], list[_R]],
    *,
    progress: ProgressCallback | None = None,
    size_of: Callable[[_R], int] = lambda _: 0,
    workers: int | None = None,
    chunks_per_worker: int = 4,
) -> list[_R]:
    """``work(chunk)`` for a few chunks of *items* on a thread pool, where *work* returns
    one result per item of its chunk; results in the order of items.

    *progress* hears of the bytes *work* streams as they stream (:mod:`soko.core.metering`)
    and of the rest (``size_of`` of the results, less what was counted) when a chunk ends.

    The default is one worker per core: most of the work per small file is Python, which
    holds the GIL, so more threads only contend for it (20,000 x 4 KiB hash in 0.16 s on
    2 threads and 0.32 s on 4 here); large files are bound by the disk or by hashing,
    which releases the GIL, and gain nothing from more threads than cores either. One
    worker is the calling thread, in one chunk.
    """
    if len(items) <= 1 or workers == 1:
        return run_metered(items, work, progress, size_of)
    workers = workers or os.cpu_count() or 2
    chunk_count = min(len(items), workers * chunks_per_worker)
    step = -(-len(items) // chunk_count)
    chunks = [items[i : i + step] for i in range(0, len(items), step)]

    def run(chunk: Sequence[_T]) -> list[_R]:
        return run_metered(chunk, work, progress, size_of)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="soko-io") as pool:
        return [r for part in pool.map(run, chunks) for r in part]


def run_metered(
    chunk: Sequence[_T],
    work: Callable[[Sequence[_T]], list[_R]],
    progress: ProgressCallback | None,
    size_of: Callable[[_R], int],
) -> list[_R]:
    """``work(chunk)`` on this thread, its streamed bytes reported to *progress* as they
    stream and the rest of ``size_of`` its results when it ends (each byte once)."""
    if not progress:
        return work(chunk)
    with metered(lambda nbytes: progress(0, nbytes)) as meter:
        done = work(chunk)
    if done:
        progress(len(done), max(0, sum(size_of(r) for r in done) - meter.counted))
    return done


def hash_files(
    paths: Sequence[str],
    algorithm: Algorithm,
    *,
    sizes: Sequence[int] | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    keep_bytes: int = 0,
    capture: Capture | None = None,
) -> list[HashedFile]:
    """Hash many files, results in the order of *paths*.

    With *sizes* (from a stat just taken), files up to :data:`SERIAL_MAX` are hashed one
    after another on the calling thread while larger ones go to the thread pool: a small
    file costs more Python than I/O, and threads contending for the GIL hash 20,000 of
    them 2x slower than one thread does here. Small files keep their bytes (see
    :class:`HashedFile`) until they add up to *keep_bytes*, so that storing them later
    need not read them again. With *capture*, what is read is stored as well: the kept
    bytes, and the larger files, copied and hashed in one pass.
    """
    if sizes is None:
        return _hash_on_pool(paths, algorithm, workers=workers, progress=progress)
    small = [i for i, size in enumerate(sizes) if size <= SERIAL_MAX]
    if len(small) == len(paths):
        if capture is not None:
            return _hash_captured(paths, algorithm, progress, capture)
        return _hash_serially(paths, sizes, algorithm, progress, keep_bytes, capture)
    large = [i for i, size in enumerate(sizes) if size > SERIAL_MAX]
    results: list[HashedFile | None] = [None] * len(paths)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-hash") as runner:
        on_pool = runner.submit(
            _hash_on_pool,
            [paths[i] for i in large],
            algorithm,
            workers=workers,
            progress=progress,
            capture=capture,
        )
        serial = _hash_serially(
            [paths[i] for i in small],
            [sizes[i] for i in small],
            algorithm,
            progress,
            keep_bytes,
            capture,
        )
        for i, hashed in zip(small, serial, strict=True):
            results[i] = hashed
        for i, hashed in zip(large, on_pool.result(), strict=True):
            results[i] = hashed
    return [r for r in results if r is not None]


def _hash_on_pool(
    paths: Sequence[str],
    algorithm: Algorithm,
    *,
    workers: int | None,
    progress: ProgressCallback | None,
    capture: Capture | None = None,
) -> list[HashedFile]:
    if capture is not None:
        return map_in_chunks(
            paths,
            lambda p: capture.copy_file(p, algorithm),
            progress=progress,
            size_of=lambda h: h.size,
            workers=workers,
        )
    return map_in_chunks(
        paths,
        lambda p: hash_file(p, algorithm),
        progress=progress,
        size_of=lambda h: h.size,
        workers=workers,
    )


def _hash_serially(
    paths: Sequence[str],
    sizes: Sequence[int],
    algorithm: Algorithm,
    progress: ProgressCallback | None,
    keep_bytes: int,
    capture: Capture | None = None,
) -> list[HashedFile]:
    """Hash on this thread; keep the bytes of each file that still fits in *keep_bytes*
    (and hand them to *capture*)."""
    results = []
    for start in range(0, len(paths), _PROGRESS_STEP):
        done = []
        for path, size in zip(
            paths[start : start + _PROGRESS_STEP],
            sizes[start : start + _PROGRESS_STEP],
            strict=True,
        ):
            # Bytes handed to a capture are let go at once: they count against no budget.
            keep = capture is not None or size <= keep_bytes
            hashed = hash_file(path, algorithm, keep=keep)
            if hashed.data is not None and capture is None:
                keep_bytes -= len(hashed.data)
            done.append(hashed)
        if capture is not None:
            kept = [(h.digest.raw, h.data) for h in done if h.data is not None]
            capture.store_hashed(algorithm, [r for r, _ in kept], [d for _, d in kept])
            # The store has the bytes now: a million small files would otherwise hold
            # the whole budget of kept bytes until the last one is hashed.
            done = [
                HashedFile(h.path, h.digest, h.size, h.stat) if h.data is not None else h
                for h in done
            ]
        if progress:
            progress(len(done), sum(h.size for h in done))
        results.extend(done)
    return results


def _hash_captured(
    paths: Sequence[str],
    algorithm: Algorithm,
    progress: ProgressCallback | None,
    capture: Capture,
) -> list[HashedFile]:
    """:func:`_hash_serially` of small files whose bytes all go to *capture*, with the
    least Python per file: a folder of a million of them spends most of its time here.
    Each file is read in one ``read`` (as :func:`hash_file` does, its stat taken from the
    open descriptor) and hashed; the bytes go to the capture with the digest computed
    from them, and the results keep none."""
    results: list[HashedFile] = []
    append = results.append
    digest_of = algorithm.digest_of
    stat_of = FileStat.of
    for start in range(0, len(paths), _PROGRESS_STEP):
        raws: list[bytes] = []
        datas: list[bytes] = []
        for path in paths[start : start + _PROGRESS_STEP]:
            fd = os.open(path, _READ_FLAGS)
            try:
                st = os.fstat(fd)
                data = _read_all(fd, st.st_size)
            finally:
                os.close(fd)
            raw = digest_of(data)
            raws.append(raw)
            datas.append(data)
            append(HashedFile(path, Digest(algorithm, raw), len(data), stat_of(st)))
        capture.store_hashed(algorithm, raws, datas)
        if progress:
            progress(len(raws), sum(map(len, datas)))
    return results


class Capture(Protocol):
    """Where hashed files are stored as they are hashed (see :mod:`soko.client.capture`)."""

    def store(self, sources: Sequence[BlobSource]) -> None:
        """Store these blobs (the bytes hashing kept), soon; :meth:`close` waits for them."""
        ...

    def store_hashed(
        self, algorithm: Algorithm, raws: Sequence[bytes], datas: Sequence[bytes]
    ) -> None:
        """Store *datas*, whose raw digests *raws* were computed from these very bytes
        objects by the hashing (the store need not hash them again), soon."""
        ...

    def copy_file(self, path: str, algorithm: Algorithm) -> HashedFile:
        """Hash the file at *path* by copying it into the store (one read, one write)."""
        ...

    def close(self) -> None:
        """Wait until everything added is stored; raises what storing raised."""
        ...

    def abandon(self) -> None:
        """Wait for writes in flight, raising nothing (the caller is failing already)."""
        ...


StatKey = tuple[int, int, int, int, int]
"""A file's (device, inode, size, mtime_ns, ctime_ns): a :class:`FileStat`, or the plain
tuple :func:`stat_keys` makes, which hashes and compares equal to it."""

_STAT_KEY = attrgetter("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
_SIZE = itemgetter(2)


def stat_keys(paths: Iterable[str]) -> list[StatKey]:
    """The :data:`StatKey` of each file, in C: no Python frame per file."""
    return list(map(_STAT_KEY, map(os.stat, paths)))


class DigestCache(Protocol):
    def digests(self, stats: Sequence[StatKey], algorithm: Algorithm) -> list[bytes | None]: ...
    def record(self, items: Iterable[tuple[StatKey, Digest]]) -> None: ...


class Packed(NamedTuple):
    """Hashes of a slice of files, packed: what a folder of a million files keeps."""

    raws: bytes
    """The raw digests, one after another, in the order of the paths."""
    sizes: array[int]
    """The sizes, in the same order."""
    fresh: list[HashedFile]
    """The files the cache did not know, hashed now (with their kept bytes, if any)."""


_CACHED_SLICE = 16384
"""Files stat-ed, looked up, hashed and recorded at a time by :func:`hash_files_cached`."""


def hash_files_cached(
    paths: Sequence[str],
    algorithm: Algorithm,
    cache: DigestCache | None,
    *,
    progress: ProgressCallback | None = None,
    keep_bytes: int = 0,
    capture: Capture | None = None,
) -> list[HashedFile]:
    """Like :func:`hash_files`, but a file whose stat the cache knows is not read.

    A slice of files at a time, so that the stats of a million files are never held at
    once: the results carry none (``stat`` is None)."""
    # A bar that takes the totals (soko.sdk.progress.Bar) is told them first, a slice at a
    # time: the total grows as the slices are stat-ed.
    start = getattr(progress, "start", None)
    if cache is None:
        if start is not None:
            start(len(paths), None)
        return hash_files(paths, algorithm, progress=progress)
    results: list[HashedFile] = []
    for first in range(0, len(paths), _CACHED_SLICE):
        chunk = paths[first : first + _CACHED_SLICE]
        stats, known, fresh = _hash_slice_cached(
            chunk, algorithm, cache, progress=progress, keep_bytes=keep_bytes, capture=capture
        )
        hashed = iter(fresh)
        for path, stat, raw in zip(chunk, stats, known, strict=True):
            if raw is None:
                h = next(hashed)
                if h.data is not None:
                    keep_bytes -= len(h.data)
                results.append(HashedFile(h.path, h.digest, h.size, None, h.data))
            else:
                results.append(HashedFile(path, Digest(algorithm, raw), stat[2]))
    return results


def hash_packed(
    paths: Sequence[str],
    algorithm: Algorithm,
    cache: DigestCache,
    *,
    progress: ProgressCallback | None = None,
    keep_bytes: int = 0,
    capture: Capture | None = None,
) -> Packed:
    """:func:`hash_files_cached` of one slice of files, its results packed.

    A slice the cache knows whole (a re-log of an unchanged folder) costs a stat per file
    and a few C-level passes over the slice: no Python object per file but its stat."""
    stats, known, fresh = _hash_slice_cached(
        paths, algorithm, cache, progress=progress, keep_bytes=keep_bytes, capture=capture
    )
    if not fresh:
        return Packed(b"".join(cast("list[bytes]", known)), array("q", map(_SIZE, stats)), [])
    if len(fresh) == len(paths):  # a first log: no file known
        return Packed(
            b"".join([h.digest.raw for h in fresh]), array("q", [h.size for h in fresh]), fresh
        )
    hashed = iter(fresh)
    raws = bytearray()
    sizes = array("q")
    for stat, raw in zip(stats, known, strict=True):
        if raw is None:
            h = next(hashed)
            raws += h.digest.raw
            sizes.append(h.size)  # what was hashed, should the file have changed since
        else:
            raws += raw
            sizes.append(stat[2])
    return Packed(bytes(raws), sizes, fresh)


def _hash_slice_cached(
    paths: Sequence[str],
    algorithm: Algorithm,
    cache: DigestCache,
    *,
    progress: ProgressCallback | None,
    keep_bytes: int,
    capture: Capture | None,
) -> tuple[list[StatKey], list[bytes | None], list[HashedFile]]:
    """The stats of *paths*, the digests the cache knows (None for the others), and the
    others hashed (in order) and recorded."""
    stats = stat_keys(paths)
    start = getattr(progress, "start", None)
    if start is not None:
        start(len(paths), sum(map(_SIZE, stats)))
    known = cache.digests(stats, algorithm)
    if None not in known:
        if progress:
            progress(len(paths), sum(map(_SIZE, stats)))
        return stats, known, []
    todo = [i for i, raw in enumerate(known) if raw is None]
    if progress and len(todo) < len(paths):
        progress(
            len(paths) - len(todo),
            sum(s[2] for s, raw in zip(stats, known, strict=True) if raw is not None),
        )
    fresh = hash_files(
        [paths[i] for i in todo],
        algorithm,
        sizes=[stats[i][2] for i in todo],
        progress=progress,
        keep_bytes=keep_bytes,
        capture=capture,
    )
    cache.record((h.stat, h.digest) for h in fresh if h.stat is not None)
    return stats, known, fresh
