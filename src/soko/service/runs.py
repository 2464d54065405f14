"""Runs and lineage: which run used and which logged each version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from soko.core.names import (
    validate_run_id,
    validate_run_start,
    validate_version_id,
)
from soko.core.records import RUN_STATES, RunRecord, VersionRecord, as_utc
from soko.core.runlog import SUMMARY_MAX_BYTES, decode
from soko.errors import NotFoundError, ValidationError
from soko.metadata.schema import entities, lineage, projects, run_history, runs, versions
from soko.service.catalog import ensure_project, find_project, now, records_by_ids
from soko.service.commit import add_lineage
from soko.service.store import Store

# Statements the embedded store's start and end of a run also run through sqlite3, as SQL
# text that a test checks against these (soko.service.lite).
RUN = select(runs).where(runs.c.id == bindparam("run_id"))
INSERT_RUN = insert(runs)
UPDATE_RUN = update(runs).where(runs.c.id == bindparam("run_id"))
PROJECT_NAMES = (
    select(entities.c.name.label("entity"), projects.c.name.label("project"))
    .join(entities, entities.c.id == projects.c.entity_id)
    .where(projects.c.id == bindparam("project_id"))
)
LAST_STEP = select(func.max(run_history.c.step)).where(run_history.c.run_id == bindparam("run_id"))


def _run_record(conn: Connection, row: Row[Any]) -> RunRecord:
    names = conn.execute(PROJECT_NAMES, {"project_id": row.project_id}).one()
    last_step = conn.execute(LAST_STEP, {"run_id": row.id}).scalar()
    return RunRecord(
        id=row.id,
        entity=names.entity,
        project=names.project,
        name=row.name,
        job_type=row.job_type,
        group=row.group_name,
        config=dict(row.config or {}),
        state=row.state,
        created_at=as_utc(row.created_at),
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        summary=decode(row.summary, what="A run summary", max_bytes=SUMMARY_MAX_BYTES)
        if row.summary
        else {},
        last_step=last_step,
    )


def start_run(
    store: Store,
    *,
    run_id: str,
    entity: str,
    project: str,
    name: str | None = None,
    job_type: str | None = None,
    group: str | None = None,
    config: dict[str, Any] | None = None,
) -> RunRecord:
    """Create the run, or resume it (state back to running) when the id exists."""
    config = validate_run_start(
        run_id=run_id,
        entity=entity,
        project=project,
        name=name,
        job_type=job_type,
        group=group,
        config=config,
    )
    with store.engine.begin() as conn:
        project_id = ensure_project(conn, entity, project)
        key = {"run_id": run_id}
        if conn.execute(RUN, key).first() is None:
            conn.execute(
                INSERT_RUN,
                {
                    "id": run_id,
                    "project_id": project_id,
                    "name": name or run_id,
                    "job_type": job_type,
                    "group_name": group,
                    "config": config,
                    "state": "running",
                    "created_at": now(),
                },
            )
        else:
            conn.execute(UPDATE_RUN, {**key, "state": "running", "finished_at": None})
        return _run_record(conn, conn.execute(RUN, key).one())


def finish_run(store: Store, run_id: str, *, state: str) -> None:
    validate_run_id(run_id)
    if state not in RUN_STATES:
        raise ValidationError(f"Unknown run state {state!r}.")
    with store.engine.begin() as conn:
        conn.execute(UPDATE_RUN, {"run_id": run_id, "state": state, "finished_at": now()})


def no_such_run(run_id: str) -> NotFoundError:
    """The error for a run id that names nothing (the server gives the same one for a run
    the caller may not read)."""
    return NotFoundError(f"No run with id {run_id!r}.")


def get_run(store: Store, run_id: str) -> RunRecord:
    validate_run_id(run_id)
    with store.engine.connect() as conn:
        row = conn.execute(RUN, {"run_id": run_id}).first()
        if row is None:
            raise no_such_run(run_id)
        return _run_record(conn, row)


def list_runs(store: Store, entity: str, project: str) -> list[RunRecord]:
    with store.engine.connect() as conn:
        project_id = find_project(conn, entity, project)
        if project_id is None:
            return []
        rows = conn.execute(
            select(runs).where(runs.c.project_id == project_id).order_by(runs.c.created_at)
        ).all()
        return [_run_record(conn, r) for r in rows]


def record_use(store: Store, run_id: str, version_id: str) -> None:
    validate_run_id(run_id)
    validate_version_id(version_id)
    with store.engine.begin() as conn:
        # Using a link uses its source: the lineage graph joins runs through the version
        # that holds the content, whichever registry it was reached through.
        source = conn.execute(
            select(versions.c.source_version_id).where(versions.c.id == version_id)
        ).scalar()
        add_lineage(conn, run_id, source or version_id, "used")


def runs_of_version(store: Store, version_id: str, direction: str) -> list[RunRecord]:
    """Runs that used (``"used"``) or logged (``"logged"``) a version, oldest first."""
    validate_version_id(version_id)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(runs)
            .join(lineage, lineage.c.run_id == runs.c.id)
            .where(lineage.c.version_id == version_id, lineage.c.direction == direction)
            .order_by(lineage.c.created_at)
        ).all()
        return [_run_record(conn, r) for r in rows]


def versions_of_run(store: Store, run_id: str, direction: str) -> list[VersionRecord]:
    validate_run_id(run_id)
    with store.engine.connect() as conn:
        ids = conn.execute(
            select(lineage.c.version_id)
            .join(versions, versions.c.id == lineage.c.version_id)
            .where(lineage.c.run_id == run_id, lineage.c.direction == direction)
            .order_by(lineage.c.created_at)
        ).scalars()
        return records_by_ids(conn, list(ids))
