"""The stat cache: (device, inode, size, mtime_ns, ctime_ns, algorithm) → digest.

A file whose stat matches a recorded one is not read again, neither to log it (re-logging an
unchanged folder hashes nothing) nor to download it (a file already in the root with the
wanted digest is kept). Kept in SQLite under the cache dir and shared by processes; a
failure to read or write it only costs a re-hash, never a wrong answer.

A file modified within :data:`RACY_SECONDS` of being hashed is not recorded: a second write
in the same timestamp tick would otherwise leave an identical stat over other bytes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from soko.client.hashing import FileStat
from soko.core.digests import Algorithm, Digest

RACY_SECONDS = 1.0
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
        inodes = list({s.inode for s in wanted.values()})
        try:
            for start in range(0, len(inodes), _BATCH):
                chunk = inodes[start : start + _BATCH]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT dev, ino, size, mtime, ctime, digest FROM file_digests "
                    f"WHERE ino IN ({marks}) AND alg = ?",
                    [*chunk, algorithm.value],
                ).fetchall()
                for dev, ino, size, mtime, ctime, raw in rows:
                    stat = wanted.get((dev, ino, size, mtime, ctime))
                    if stat is not None:
                        found[stat] = Digest(algorithm, bytes(raw))
        except sqlite3.Error:
            return {}
        return found

    def record(self, items: Iterable[tuple[FileStat, Digest]], *, trusted: bool = False) -> None:
        """Remember digests; *trusted* for files soko itself just wrote and verified."""
        horizon = time.time_ns() - int(RACY_SECONDS * 1e9)
        rows = [
            (s.inode, s.device, d.algorithm.value, s.size, s.mtime_ns, s.ctime_ns, d.raw)
            for s, d in items
            if trusted or (s.mtime_ns < horizon and s.ctime_ns < horizon)
        ]
        conn = self._conn()
        if conn is None or not rows:
            return
        try:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO file_digests VALUES (?,?,?,?,?,?,?)", rows)
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
