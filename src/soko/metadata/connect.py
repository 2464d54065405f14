"""Opening the embedded store's SQLite database with the standard library's ``sqlite3``.

The one place that states how soko talks to an SQLite store: the schema revision a soko
needs, the connection's pragmas, the read-only open of a store shared by another account,
and how a time is stored (as SQLAlchemy's ``DateTime`` stores it on SQLite). The engine
(:mod:`soko.metadata.engine`) builds on it; so do the short commands that read a list or
start a run without loading SQLAlchemy (:mod:`soko.service.lite`).

Imports the standard library and :mod:`soko.errors` only: never SQLAlchemy or Alembic.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from datetime import datetime
from pathlib import Path

from soko.errors import StoreError

HEAD_REVISION = "0008"
"""The newest migration: the schema revision this soko reads and writes."""

BUSY_TIMEOUT_MS = 60_000
"""How long a writer waits for another's lock before failing."""

PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    # As the pack index (soko.storage.pack_index.WAL_CHECKPOINT_PAGES): a server records
    # which project holds each uploaded blob, a row per blob at random places.
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA foreign_keys = ON",
)
"""Run on every writable connection: WAL lets readers run beside a writer, the busy
timeout makes a second writer wait instead of failing."""

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def configure(conn: sqlite3.Connection) -> None:
    """Set :data:`PRAGMAS` on *conn*, with transactions begun by the caller, not the driver."""
    conn.isolation_level = None
    for pragma in PRAGMAS:
        conn.execute(pragma)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection to the database at *path* for a reader that may not write to it or its
    folder (a store shared by another account). SQLite opens a WAL database read-only
    while its ``-shm`` file exists (a writer has it open); otherwise, in a folder the reader
    cannot write to, only as *immutable*, a snapshot taken without locks, which is what a
    listing needs."""
    uri = f"file:{urllib.parse.quote(os.fspath(path))}"
    failure: sqlite3.Error | None = None
    for query in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(
            f"{uri}?{query}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            failure = exc
            continue
        return conn
    raise StoreError(f"Cannot open the store's database {path} to read it: {failure}")


def revision(conn: sqlite3.Connection) -> str | None:
    """The schema revision of *conn*'s database; None for one without a schema."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def open_current(path: Path, *, read_only: bool) -> sqlite3.Connection | None:
    """A connection to the existing database at *path* whose schema is at
    :data:`HEAD_REVISION`; None when there is no such database, or its schema is to be
    created or migrated (or is newer), which only the engine does."""
    if not path.is_file():
        return None
    if read_only:
        conn = connect_read_only(path)
        conn.isolation_level = None
        conn.execute("PRAGMA foreign_keys = ON")
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        configure(conn)
    if revision(conn) != HEAD_REVISION:
        conn.close()
        return None
    return conn


def store_time(value: datetime) -> str:
    """*value* (UTC) as SQLAlchemy's ``DateTime`` stores it in SQLite."""
    return value.strftime(_TIME_FORMAT)


def load_time(value: str) -> datetime:
    """A time stored by :func:`store_time` (or SQLAlchemy), naive as SQLAlchemy returns it."""
    return datetime.fromisoformat(value)
