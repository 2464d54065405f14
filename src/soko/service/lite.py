"""The embedded store's short commands on the standard library's ``sqlite3``: listing the
projects and collections of a store, and starting, finishing and reading back a run.

These are what ``soko artifact ls`` and a script's ``soko.init()`` + ``run.finish()`` ask of
the database, and loading SQLAlchemy costs more than twice what they do. So they run here
without it, on a database already at :data:`~soko.metadata.connect.HEAD_REVISION`;
creating or migrating one, and every other use case, stay with the service on SQLAlchemy.

One source of truth: each statement below is the SQL that SQLAlchemy compiles for SQLite
from a statement of the service (named in :data:`STATEMENTS`), which a test checks, so a
change of the schema or of the service's query fails that test until this text follows.
The rules on input are the same functions of :mod:`soko.core.names`.

Imports the standard library, core, errors and :mod:`soko.metadata.connect`: never
SQLAlchemy, nor a service module that does.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from soko.core.names import (
    PROJECT_RULE,
    TYPE_RULE,
    registry_name,
    validate_project,
    validate_run_id,
    validate_run_start,
)
from soko.core.records import RUN_STATES, CollectionRecord, ProjectRecord, RunRecord, as_utc
from soko.core.runlog import SUMMARY_MAX_BYTES, decode
from soko.errors import NotFoundError, ValidationError
from soko.metadata.connect import load_time, store_time


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    source: str
    """The service's statement this is compiled from: ``module.NAME`` of soko.service."""
    columns: tuple[str, ...] | None = None
    """The columns an INSERT or UPDATE is compiled with (its parameters name them)."""
    constants: Mapping[str, Any] = field(default_factory=dict)
    """Values the service's statement holds itself, passed with every execution."""


ENTITY_ID = Statement(
    "SELECT entities.id FROM entities WHERE entities.name = :entity", "catalog.ENTITY_ID"
)
PROJECT_ID_OF_ENTITY = Statement(
    "SELECT projects.id FROM projects "
    "WHERE projects.entity_id = :entity_id AND projects.name = :project",
    "catalog.PROJECT_ID_OF_ENTITY",
)
INSERT_ENTITY = Statement(
    "INSERT INTO entities (name) VALUES (:name) RETURNING id",
    "catalog.INSERT_ENTITY",
    columns=("name",),
)
INSERT_PROJECT = Statement(
    "INSERT INTO projects (entity_id, name, created_at) "
    "VALUES (:entity_id, :name, :created_at) RETURNING id",
    "catalog.INSERT_PROJECT",
    columns=("entity_id", "name", "created_at"),
)
PROJECT_ID = Statement(
    "SELECT projects.id FROM projects JOIN entities ON entities.id = projects.entity_id "
    "WHERE entities.name = :entity AND projects.name = :project",
    "catalog.PROJECT_ID",
)
COMMITTED_COUNT = Statement(
    "SELECT count(*) AS count_1 FROM versions "
    "WHERE versions.collection_id = :collection_id AND versions.state = :state_1",
    "catalog.COMMITTED_COUNT",
    constants={"state_1": "COMMITTED"},
)
COLLECTION_ALIASES = Statement(
    "SELECT aliases.alias FROM aliases WHERE aliases.collection_id = :collection_id",
    "catalog.COLLECTION_ALIASES",
)
COLLECTION_TAGS = Statement(
    "SELECT collection_tags.tag FROM collection_tags "
    "WHERE collection_tags.collection_id = :collection_id ORDER BY collection_tags.tag",
    "catalog.COLLECTION_TAGS",
)
PROJECTS_OF_ENTITY = Statement(
    "SELECT entities.name AS entity, projects.name, projects.created_at "
    "FROM projects JOIN entities ON entities.id = projects.entity_id "
    "WHERE entities.name = :entity ORDER BY entities.name, projects.name",
    "versions.PROJECTS_OF_ENTITY",
)
_COLLECTION_COLUMNS = (
    "SELECT collections.id, collections.project_id, collections.name, collections.type, "
    "collections.kind, collections.description, collections.next_index, "
    "collections.created_at FROM collections "
)
COLLECTIONS_OF_PROJECT = Statement(
    f"{_COLLECTION_COLUMNS}WHERE collections.project_id = :project_id ORDER BY collections.name",
    "versions.COLLECTIONS_OF_PROJECT",
)
COLLECTIONS_OF_TYPE = Statement(
    f"{_COLLECTION_COLUMNS}WHERE collections.project_id = :project_id "
    "AND collections.type = :type ORDER BY collections.name",
    "versions.COLLECTIONS_OF_TYPE",
)
RUN = Statement(
    "SELECT runs.id, runs.project_id, runs.name, runs.job_type, runs.group_name, "
    "runs.config, runs.state, runs.created_at, runs.finished_at, runs.summary "
    "FROM runs WHERE runs.id = :run_id",
    "runs.RUN",
)
_RUN_COLUMNS = (
    "id", "project_id", "name", "job_type", "group_name", "config", "state", "created_at"
)  # fmt: skip
INSERT_RUN = Statement(
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) "
    f"VALUES ({', '.join(f':{c}' for c in _RUN_COLUMNS)})",
    "runs.INSERT_RUN",
    columns=_RUN_COLUMNS,
)
UPDATE_RUN = Statement(
    "UPDATE runs SET state=:state, finished_at=:finished_at WHERE runs.id = :run_id",
    "runs.UPDATE_RUN",
    columns=("state", "finished_at"),
)
PROJECT_NAMES = Statement(
    "SELECT entities.name AS entity, projects.name AS project "
    "FROM projects JOIN entities ON entities.id = projects.entity_id "
    "WHERE projects.id = :project_id",
    "runs.PROJECT_NAMES",
)
LAST_STEP = Statement(
    "SELECT max(run_history.step) AS max_1 FROM run_history WHERE run_history.run_id = :run_id",
    "runs.LAST_STEP",
)
HAS_PENDING = Statement(
    "SELECT deliveries.id FROM deliveries "
    "JOIN automations ON automations.id = deliveries.automation_id "
    "WHERE deliveries.status = :status_1 AND automations.enabled IS 1 "
    "LIMIT :param_1 OFFSET :param_2",
    "webhooks.HAS_PENDING",
    constants={"status_1": "pending", "param_1": 1, "param_2": 0},
)

STATEMENTS = (
    ENTITY_ID, PROJECT_ID_OF_ENTITY, INSERT_ENTITY, INSERT_PROJECT, PROJECT_ID,
    COMMITTED_COUNT, COLLECTION_ALIASES, COLLECTION_TAGS, PROJECTS_OF_ENTITY,
    COLLECTIONS_OF_PROJECT, COLLECTIONS_OF_TYPE, RUN, INSERT_RUN, UPDATE_RUN, PROJECT_NAMES,
    LAST_STEP, HAS_PENDING,
)  # fmt: skip
"""Every statement of this module, for the test that checks them against the service's."""


class Transaction:
    """Statements run inside one transaction of a :class:`Database`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, statement: Statement, **params: Any) -> list[sqlite3.Row]:
        return self._conn.execute(statement.sql, {**statement.constants, **params}).fetchall()

    def first(self, statement: Statement, **params: Any) -> sqlite3.Row | None:
        cursor = self._conn.execute(statement.sql, {**statement.constants, **params})
        row: sqlite3.Row | None = cursor.fetchone()
        cursor.close()
        return row

    def scalar(self, statement: Statement, **params: Any) -> Any:
        row = self.first(statement, **params)
        return None if row is None else row[0]


class Database:
    """The embedded store's database on one sqlite3 connection (from
    :func:`soko.metadata.connect.open_current`), used by one thread at a time."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Transaction]:
        """One transaction; a writing one takes the write lock at once (``BEGIN
        IMMEDIATE``, as the engine does), so that two writers never deadlock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Transaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: str | None) -> datetime | None:
    return None if value is None else as_utc(load_time(value))


# ----- projects and collections (service.versions) -------------------------------------


def list_projects(db: Database, entity: str) -> list[ProjectRecord]:
    PROJECT_RULE.check(entity)
    with db.transaction() as tx:
        rows = tx.rows(PROJECTS_OF_ENTITY, entity=entity)
    return [ProjectRecord(r["entity"], r["name"], as_utc(load_time(r["created_at"]))) for r in rows]


def list_collections(
    db: Database, entity: str, project: str, type_name: str | None = None
) -> list[CollectionRecord] | None:
    """The collections of a project, as ``service.versions.list_collections`` gives them;
    None for a registry's project, which lives in its organisation's entity (the service
    finds which)."""
    if registry_name(project) is not None:
        return None
    validate_project(entity)
    validate_project(project)
    with db.transaction() as tx:
        project_id = tx.scalar(PROJECT_ID, entity=entity, project=project)
        if project_id is None:
            return []
        if type_name is None:
            rows = tx.rows(COLLECTIONS_OF_PROJECT, project_id=project_id)
        else:
            rows = tx.rows(
                COLLECTIONS_OF_TYPE, project_id=project_id, type=TYPE_RULE.check(type_name)
            )
        return [_collection_record(tx, row, entity=entity, project=project) for row in rows]


def _collection_record(
    tx: Transaction, row: sqlite3.Row, *, entity: str, project: str
) -> CollectionRecord:
    collection_id = row["id"]
    return CollectionRecord(
        id=collection_id,
        entity=entity,
        project=project,
        name=row["name"],
        type=row["type"],
        kind=row["kind"],
        description=row["description"],
        created_at=as_utc(load_time(row["created_at"])),
        version_count=int(tx.scalar(COMMITTED_COUNT, collection_id=collection_id)),
        aliases=[r[0] for r in tx.rows(COLLECTION_ALIASES, collection_id=collection_id)],
        tags=[r[0] for r in tx.rows(COLLECTION_TAGS, collection_id=collection_id)],
    )


# ----- runs (service.runs, service.catalog.ensure_project) ------------------------------


def _ensure_project(tx: Transaction, entity: str, project: str) -> int:
    # Inside a BEGIN IMMEDIATE transaction no other writer can insert the same row between
    # the lookup and the insert, so the service's savepoint and retry are not needed.
    entity_id = tx.scalar(ENTITY_ID, entity=entity)
    if entity_id is None:
        entity_id = tx.scalar(INSERT_ENTITY, name=entity)
    project_id = tx.scalar(PROJECT_ID_OF_ENTITY, entity_id=entity_id, project=project)
    if project_id is None:
        project_id = tx.scalar(
            INSERT_PROJECT, entity_id=entity_id, name=project, created_at=store_time(_now())
        )
    return int(project_id)


def start_run(
    db: Database,
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
    with db.transaction(write=True) as tx:
        project_id = _ensure_project(tx, entity, project)
        if tx.first(RUN, run_id=run_id) is None:
            tx.rows(
                INSERT_RUN,
                id=run_id,
                project_id=project_id,
                name=name or run_id,
                job_type=job_type,
                group_name=group,
                config=json.dumps(config),
                state="running",
                created_at=store_time(_now()),
            )
        else:
            tx.rows(UPDATE_RUN, run_id=run_id, state="running", finished_at=None)
        row = tx.first(RUN, run_id=run_id)
        assert row is not None
        return _run_record(tx, row)


def finish_run(db: Database, run_id: str, *, state: str) -> None:
    validate_run_id(run_id)
    if state not in RUN_STATES:
        raise ValidationError(f"Unknown run state {state!r}.")
    with db.transaction(write=True) as tx:
        tx.rows(UPDATE_RUN, run_id=run_id, state=state, finished_at=store_time(_now()))


def get_run(db: Database, run_id: str) -> RunRecord:
    validate_run_id(run_id)
    with db.transaction() as tx:
        row = tx.first(RUN, run_id=run_id)
        if row is None:
            # The service's words (service.runs.no_such_run).
            raise NotFoundError(f"No run with id {run_id!r}.")
        return _run_record(tx, row)


def _run_record(tx: Transaction, row: sqlite3.Row) -> RunRecord:
    names = tx.first(PROJECT_NAMES, project_id=row["project_id"])
    assert names is not None  # a foreign key
    config = row["config"]
    summary = row["summary"]
    created_at = _time(row["created_at"])
    assert created_at is not None
    return RunRecord(
        id=row["id"],
        entity=names["entity"],
        project=names["project"],
        name=row["name"],
        job_type=row["job_type"],
        group=row["group_name"],
        config=dict(json.loads(config) or {}) if config is not None else {},
        state=row["state"],
        created_at=created_at,
        finished_at=_time(row["finished_at"]),
        summary=decode(summary, what="A run summary", max_bytes=SUMMARY_MAX_BYTES)
        if summary
        else {},
        last_step=tx.scalar(LAST_STEP, run_id=row["id"]),
    )


# ----- automations (service.webhooks) ---------------------------------------------------


def has_pending(db: Database) -> bool:
    """Whether a webhook delivery waits to be sent (the sender, on SQLAlchemy, starts only
    then)."""
    with db.transaction() as tx:
        return tx.first(HAS_PENDING) is not None
