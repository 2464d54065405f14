"""Small blobs stored many to a file: the pack half of a :class:`~.folder.BlobFolder`.

A loose blob costs a file create, a write and a rename, about 150 µs a blob in Python on
this project's machines: 3 s for 20,000 small files. A pack costs that once for a whole
batch. Layout under the root (of the local store, or of the download cache)::

    packs/<name>.pack   blobs back to back, nothing else (the index knows the offsets)
    packs/index.db      SQLite: (algorithm, digest) -> pack, offset, size, written

Write order of :meth:`Packs.write`:

1. Every blob is checked against its digest; on a mismatch nothing is written.
2. The pack is written to a temp file and fsynced: the bytes are durable before anything
   points at them.
3. Under the index's write lock (``BEGIN IMMEDIATE``), the pack is renamed into
   ``packs/``, ``packs/`` is fsynced, and the rows are inserted, sorted, and committed.
   A writer of many batches (:class:`~.pack_writer.StagedPacks`) may stage several packs
   (step 2) and publish them together: one commit for many packs' rows.
   ``INSERT OR IGNORE``: a blob another writer packed meanwhile keeps its first
   location; its second copy is dead space.

Compaction decides under the same lock, so it never sees a pack whose rows are still
coming. A crash inside step 3 leaves a pack that no row points at, which
:meth:`Packs.compact` deletes once older than garbage collection's grace period. Pack
files are never modified: compaction writes the live blobs of a mostly dead pack into a
new one, moves their rows in one transaction and unlinks the old pack only after that
commit; a reader that looked up the old location looks up again.

``written`` plays the part of a loose blob's mtime: a put of a blob that is already
packed refreshes it, which restarts garbage collection's grace period.

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.errors`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from soko.core.digests import Algorithm, Digest
from soko.errors import StoreError
from soko.storage.base import BlobInfo, digest_mismatch
from soko.storage.copying import write_parts
from soko.storage.layout import fsync_dir
from soko.storage.pack_index import ALG_KEYS, Location, PackIndex, PackUsage

__all__ = ["CompactReport", "Location", "PackUsage", "Packs", "Row"]

Row = tuple[str, bytes, str, int, int]

_ROWS_PER_INSERT = 500
"""Rows one INSERT of :meth:`Packs.publish` writes (3,000 values, far below SQLite's
32,766). One statement is one step of SQLite, where ``executemany`` steps once a row, and
each step lets the GIL go and takes it back: with a server's other threads busy in
Python, each take waited its turn, so that a batch of 1,024 rows held the index's write
lock, which every upload and lookup waits for, about twice as long as its work."""


@functools.cache
def _insert_rows(count: int) -> str:
    return (
        "INSERT OR IGNORE INTO packed (alg, digest, pack, offset, size, written) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?)"] * count)
    )


_T = TypeVar("_T")


def _parts(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


"""One packed blob's index row as :meth:`Packs.publish` takes it: algorithm key, raw
digest, pack name, offset, size."""

PACKS = "packs"
PACK_SUFFIX = ".pack"
MAX_PACKED = 1024 * 1024
"""Blobs up to this size are packed when stored in a batch; larger ones stay loose."""
PACK_TARGET = 64 * 1024 * 1024
"""A batch is cut into packs of about this size, which bounds what a writer holds."""
REWRITE_BELOW = 0.5
"""Compaction rewrites a pack whose live bytes are less than this share of it."""


@dataclass(frozen=True)
class SizedReads:
    """The stored sizes of some blobs, and what reads those of them that are packed (one
    open per pack) without looking them up again."""

    sizes: dict[Digest, int]
    read_packed: Callable[[], Iterator[tuple[Digest, bytes]]]


@dataclass
class CompactReport:
    packs_deleted: int = 0
    """Packs no row pointed at any more (every blob in them deleted), or orphans."""
    packs_rewritten: int = 0
    bytes_reclaimed: int = 0


class Packs(PackIndex):
    """The packed blobs of one store root, their index (:class:`~.pack_index.PackIndex`)
    and their files; safe to share between threads and processes."""

    def __init__(self, root: str, new_temp: Callable[[], str]) -> None:
        super().__init__(os.path.join(root, PACKS))
        self._new_temp = new_temp

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        for info, _pack in self.list_with_packs(algorithm):
            yield info

    def list_with_packs(self, algorithm: Algorithm | None = None) -> Iterator[tuple[BlobInfo, str]]:
        """Every packed blob (of *algorithm*) with the path of its pack."""
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return
            query = "SELECT alg, digest, size, written, pack FROM packed"
            params: tuple[str, ...] = ()
            if algorithm is not None:
                query += " WHERE alg = ?"
                params = (algorithm.key,)
            try:
                rows = conn.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"The pack index {self._index_path} failed: {exc}") from exc
        for alg, raw, size, written, pack in rows:
            yield BlobInfo(Digest(Algorithm.parse(alg), raw), size, written), self.pack_path(pack)

    # -- writing -------------------------------------------------------------------------

    def write(self, blobs: Sequence[tuple[Digest, bytes]], *, verified: bool = False) -> str:
        """Store *blobs* as one new pack; returns its name. Each blob is checked against
        its digest first, unless the caller just did (*verified*)."""
        for digest, data in [] if verified else blobs:
            if digest.algorithm.hasher(data).digest() != digest.raw:
                raise digest_mismatch(digest, "bytes")
        name = os.urandom(12).hex()
        rows = []
        offset = 0
        keys = ALG_KEYS
        for digest, data in blobs:
            rows.append((keys[digest.algorithm], digest.raw, name, offset, len(data)))
            offset += len(data)
        temp = self.stage([data for _, data in blobs])
        rows.sort()
        self.publish([(temp, name)], rows)
        return name

    def stage(self, parts: Sequence[bytes]) -> str:
        """A durable temp file holding *parts* back to back, for :meth:`publish`; returns
        its path. A writer killed before publishing it leaves a temp file, which
        ``remove_stale_temp`` deletes once it is older than the grace period."""
        return self._write_temp(parts)

    def publish(self, staged: Sequence[tuple[str, str]], rows: Iterable[Row]) -> None:
        """Rename each staged temp file to its pack name (*staged*: (temp, name) pairs) and
        insert *rows* (algorithm key, raw digest, pack name, offset, size), all in one hold
        of the index's write lock; the temp files are gone either way.

        The caller gives the rows sorted: random digests otherwise land on random pages
        of the index, and a commit writes every page it touched."""
        now = time.time()
        # The statements' values are made before the lock is taken.
        statements = [
            (_insert_rows(len(part)), [v for row in part for v in (*row, now)])
            for part in _parts(list(rows), _ROWS_PER_INSERT)
        ]
        # The packs appear in packs/ and get their rows in one hold of the index's write
        # lock, which compaction also takes: it never sees a pack whose rows are coming.
        try:
            with self._transaction() as conn:
                for temp, name in staged:
                    self._publish(temp, name)
                for statement, values in statements:
                    conn.execute(statement, values)
        except BaseException:
            for temp, _ in staged:  # those not renamed yet
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            raise

    def _write_temp(self, parts: Sequence[bytes]) -> str:
        """A durable temp file holding *parts* back to back; returns its path."""
        temp = self._new_temp()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                write_parts(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StoreError(f"Cannot write a pack in {os.path.dirname(temp)}: {exc}") from exc
        return temp

    def _publish(self, temp: str, name: str) -> None:
        """Rename the temp file to pack *name*, durably; the temp file is gone either way."""
        final = self.pack_path(name)
        try:
            new_folder = not os.path.isdir(self.folder)
            os.makedirs(self.folder, exist_ok=True)
            os.replace(temp, final)
            fsync_dir(self.folder)
            if new_folder:
                fsync_dir(os.path.dirname(self.folder))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StoreError(f"Cannot write pack {final}: {exc}") from exc

    # -- reading -------------------------------------------------------------------------

    def pack_path(self, name: str) -> str:
        return os.path.join(self.folder, name + PACK_SUFFIX)

    def read(self, digest: Digest) -> bytes | None:
        """The packed blob's bytes (not verified), or None when it is not packed."""
        for _attempt in range(2):
            location = self.locate([digest]).get(digest)
            if location is None:
                return None
            try:
                return self._read_at(location)
            except FileNotFoundError:
                continue  # compaction moved it since the lookup: look again
        raise StoreError(f"The pack holding blob {digest} is missing from {self.folder}.")

    def read_many(
        self, digests: Iterable[Digest], *, located: Mapping[Digest, Location] | None = None
    ) -> Iterator[tuple[Digest, bytes]]:
        """The bytes of those of *digests* that are packed, one open per pack; digests
        that are not packed are left out. *located*: where the caller found them just
        before (:meth:`locate`), not looked up again; a blob whose pack compaction
        removed since is looked up anew."""
        wanted = set(digests)
        for _attempt in range(2):
            by_pack: dict[str, list[tuple[Digest, Location]]] = {}
            found = self.locate(wanted) if located is None else located
            located = None
            for digest, location in found.items():
                by_pack.setdefault(location.pack, []).append((digest, location))
            moved: set[Digest] = set()
            for pack, members in by_pack.items():
                try:
                    fd = os.open(self.pack_path(pack), os.O_RDONLY)
                except FileNotFoundError:
                    moved.update(d for d, _ in members)
                    continue
                try:
                    members.sort(key=lambda item: item[1].offset)
                    for run in _runs(members):
                        yield from _read_run(fd, run, pack)
                        wanted.difference_update(d for d, _ in run)
                finally:
                    os.close(fd)
            if not moved:
                return
            wanted &= moved
        raise StoreError(f"Packs of {len(wanted)} blobs are missing from {self.folder}.")

    def read_located(self, location: Location) -> bytes:
        """What *location* holds: up to its size, fewer bytes when the pack is shorter
        than the index says; FileNotFoundError when the pack is gone."""
        fd = os.open(self.pack_path(location.pack), os.O_RDONLY)
        try:
            return os.pread(fd, location.size, location.offset)
        finally:
            os.close(fd)

    def _read_at(self, location: Location) -> bytes:
        fd = os.open(self.pack_path(location.pack), os.O_RDONLY)
        try:
            return _pread_exact(fd, location, location.pack)
        finally:
            os.close(fd)

    # -- reclaiming space ----------------------------------------------------------------

    def pack_files(self) -> dict[str, os.stat_result]:
        found: dict[str, os.stat_result] = {}
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return found
        for entry in entries:
            if entry.name.endswith(PACK_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    found[entry.name[: -len(PACK_SUFFIX)]] = entry.stat(follow_symlinks=False)
        return found

    def usage(self) -> dict[str, PackUsage]:
        """Per pack: the rows that point into it, their bytes and their latest write."""
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return {}
            try:
                rows = conn.execute(
                    "SELECT pack, COUNT(*), SUM(size), MAX(written) FROM packed GROUP BY pack"
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"The pack index {self._index_path} failed: {exc}") from exc
        return {
            pack: PackUsage(int(count), int(total), float(latest))
            for pack, count, total, latest in rows
        }

    def forget_missing_packs(self) -> int:
        """Delete the rows of packs whose file is gone (removed behind the index, as a
        user may do to a cache); returns how many. Under the write lock, so that a pack
        being published or rewritten is never taken for a missing one."""
        with self._transaction() as conn:
            names = [name for (name,) in conn.execute("SELECT DISTINCT pack FROM packed")]
            gone = [(name,) for name in names if not os.path.exists(self.pack_path(name))]
            conn.executemany("DELETE FROM packed WHERE pack = ?", gone)
        return len(gone)

    def evict(self, name: str, *, written_before: float) -> int | None:
        """Forget every blob of pack *name* and delete it, unless one of its blobs was
        written or touched at or after *written_before* (then None: it is in use);
        returns how many blobs it held."""
        with self._transaction() as conn:
            used = conn.execute(
                "SELECT 1 FROM packed WHERE pack = ? AND written >= ? LIMIT 1",
                (name, written_before),
            )
            if used.fetchone() is not None:
                return None
            count = conn.execute("DELETE FROM packed WHERE pack = ?", (name,)).rowcount
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pack_path(name))
            return count

    def compact(self, *, grace_seconds: float, dry_run: bool = False) -> CompactReport:
        """Delete packs nothing points at (older than the grace period) and rewrite packs
        that are mostly dead space."""
        report = CompactReport()
        files = self.pack_files()
        live = {name: used.live_bytes for name, used in self.usage().items()}
        cutoff = time.time() - grace_seconds
        for name, st in files.items():
            used = live.get(name, 0)
            if used == 0:
                if st.st_mtime >= cutoff:
                    continue  # a writer may be about to insert its rows
                if dry_run or self._delete_if_unused(name):
                    report.packs_deleted += 1
                    report.bytes_reclaimed += st.st_size
            elif used < st.st_size * REWRITE_BELOW:
                report.packs_rewritten += 1
                report.bytes_reclaimed += st.st_size - used
                if not dry_run:
                    self._rewrite(name)
        return report

    def _delete_if_unused(self, name: str) -> bool:
        """Delete the pack if no row names it (checked under the index's write lock, which
        a writer holds from its pack's rename to its rows' commit); True when deleted."""
        with self._transaction() as conn:
            used = conn.execute("SELECT 1 FROM packed WHERE pack = ? LIMIT 1", (name,))
            if used.fetchone() is not None:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pack_path(name))
            return True

    def _rewrite(self, old: str) -> None:
        with self._lock:
            conn = self._connection(create=False)
            assert conn is not None
            try:
                rows = conn.execute(
                    "SELECT alg, digest, offset, size FROM packed WHERE pack = ?", (old,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"The pack index {self._index_path} failed: {exc}") from exc
        try:
            fd = os.open(self.pack_path(old), os.O_RDONLY)
        except FileNotFoundError:
            return  # another collector rewrote or removed it meanwhile
        try:
            kept = [(alg, raw, os.pread(fd, size, offset)) for alg, raw, offset, size in rows]
        finally:
            os.close(fd)
        new = os.urandom(12).hex()
        offset = 0
        placed = []
        parts = []
        for alg, raw, data in kept:
            if Algorithm.parse(alg).hasher(data).digest() != raw:
                continue  # a damaged blob stays where it is, for fsck to name
            placed.append((new, offset, alg, raw, old))
            parts.append(data)
            offset += len(data)
        temp = self._write_temp(parts)
        with self._transaction() as conn:
            self._publish(temp, new)
            moved = 0
            for row in placed:
                moved += conn.execute(
                    "UPDATE packed SET pack = ?, offset = ? "
                    "WHERE alg = ? AND digest = ? AND pack = ?",
                    row,
                ).rowcount
            still = conn.execute("SELECT 1 FROM packed WHERE pack = ? LIMIT 1", (old,))
            old_is_empty = still.fetchone() is None
        # Only once the rows point at the new pack for good: a crash or a failed commit
        # before this line leaves both packs, never rows pointing at a deleted one.
        if moved == 0:
            # Another collector moved them first: this copy is not needed.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pack_path(new))
        if old_is_empty:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pack_path(old))


_RUN_BYTES = 1024 * 1024
_RUN_GAP = 64 * 1024


def _runs(
    members: list[tuple[Digest, Location]],
) -> Iterator[list[tuple[Digest, Location]]]:
    """*members* (sorted by offset) cut into runs read with one ``pread`` each: blobs a
    version's log packed back to back are read a megabyte at a time, not a syscall per
    blob; a gap of dead bytes up to :data:`_RUN_GAP` is read over, a larger one is not."""
    run: list[tuple[Digest, Location]] = []
    start = end = 0
    for member in members:
        location = member[1]
        if run and (
            location.offset < end
            or location.offset - end > _RUN_GAP
            or location.offset + location.size - start > _RUN_BYTES
        ):
            yield run
            run = []
        if not run:
            start = location.offset
        run.append(member)
        end = location.offset + location.size
    if run:
        yield run


def _read_run(
    fd: int, run: list[tuple[Digest, Location]], pack: str
) -> Iterator[tuple[Digest, bytes]]:
    if len(run) == 1:
        digest, location = run[0]
        yield digest, _pread_exact(fd, location, pack)
        return
    start = run[0][1].offset
    last = run[-1][1]
    data = os.pread(fd, last.offset + last.size - start, start)
    for digest, location in run:
        begin = location.offset - start
        if begin + location.size > len(data):
            # Past the pack's end: read alone, it raises naming the truncated blob.
            yield digest, _pread_exact(fd, location, pack)
            continue
        yield digest, data[begin : begin + location.size]


def _pread_exact(fd: int, location: Location, pack: str) -> bytes:
    data = os.pread(fd, location.size, location.offset)
    if len(data) != location.size:
        raise StoreError(
            f"Pack {pack} is truncated: {location.size} bytes at offset {location.offset} "
            f"were expected, {len(data)} are there."
        )
    return data
