"""The Alembic migrations create exactly the tables of ``soko.metadata.schema``."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from soko.metadata.engine import HEAD_REVISION, current_revision, open_engine, sqlite_url
from soko.metadata.schema import metadata


def test_a_fresh_database_is_at_the_head_revision(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "soko.db"))
    assert current_revision(engine) == HEAD_REVISION


def test_migrations_and_schema_do_not_drift(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "soko.db"))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []
