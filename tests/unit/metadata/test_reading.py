"""A connection that only reads (``reading``): on SQLite it reads beside a writer's open
transaction instead of waiting for its lock, and it refuses to write."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from soko.metadata.engine import open_engine, reading, sqlite_url
from soko.metadata.schema import users
from soko.service.catalog import now


def test_a_reading_connection_reads_beside_a_write_in_progress(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "meta.db"))
    with engine.begin() as conn:
        conn.execute(insert(users).values(name="ann", is_admin=False, created_at=now()))
    seen: list[list[str]] = []
    with engine.begin() as writer:  # holds SQLite's write lock until it commits
        writer.execute(insert(users).values(name="bob", is_admin=False, created_at=now()))

        def read() -> None:
            with reading(engine) as conn:
                seen.append(list(conn.execute(select(users.c.name)).scalars()))

        looking = threading.Thread(target=read)
        looking.start()
        looking.join(timeout=30)  # a BEGIN IMMEDIATE would wait here for the writer
        alive = looking.is_alive()
    looking.join()
    assert not alive
    assert seen == [["ann"]]  # what was committed when it began
    engine.dispose()


def test_a_reading_connection_refuses_to_write(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path / "meta.db"))
    with reading(engine) as conn, pytest.raises(RuntimeError, match="may not write"):
        conn.execute(insert(users).values(name="ann", is_admin=False, created_at=now()))
    with engine.connect() as conn:
        assert list(conn.execute(select(users.c.name)).scalars()) == []
    engine.dispose()
