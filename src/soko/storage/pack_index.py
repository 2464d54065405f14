"""The index of packed blobs: ``packs/index.db``, SQLite, one row per packed blob.

    packed(alg, digest) -> pack, offset, size, written

One connection per process writes (a connection inherited through ``fork()`` is left
alone), in WAL mode with ``synchronous = FULL``: a committed row survives a power cut, as
the pack it points at does. Writes take the database's write lock (``BEGIN IMMEDIATE``),
which is also what orders a pack's publication against compaction (see :mod:`.packs`).
Lookups run on connections of their own that only read, a few kept open: WAL lets them read
beside the writer, so a server's lookups for one upload batch do not wait for another
batch's rows to be committed, nor hold its commit up.

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.errors`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from soko.core.digests import Algorithm, Digest
from soko.errors import StoreError

INDEX_NAME = "index.db"

_PARAMS = 500  # digests per IN (...) query, well below SQLite's limit on parameters
_BUSY_MS = 60_000
_IDLE_READERS = 4  # connections that only read, kept open between lookups
WAL_CHECKPOINT_PAGES = 10_000
"""Pages the write-ahead log grows to (40 MiB) before they are copied into the database.
Random digests land on random pages: a server committing a batch of 1,024 uploaded blobs
into an index of a million touches about a thousand pages, and with SQLite's default of
1,000 every such commit copied its pages once more. Ten times fewer copies, each page
copied once for the several commits that touched it: a million rows inserted in commits
of 1,024 took about 28 % less time."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packed (
    alg TEXT NOT NULL,
    digest BLOB NOT NULL,
    pack TEXT NOT NULL,
    offset INTEGER NOT NULL,
    size INTEGER NOT NULL,
    written REAL NOT NULL,
    PRIMARY KEY (alg, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS packed_by_pack ON packed (pack);
"""


class Location(NamedTuple):
    """Where a packed blob lies. A tuple: a server serving a batch of 1,024 small blobs
    makes one for each, and a frozen dataclass costs three times as much to make."""

    pack: str
    offset: int
    size: int
    written: float


class PackUsage(NamedTuple):
    blobs: int
    live_bytes: int
    last_written: float


class PackIndex:
    """The index of the packs in *folder*; safe to share between threads and processes."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._index_path = os.path.join(self.folder, INDEX_NAME)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        _instances.add(self)

    def _after_fork_in_child(self) -> None:
        # A lock another thread held at fork() would stay held in the child forever, and
        # SQLite must not use (nor close) a connection opened by the parent: keep it
        # referenced, untouched, and open a new one when needed.
        self._lock = threading.Lock()
        self._readers_lock = threading.Lock()
        if self._conn is not None:
            _inherited_connections.append(self._conn)
            self._conn = None
        _inherited_connections.extend(self._readers)
        self._readers = []

    # -- the index -----------------------------------------------------------------------

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        """The index, opened once per process; None when it does not exist and *create*
        is false (a store that never packed a blob pays no query)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if not create and not os.path.exists(self._index_path):
            return None
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create {self.folder}: {exc}") from exc
        # Switching a new database to WAL takes an exclusive lock that SQLite does not
        # wait for: two processes creating the index at once see "database is locked",
        # and the later one simply tries again.
        deadline = time.monotonic() + _BUSY_MS / 1000
        while True:
            try:
                conn = self._open_index()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(
                        f"Cannot open the pack index {self._index_path}: {exc}"
                    ) from exc
                time.sleep(0.02)
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot open the pack index {self._index_path}: {exc}") from exc
        # A connection inherited through fork() must not be used by the child.
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _open_index(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._index_path,
            timeout=_BUSY_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed row survives a power cut, as the pack it points at does.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection to look rows up on, None when the index does not exist. Once this
        process has opened the index (and so made its table), a read-only connection of
        its own that only reads and waits for no writer; before, the writer's, under its
        lock."""
        if self._conn is None or self._pid != os.getpid():
            with self._lock:
                yield self._connection(create=False)
            return
        with self._readers_lock:
            reader = self._readers.pop() if self._readers else None
        if reader is None:
            try:
                reader = sqlite3.connect(
                    self._index_path,
                    timeout=_BUSY_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
                reader.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot open the pack index {self._index_path}: {exc}") from exc
        try:
            yield reader
        finally:
            with self._readers_lock:
                kept = len(self._readers) < _IDLE_READERS
                if kept:
                    self._readers.append(reader)
            if not kept:
                reader.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection(create=True)
            assert conn is not None
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # Also after a failed COMMIT, so that the next BEGIN starts clean; SQLite
                # may have rolled back on its own already.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"The pack index {self._index_path} failed: {exc}") from exc
                raise

    def locate(self, digests: Iterable[Digest]) -> dict[Digest, Location]:
        """Where each of *digests* that is packed lives; one query per 500 digests."""
        return {
            wanted[raw]: Location(pack, offset, size, written)
            for wanted, rows in self._query(digests, ", pack, offset, size, written")
            for raw, pack, offset, size, written in rows
        }

    def present(self, digests: Iterable[Digest]) -> set[Digest]:
        """Those of *digests* that are packed (cheaper than :meth:`locate`: the commit and
        the log's missing-blob question ask it for every blob of a version)."""
        return {wanted[raw] for wanted, rows in self._query(digests, "") for (raw,) in rows}

    def present_raw(self, algorithm: Algorithm, raws: list[bytes]) -> set[bytes]:
        """Those of *raws* (raw digests of *algorithm*) that are packed: the missing-blob
        question over a manifest's columns, with no :class:`Digest` made. *raws* sorted
        read the index's pages in order."""
        present: set[bytes] = set()
        if not raws:
            return present
        key = ALG_KEYS[algorithm]
        with self._reading() as conn:
            if conn is None:
                return present
            try:
                for start in range(0, len(raws), _PARAMS):
                    part = raws[start : start + _PARAMS]
                    rows = conn.execute(
                        "SELECT digest FROM packed "
                        f"WHERE alg = ? AND digest IN ({','.join('?' * len(part))})",
                        (key, *part),
                    ).fetchall()
                    present.update(raw for (raw,) in rows)
            except sqlite3.Error as exc:
                raise StoreError(f"The pack index {self._index_path} failed: {exc}") from exc
        return present

    def _query(
        self, digests: Iterable[Digest], columns: str
    ) -> Iterator[tuple[dict[bytes, Digest], list[Any]]]:
        """Rows of ``digest`` and *columns* for *digests*, in batches of 500, each with the
        map from raw digest back to the asked :class:`Digest`. A batch at a time: the rows
        of a million digests are not all held at once."""
        by_alg = _by_algorithm(digests)
        if not by_alg:
            return
        with self._reading() as conn:
            if conn is None:
                return
            try:
                for key, wanted in by_alg.items():
                    raws = list(wanted)
                    for start in range(0, len(raws), _PARAMS):
                        part = raws[start : start + _PARAMS]
                        rows = conn.execute(
                            f"SELECT digest{columns} FROM packed "
                            f"WHERE alg = ? AND digest IN ({','.join('?' * len(part))})",
                            (key, *part),
                        ).fetchall()
                        yield wanted, rows
            except sqlite3.Error as exc:
                raise StoreError(f"The pack index {self._index_path} failed: {exc}") from exc

    def touch(self, digests: Iterable[Digest]) -> set[Digest]:
        """Refresh ``written`` of those of *digests* that are packed; returns them.

        Atomic against :meth:`delete`: a blob is either refreshed (and garbage collection's
        check of its age then spares it) or reported absent, to be written again.
        """
        wanted = list(digests)
        present: set[Digest] = set()
        if not wanted or self._connection(create=False) is None:
            return present
        now = time.time()
        with self._transaction() as conn:
            for digest in wanted:
                cursor = conn.execute(
                    "UPDATE packed SET written = ? WHERE alg = ? AND digest = ?",
                    (now, digest.algorithm.key, digest.raw),
                )
                if cursor.rowcount:
                    present.add(digest)
        return present

    def delete(self, digests: Iterable[Digest], *, written_before: float | None = None) -> None:
        """Forget packed blobs; their bytes stay in their packs until :meth:`compact`.

        With *written_before*, a blob refreshed since then (a writer about to reference
        it again) is kept: the age check and the delete are one statement.
        """
        if self._connection(create=False) is None:
            return
        cutoff = float("inf") if written_before is None else written_before
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM packed WHERE alg = ? AND digest = ? AND written < ?",
                [(digest.algorithm.key, digest.raw, cutoff) for digest in digests],
            )

    def forget(self, digest: Digest, location: Location) -> bool:
        """Delete the row of *digest* if it still points at *location* (a blob found
        damaged there, see :mod:`.quarantine`); True when it did. A row that compaction
        moved meanwhile is left alone: its new place is another copy."""
        if self._connection(create=False) is None:
            return False
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM packed WHERE alg = ? AND digest = ? AND pack = ? AND offset = ?",
                (digest.algorithm.key, digest.raw, location.pack, location.offset),
            )
            return bool(cursor.rowcount)


ALG_KEYS = {algorithm: algorithm.key for algorithm in Algorithm}
_instances: weakref.WeakSet[PackIndex] = weakref.WeakSet()
_inherited_connections: list[sqlite3.Connection] = []


def _reset_after_fork() -> None:
    for packs in list(_instances):
        packs._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _by_algorithm(digests: Iterable[Digest]) -> dict[str, dict[bytes, Digest]]:
    """*digests* by the index's algorithm key, then by raw bytes."""
    by_alg: dict[str, dict[bytes, Digest]] = {}
    keys = ALG_KEYS
    for digest in digests:
        key = keys[digest.algorithm]
        group = by_alg.get(key)
        if group is None:
            group = by_alg[key] = {}
        group[digest.raw] = digest
    return by_alg
