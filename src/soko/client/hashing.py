"""Hashing local files: each file read once, many files hashed on a thread pool.

hashlib and file reads release the GIL, so threads overlap I/O and MD5; a batch is cut into
a few large chunks so that a folder of tiny files costs one task per chunk, not per file.
No file is copied anywhere to be hashed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from soko.core.digests import Algorithm, Digest

_CHUNK = 8 * 1024 * 1024
_SMALL = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileStat:
    """What identifies one state of a file without reading it."""

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
    stat: FileStat


def hash_file(path: str, algorithm: Algorithm) -> HashedFile:
    """Hash one file in a single pass; the stat is taken from the open descriptor."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        hasher = algorithm.hasher()
        if st.st_size <= _SMALL:
            hasher.update(_read_all(fd, st.st_size))
        else:
            buffer = bytearray(_CHUNK)
            view = memoryview(buffer)
            with os.fdopen(os.dup(fd), "rb", buffering=0) as stream:
                while True:
                    count = stream.readinto(view)
                    if not count:
                        break
                    hasher.update(view[:count])
    finally:
        os.close(fd)
    return HashedFile(path, Digest(algorithm, hasher.digest()), st.st_size, FileStat.of(st))


def _read_all(fd: int, expected: int) -> bytes:
    parts = []
    while True:
        chunk = os.read(fd, max(expected, 65536))
        if not chunk:
            break
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
    if len(items) <= 1:
        results = [work(i) for i in items]
        if progress and results:
            progress(1, size_of(results[0]))
        return results
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    chunk_count = min(len(items), workers * 4)
    step = -(-len(items) // chunk_count)
    chunks = [items[i : i + step] for i in range(0, len(items), step)]

    def run(chunk: Sequence[_T]) -> list[_R]:
        done = [work(i) for i in chunk]
        if progress:
            progress(len(done), sum(size_of(r) for r in done))
        return done

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="soko-hash") as pool:
        return [r for part in pool.map(run, chunks) for r in part]


def hash_files(
    paths: Sequence[str],
    algorithm: Algorithm,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[HashedFile]:
    """Hash many files, results in the order of *paths*."""
    return map_in_chunks(
        paths,
        lambda p: hash_file(p, algorithm),
        progress=progress,
        size_of=lambda h: h.size,
        workers=workers,
    )


class DigestCache(Protocol):
    def lookup(self, stats: Iterable[FileStat], algorithm: Algorithm) -> dict[FileStat, Digest]: ...
    def record(self, items: Iterable[tuple[FileStat, Digest]]) -> None: ...


def hash_files_cached(
    paths: Sequence[str],
    algorithm: Algorithm,
    cache: DigestCache | None,
    *,
    progress: ProgressCallback | None = None,
) -> list[HashedFile]:
    """Like :func:`hash_files`, but a file whose stat the cache knows is not read."""
    if cache is None:
        return hash_files(paths, algorithm, progress=progress)
    stats = [FileStat.of(os.stat(p)) for p in paths]
    known = cache.lookup(stats, algorithm)
    results: list[HashedFile | None] = [
        HashedFile(p, known[s], s.size, s) if s in known else None
        for p, s in zip(paths, stats, strict=True)
    ]
    todo = [i for i, r in enumerate(results) if r is None]
    if progress and len(todo) < len(paths):
        progress(len(paths) - len(todo), sum(s.size for s in known))
    fresh = hash_files([paths[i] for i in todo], algorithm, progress=progress)
    for i, hashed in zip(todo, fresh, strict=True):
        results[i] = hashed
    cache.record((h.stat, h.digest) for h in fresh)
    return [r for r in results if r is not None]
