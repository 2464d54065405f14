"""The stat cache: what soko knows of files outside its stores, for as long as a file's
stat (device, inode, size, mtime_ns, ctime_ns) stays the same.

- **Digests**: stat and algorithm → digest. A file whose stat matches a recorded one is not
  read again, neither to log it (re-logging an unchanged folder hashes nothing) nor to
  download it (a file already in the root with the wanted digest is kept).
- **Copies**: digest → the paths where a download placed its verified bytes (large blobs
  only, see :data:`COPY_MIN`). A later download of the same blob copies one of them instead
  of fetching it again, and hashes what it copies; a path whose stat changed is forgotten.

Kept in SQLite under the cache dir and shared by processes; a failure to read or write it
only costs a re-hash or a fetch, never a wrong answer.

A file modified within :data:`RACY_SECONDS` of being hashed is not recorded: a second write
in the same timestamp tick would otherwise leave an identical stat over other bytes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from soko.client.hashing import FileStat
from soko.core.digests import Algorithm, Digest

STAT_CACHE_FILE = "statcache.db"
"""Its file, under the cache dir."""
RACY_SECONDS = 1.0
COPY_MIN = 1024 * 1024
"""Smaller blobs are not remembered as copies: the client cache's packs hold them, and a
row per small file would cost more than the file."""
_BATCH = 500


class StatCache:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection | None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self._path, timeout=10, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS file_digests (ino INTEGER, dev INTEGER,"
                    " alg TEXT, size INTEGER, mtime INTEGER, ctime INTEGER, digest BLOB,"
                    " PRIMARY KEY (ino, dev, alg)) WITHOUT ROWID"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS copies (alg TEXT, digest BLOB, path TEXT,"
                    " dev INTEGER, ino INTEGER, size INTEGER, mtime INTEGER, ctime INTEGER,"
                    " PRIMARY KEY (alg, digest, path)) WITHOUT ROWID"
                )
            except sqlite3.Error:
                return None
            self._local.conn = conn
        return conn

    def lookup(self, stats: Iterable[FileStat], algorithm: Algorithm) -> dict[FileStat, Digest]:
        """The recorded digest of each stat that matches a record exactly."""
        # A FileStat is a tuple: a row's (dev, ino, size, mtime, ctime) finds the stat it
        # matches exactly, in one dict lookup.
        wanted: dict[tuple[int, ...], FileStat] = {s: s for s in stats}
        conn = self._conn()
        found: dict[FileStat, Digest] = {}
        if conn is None or not wanted:
            return found
        inodes = sorted({s.inode for s in wanted.values()})
        try:
            for dev, ino, size, mtime, ctime, raw in _rows_of_inodes(conn, algorithm, inodes):
                stat = wanted.get((dev, ino, size, mtime, ctime))
                if stat is not None:
                    found[stat] = Digest(algorithm, raw)
        except sqlite3.Error:
            return {}
        return found

    def record(self, items: Iterable[tuple[FileStat, Digest]], *, trusted: bool = False) -> None:
        """Remember digests; *trusted* for files soko itself just wrote and verified."""
        horizon = time.time_ns() - int(RACY_SECONDS * 1e9)
        rows: list[tuple[object, ...]] = [
            (s.inode, s.device, d.algorithm.value, s.size, s.mtime_ns, s.ctime_ns, d.raw)
            for s, d in items
            if trusted or (s.mtime_ns < horizon and s.ctime_ns < horizon)
        ]
        self._write("INSERT OR REPLACE INTO file_digests VALUES (?,?,?,?,?,?,?)", rows)

    def _write(self, statement: str, rows: list[tuple[object, ...]]) -> None:
        """Run *statement* for each row in one transaction; a database that fails only
        costs what it would have remembered."""
        conn = self._conn()
        if conn is None or not rows:
            return
        try:
            conn.execute("BEGIN")
            conn.executemany(statement, rows)
            conn.execute("COMMIT")
        except BaseException as exc:
            # Ctrl-C included: a connection left inside its transaction would hold the
            # database's write lock against every other process.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if not isinstance(exc, sqlite3.Error):
                raise

    def remember_copies(self, items: Iterable[tuple[str, Digest]]) -> None:
        """Remember that each path holds its digest's bytes now: files a download has just
        written and verified. Paths of files under :data:`COPY_MIN` are skipped."""
        rows: list[tuple[object, ...]] = []
        for path, digest in items:
            try:
                st = FileStat.of(os.stat(path))
            except OSError:
                continue
            if st.size >= COPY_MIN:
                rows.append((digest.algorithm.value, digest.raw, os.path.abspath(path), *st))
        self._write("INSERT OR REPLACE INTO copies VALUES (?,?,?,?,?,?,?,?)", rows)

    def copies(self, digests: Iterable[Digest]) -> dict[Digest, list[str]]:
        """The remembered copies of *digests* whose files still have the stat they had;
        those whose stat changed (edited, replaced, deleted) are forgotten."""
        by_algorithm: dict[Algorithm, list[bytes]] = {}
        for digest in dict.fromkeys(digests):
            by_algorithm.setdefault(digest.algorithm, []).append(digest.raw)
        conn = self._conn()
        found: dict[Digest, list[str]] = {}
        if conn is None or not by_algorithm:
            return found
        stale: list[tuple[object, ...]] = []
        try:
            for algorithm, raws in by_algorithm.items():
                rows = _rows_where_in(
                    conn,
                    "SELECT digest, path, dev, ino, size, mtime, ctime FROM copies "
                    "WHERE alg = ? AND digest IN ({marks})",
                    algorithm,
                    raws,
                )
                for raw, path, *recorded in rows:
                    if _stat_of(path) != tuple(recorded):
                        stale.append((algorithm.value, raw, path, *recorded))
                        continue
                    found.setdefault(Digest(algorithm, bytes(raw)), []).append(path)
        except sqlite3.Error:
            return {}
        # Only the rows as read: another process may have recorded the file anew.
        self._write(
            "DELETE FROM copies WHERE alg = ? AND digest = ? AND path = ? AND dev = ?"
            " AND ino = ? AND size = ? AND mtime = ? AND ctime = ?",
            stale,
        )
        return found

    def forget_copy(self, digest: Digest, path: str) -> None:
        """Forget *path* as a copy of *digest* (it was found not to hold its bytes)."""
        self._write(
            "DELETE FROM copies WHERE alg = ? AND digest = ? AND path = ?",
            [(digest.algorithm.value, digest.raw, os.path.abspath(path))],
        )


def _stat_of(path: str) -> tuple[int, ...] | None:
    try:
        return tuple(FileStat.of(os.stat(path)))
    except OSError:
        return None


_RANGE = 8192
"""Inodes asked for at a time, as one range when they lie close together."""


def _rows_of_inodes(
    conn: sqlite3.Connection, algorithm: Algorithm, inodes: list[int]
) -> Iterator[Any]:
    """The file_digests rows of *algorithm* for the sorted *inodes* (and, asked as a
    range, some of the inodes in between). The files of a folder made together have
    inodes close together, so a million are asked in a hundred range queries rather
    than in thousands of ``IN`` lists."""
    query = (
        "SELECT dev, ino, size, mtime, ctime, digest FROM file_digests "
        "WHERE ino BETWEEN ? AND ? AND alg = ?"
    )
    for start in range(0, len(inodes), _RANGE):
        chunk = inodes[start : start + _RANGE]
        low, high = chunk[0], chunk[-1]
        if high - low < 4 * len(chunk):
            yield from conn.execute(query, (low, high, algorithm.value))
        else:
            yield from _rows_where_in(
                conn,
                "SELECT dev, ino, size, mtime, ctime, digest FROM file_digests "
                "WHERE alg = ? AND ino IN ({marks})",
                algorithm,
                chunk,
            )


def _rows_where_in(
    conn: sqlite3.Connection, query: str, algorithm: Algorithm, keys: list[Any]
) -> Iterator[Any]:
    """The rows of *query* (``alg = ?`` then ``IN ({marks})``) for all *keys*, asked a
    batch at a time: SQLite caps the parameters of one statement."""
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(query.format(marks=marks), [algorithm.value, *chunk])
