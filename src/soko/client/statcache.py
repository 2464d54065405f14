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

The digests are kept a block of inodes to a row (:data:`BLOCK_BITS`): the row of a device,
algorithm and ``inode >> BLOCK_BITS`` holds the packed stats of its files and their digests,
one array each. The files of a folder made together have inodes close together, so a
million files are a thousand rows, read in a thousand statements, and a lookup matches
stats against them in C (records cut from a row by ``struct`` as packed keys of a dict,
``map``) rather than with a Python object per file and row.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import operator
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from soko.client.hashing import FileStat, StatKey
from soko.core.digests import Algorithm, Digest, cut

STAT_CACHE_FILE = "statcache.db"
"""Its file, under the cache dir."""
RACY_SECONDS = 1.0
COPY_MIN = 1024 * 1024
"""Smaller blobs are not remembered as copies: the client cache's packs hold them, and a
row per small file would cost more than the file."""
BLOCK_BITS = 10
"""A row holds the records of up to 1,024 consecutive inodes of one device."""
LAYOUT = 2
"""``PRAGMA user_version`` of the layout with digests by inode block. Layout 1 (a row per
file, table ``file_digests``) is dropped when a file of it is opened: its records cost one
re-hash of each file."""
_BATCH = 500
_RECORD = struct.Struct("<QQqqq")
"""A file's stat in a row: device, inode, size, mtime_ns, ctime_ns."""
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_INODE = itemgetter(1)


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
                _create(conn)
            except sqlite3.Error:
                return None
            self._local.conn = conn
        return conn

    def digests(self, stats: Sequence[StatKey], algorithm: Algorithm) -> list[bytes | None]:
        """The recorded raw digest of each stat (None where no record matches it exactly),
        in the order of *stats*."""
        conn = self._conn()
        if conn is None or not stats:
            return [None] * len(stats)
        width = algorithm.raw_size
        try:
            # A record matches a stat exactly when their packed bytes are equal: packed
            # keys hash and compare in C without an int object per field, and a row's
            # records are cut into keys by struct without being unpacked.
            keys = list(itertools.starmap(_RECORD.pack, stats))
            blocks = _blocks(stats)
            table: dict[bytes, bytes] = {}
            for records, raws in _rows_of_blocks(conn, algorithm, blocks):
                count = len(records) // _RECORD.size
                if len(records) != count * _RECORD.size or len(raws) != count * width:
                    raise ValueError("a row's arrays differ in length")
                table.update(zip(cut(records, _RECORD.size), cut(raws, width), strict=True))
        except (sqlite3.Error, struct.error, ValueError, TypeError):
            # A row that does not unpack (arrays of unequal length, not bytes): a re-hash.
            return [None] * len(stats)
        return list(map(table.get, keys))

    def record(self, items: Iterable[tuple[StatKey, Digest]], *, trusted: bool = False) -> None:
        """Remember digests; *trusted* for files soko itself just wrote and verified.

        Each block's row is read, merged and written back in one transaction that holds
        the write lock, so that processes recording into one block keep each other's
        records; a newer stat of an inode replaces its older one."""
        horizon = time.time_ns() - int(RACY_SECONDS * 1e9)
        kept = [(s, d) for s, d in items if trusted or (s[3] < horizon and s[4] < horizon)]
        conn = self._conn()
        if conn is None or not kept:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            while kept:
                # Usually one algorithm: compared by identity, as an enum hashes in Python.
                algorithm = kept[0][1].algorithm
                fresh = sorted([(s, d.raw) for s, d in kept if d.algorithm is algorithm])
                kept = [(s, d) for s, d in kept if d.algorithm is not algorithm]
                _write_blocks(conn, algorithm, fresh)
            conn.execute("COMMIT")
        except BaseException as exc:
            _roll_back(conn)
            if not isinstance(exc, (sqlite3.Error, struct.error, ValueError, TypeError)):
                raise

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
            _roll_back(conn)
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


def _create(conn: sqlite3.Connection) -> None:
    """The tables, once per file: a file of an older layout loses its digests (they
    cost a re-hash) and keeps its copies."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= LAYOUT:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < LAYOUT:
            conn.execute("DROP TABLE IF EXISTS file_digests")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS digest_blocks (dev INTEGER, alg TEXT,"
                " block INTEGER, records BLOB, digests BLOB,"
                " PRIMARY KEY (dev, alg, block)) WITHOUT ROWID"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS copies (alg TEXT, digest BLOB, path TEXT,"
                " dev INTEGER, ino INTEGER, size INTEGER, mtime INTEGER, ctime INTEGER,"
                " PRIMARY KEY (alg, digest, path)) WITHOUT ROWID"
            )
            conn.execute(f"PRAGMA user_version = {LAYOUT}")
        conn.execute("COMMIT")
    except BaseException:
        _roll_back(conn)
        raise


def _roll_back(conn: sqlite3.Connection) -> None:
    # Ctrl-C included: a connection left inside its transaction would hold the
    # database's write lock against every other process.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _signed(number: int) -> int:
    """*number* (a device number, unsigned 64 bits) as SQLite's signed INTEGER holds it."""
    return number - (1 << 64) if number >= 1 << 63 else number


def _rows_of_blocks(
    conn: sqlite3.Connection, algorithm: Algorithm, blocks: list[tuple[int, int]]
) -> Iterator[tuple[bytes, bytes]]:
    """(records, digests) of the rows of *blocks* (sorted (device, block) pairs), a run of
    consecutive blocks in one statement."""
    query = (
        "SELECT records, digests FROM digest_blocks"
        " WHERE dev = ? AND alg = ? AND block BETWEEN ? AND ?"
    )
    start = 0
    while start < len(blocks):
        dev, low = blocks[start]
        end = start + 1
        while end < len(blocks) and blocks[end] == (dev, low + end - start):
            end += 1
        yield from conn.execute(query, (_signed(dev), algorithm.value, low, low + end - start - 1))
        start = end


def _blocks(stats: Sequence[StatKey]) -> list[tuple[int, int]]:
    """The sorted (device, block) pairs of *stats*, in C: usually all of one device."""
    numbers = map(operator.rshift, map(_INODE, stats), itertools.repeat(BLOCK_BITS))
    devices = set(map(_FIRST, stats))
    if len(devices) == 1:
        (device,) = devices
        return [(device, block) for block in sorted(set(numbers))]
    return sorted(set(zip(map(_FIRST, stats), numbers, strict=True)))


def _block_of(record: tuple[StatKey, bytes]) -> tuple[int, int]:
    return record[0][0], record[0][1] >> BLOCK_BITS


def _write_blocks(
    conn: sqlite3.Connection, algorithm: Algorithm, fresh: list[tuple[StatKey, bytes]]
) -> None:
    """Merge *fresh* (stats and raw digests, sorted by device and inode) into the rows of
    their blocks, a block at a time: a slice of new files costs a few C-level joins per
    block, not a Python step per file."""
    start = 0
    while start < len(fresh):
        dev, block = _block_of(fresh[start])
        end = bisect.bisect_left(fresh, (dev, block + 1), lo=start, key=_block_of)
        key = (_signed(dev), algorithm.value, block)
        row = conn.execute(
            "SELECT records, digests FROM digest_blocks WHERE dev = ? AND alg = ? AND block = ?",
            key,
        ).fetchone()
        records, digests = _merged(row, fresh[start:end], algorithm.raw_size)
        conn.execute(
            "INSERT OR REPLACE INTO digest_blocks VALUES (?,?,?,?,?)", (*key, records, digests)
        )
        start = end


def _packed(records: list[tuple[StatKey, bytes]]) -> tuple[bytes, bytes]:
    return (
        b"".join(itertools.starmap(_RECORD.pack, map(_FIRST, records))),
        b"".join(map(_SECOND, records)),
    )


def _merged(
    row: tuple[bytes, bytes] | None, fresh: list[tuple[StatKey, bytes]], width: int
) -> tuple[bytes, bytes]:
    """A block's (records, digests): *fresh* over *row*'s, one per (device, inode)."""
    if row is None:
        return _packed(fresh)
    try:
        old = list(
            zip(
                _RECORD.iter_unpack(row[0]),
                map(_FIRST, struct.Struct(f"{width}s").iter_unpack(row[1])),
                strict=True,
            )
        )
    except (struct.error, ValueError, TypeError):
        return _packed(fresh)  # a damaged row is written anew
    # Usually other files of the block (a neighbouring folder hashed in another slice):
    # the row's bytes are kept as they are, without a Python step per record. A block
    # is one device's, so inodes alone tell its files apart.
    if set(map(_INODE, map(_FIRST, old))).isdisjoint(map(_INODE, map(_FIRST, fresh))):
        records, digests = _packed(fresh)
        return row[0] + records, row[1] + digests
    kept = {(stat[0], stat[1]): (stat, raw) for stat, raw in old}
    kept.update(((stat[0], stat[1]), (stat, raw)) for stat, raw in fresh)
    return _packed(list(kept.values()))


def _rows_where_in(
    conn: sqlite3.Connection, query: str, algorithm: Algorithm, keys: list[Any]
) -> Iterator[Any]:
    """The rows of *query* (``alg = ?`` then ``IN ({marks})``) for all *keys*, asked a
    batch at a time: SQLite caps the parameters of one statement."""
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(query.format(marks=marks), [algorithm.value, *chunk])
