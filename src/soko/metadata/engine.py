"""Opening a metadata database: SQLite (WAL, busy timeout, immediate write locks) or PostgreSQL.

Several processes share one SQLite store: WAL lets readers run beside a writer, the busy
timeout makes a second writer wait instead of failing, and transactions start with
``BEGIN IMMEDIATE`` so that two writers never both hold a read lock and deadlock on the
upgrade; those of a connection that only reads (:func:`reading`) take no lock. The schema
is brought to the newest migration on open, under a lock (a file lock for SQLite, an
advisory lock for PostgreSQL) so that two first opens do not race.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from soko.errors import PermissionDeniedError, StoreError
from soko.metadata.connect import BUSY_TIMEOUT_MS, configure, connect_read_only
from soko.metadata.connect import HEAD_REVISION as HEAD_REVISION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_READ_STATEMENTS = ("SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "WITH")
_READING = "soko_reading"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        configure(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READING):
            conn.exec_driver_sql("BEGIN")  # WAL: reads beside the writer, no lock taken
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "before_cursor_execute")
    def _reads_only(
        conn: Connection, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        # Deferred, a write would take the lock mid-transaction, where SQLite fails
        # rather than waits if another writer came first: a reading connection never does.
        if conn.get_execution_options().get(_READING) and not statement.lstrip().upper().startswith(
            _READ_STATEMENTS
        ):
            raise RuntimeError(f"A reading connection may not write: {statement[:60]!r}")


def reading(engine: Engine) -> Connection:
    """A connection that only reads. On SQLite its transactions begin deferred, where every
    other begins ``BEGIN IMMEDIATE`` and so waits for, and holds up, any writer (each
    request's key check and a log's possession lookups beside its upload batches'
    writes); PostgreSQL's need nothing of the kind."""
    return engine.connect().execution_options(**{_READING: True})


def open_engine(url: str) -> Engine:
    """An engine for *url* with the schema at :data:`HEAD_REVISION`."""
    engine = engine_for(url)
    _ensure_schema(engine)
    return engine


def engine_for(url: str) -> Engine:
    """An engine for *url*, its schema left as it is (see :func:`migration_plan`)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    return engine


def open_read_only_engine(path: Path) -> Engine:
    """An engine on the SQLite database at *path* for a reader that may not write to it or
    its folder (a store shared by another account). Nothing is created or migrated: the
    schema must be at :data:`HEAD_REVISION` already.

    See :func:`soko.metadata.connect.connect_read_only`.
    """
    engine = create_engine("sqlite://", creator=lambda: connect_read_only(path))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        # A change would fail in SQLite with an error that names no store: say which.
        if not statement.lstrip().upper().startswith(_READ_STATEMENTS):
            raise PermissionDeniedError(
                f"The soko store at {path.parent} is read-only for this account: it can be "
                "listed and downloaded from, not changed."
            )

    revision = current_revision(engine)
    if revision != HEAD_REVISION:
        raise StoreError(
            f"The store's database {path} is at schema revision {revision}, this soko needs "
            f"{HEAD_REVISION}, and it may not be changed by this account: open the store "
            "once as its owner."
        )
    return engine


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        # filelock: flock where there is one, the platform's own file locks elsewhere;
        # loaded only when a schema is to be migrated, not on every open.
        from filelock import FileLock

        with FileLock(f"{database}.migrate.lock"):
            yield
    else:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(7312001)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7312001)"))
                conn.commit()


def _ensure_schema(engine: Engine) -> None:
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return
    with _migration_lock(engine):
        revision = current_revision(engine)
        if revision == HEAD_REVISION:
            return
        if revision is not None and revision > HEAD_REVISION:
            raise StoreError(
                f"The metadata database is at schema revision {revision}, newer than this "
                f"soko ({HEAD_REVISION}); upgrade soko."
            )
        upgrade(engine)


@dataclass(frozen=True, slots=True)
class Migration:
    revision: str
    title: str
    """The first line of the migration's docstring."""


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What opening the database with this soko would do to its schema."""

    current: str | None
    """The database's revision; None for an empty database."""
    head: str
    pending: list[Migration]
    """The migrations to apply, oldest first; empty when the schema is current."""
    newer: bool
    """The database is at a revision this soko does not know (a newer soko's), so it
    refuses to open it."""


def migration_plan(engine: Engine) -> MigrationPlan:
    """The migrations from *engine*'s revision to :data:`HEAD_REVISION`, applying none."""
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    scripts = ScriptDirectory(os.fspath(MIGRATIONS_DIR))
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        return MigrationPlan(current, HEAD_REVISION, [], newer=True)
    steps = list(scripts.iterate_revisions(HEAD_REVISION, current or "base"))
    pending = [
        Migration(script.revision, (script.doc or "").strip().splitlines()[0].strip())
        for script in reversed(steps)
    ]
    return MigrationPlan(current, HEAD_REVISION, pending, newer=False)


def migrate(engine: Engine) -> None:
    """Bring *engine*'s schema to :data:`HEAD_REVISION` under the migration lock (what every
    open does); StoreError for a database newer than this soko."""
    _ensure_schema(engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to *revision* on *engine*."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.fspath(MIGRATIONS_DIR))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
