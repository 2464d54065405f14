"""Migration 0004 adds a run's summary and history to a database that holds runs already:
they read back with an empty summary and no history, and take new data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from soko.metadata.engine import HEAD_REVISION, current_revision, upgrade
from soko.service import rundata, runs
from soko.service.store import Store


def test_runs_of_revision_0003_are_upgraded_and_take_data(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    old = create_engine(f"sqlite:///{root / 'soko.db'}")
    upgrade(old, "0003")
    with old.begin() as conn:
        conn.execute(text("INSERT INTO entities (name) VALUES ('e')"))
        conn.execute(
            text(
                "INSERT INTO projects (entity_id, name, created_at) "
                "SELECT id, 'p', :t FROM entities WHERE name = 'e'"
            ),
            {"t": datetime.now(UTC)},
        )
        conn.execute(
            text(
                "INSERT INTO runs (id, project_id, name, config, state, created_at) "
                "SELECT 'old', id, 'old', '{\"lr\": 0.1}', 'finished', :t FROM projects"
            ),
            {"t": datetime.now(UTC)},
        )
    old.dispose()

    store = Store.open_local(root)
    assert current_revision(store.engine) == HEAD_REVISION
    record = runs.get_run(store, "old")
    assert (record.config, record.summary, record.last_step) == ({"lr": 0.1}, {}, None)
    rundata.write_run_data(store, "old", summary={"a": 1}, history=[{"_step": 0, "a": 1}])
    assert runs.get_run(store, "old").summary == {"a": 1}
