"""Reading and creating the namespaces: entities, projects, collections; rows to records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Insert, Row, Select, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from soko.core.names import validate_name, validate_project, validate_type
from soko.core.records import COMMITTED, CollectionRecord, VersionRecord, as_utc
from soko.errors import NotFoundError, TypeConflictError
from soko.metadata.schema import (
    aliases,
    collection_tags,
    collections,
    entities,
    projects,
    tags,
    versions,
)


def now() -> datetime:
    return datetime.now(UTC)


# Statements the embedded store's short commands also run through sqlite3, as SQL text
# that a test checks against these (soko.service.lite).
ENTITY_ID = select(entities.c.id).where(entities.c.name == bindparam("entity"))
PROJECT_ID_OF_ENTITY = select(projects.c.id).where(
    projects.c.entity_id == bindparam("entity_id"), projects.c.name == bindparam("project")
)
INSERT_ENTITY = insert(entities).returning(entities.c.id)
INSERT_PROJECT = insert(projects).returning(projects.c.id)
PROJECT_ID = (
    select(projects.c.id)
    .join(entities, entities.c.id == projects.c.entity_id)
    .where(entities.c.name == bindparam("entity"), projects.c.name == bindparam("project"))
)
COMMITTED_COUNT = (
    select(func.count())
    .select_from(versions)
    .where(versions.c.collection_id == bindparam("collection_id"), versions.c.state == COMMITTED)
)
COLLECTION_ALIASES = select(aliases.c.alias).where(
    aliases.c.collection_id == bindparam("collection_id")
)
COLLECTION_TAGS = (
    select(collection_tags.c.tag)
    .where(collection_tags.c.collection_id == bindparam("collection_id"))
    .order_by(collection_tags.c.tag)
)


def _get_or_insert(
    conn: Connection,
    lookup: Select[Any],
    key: dict[str, Any],
    insert_row: Insert,
    row: dict[str, Any],
) -> int:
    found = conn.execute(lookup, key).scalar()
    if found is not None:
        return int(found)
    try:
        # A savepoint, so that losing a race with another writer does not abort the caller's
        # transaction: the row the other writer inserted is then read back.
        with conn.begin_nested():
            return int(conn.execute(insert_row, row).scalar_one())
    except IntegrityError:
        return int(conn.execute(lookup, key).scalar_one())


def ensure_project(conn: Connection, entity: str, project: str) -> int:
    validate_project(entity)
    validate_project(project)
    entity_id = _get_or_insert(conn, ENTITY_ID, {"entity": entity}, INSERT_ENTITY, {"name": entity})
    return _get_or_insert(
        conn,
        PROJECT_ID_OF_ENTITY,
        {"entity_id": entity_id, "project": project},
        INSERT_PROJECT,
        {"entity_id": entity_id, "name": project, "created_at": now()},
    )


def find_project(conn: Connection, entity: str, project: str) -> int | None:
    validate_project(entity)
    validate_project(project)
    return conn.execute(PROJECT_ID, {"entity": entity, "project": project}).scalar()


def ensure_collection(
    conn: Connection, project_id: int, name: str, type_name: str, *, kind: str = "sequence"
) -> Row[Any]:
    """The collection *name* of the project, created with *type_name* if new.

    A name has one type in a project: logging it under another raises TypeConflictError.
    """
    validate_name(name)
    validate_type(type_name)
    lookup = select(collections).where(
        collections.c.project_id == project_id, collections.c.name == name
    )
    row = conn.execute(lookup).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(collections).values(
                        project_id=project_id,
                        name=name,
                        type=type_name,
                        kind=kind,
                        next_index=0,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            pass
        row = conn.execute(lookup).one()
    if row.type != type_name:
        raise TypeConflictError(
            f"Artifact {name!r} already exists with type {row.type!r}; it cannot be logged "
            f"as {type_name!r}."
        )
    return row


def find_collection(conn: Connection, entity: str, project: str, name: str) -> Row[Any]:
    validate_name(name)
    project_id = find_project(conn, entity, project)
    row = None
    if project_id is not None:
        row = conn.execute(
            select(collections).where(
                collections.c.project_id == project_id, collections.c.name == name
            )
        ).first()
    if row is None:
        raise NotFoundError(f"Artifact collection {entity}/{project}/{name} does not exist.")
    return row


def version_record(conn: Connection, row: Row[Any], *, entity: str, project: str) -> VersionRecord:
    return version_records(conn, [row], entity=entity, project=project)[0]


_IN_BATCH = 500
"""Ids per ``IN (...)``: well below SQLite's limit on parameters."""


def version_records(
    conn: Connection, rows: Sequence[Row[Any]], *, entity: str, project: str
) -> list[VersionRecord]:
    """The records of version *rows* of one project, in their order: three queries per
    500 rows (collections, aliases, tags), however many rows."""
    collection_ids = list({row.collection_id for row in rows})
    names: dict[int, Any] = {}
    for part in _batches(collection_ids):
        query = select(collections.c.id, collections.c.name, collections.c.type)
        names.update((r.id, r) for r in conn.execute(query.where(collections.c.id.in_(part))))
    version_ids = [row.id for row in rows]
    # Keyed by version and collection: only the aliases of the version's own collection
    # count (a registry that links the version has its own).
    alias_names: dict[tuple[str, int], list[str]] = {}
    tag_names: dict[str, list[str]] = {}
    for part in _batches(version_ids):
        for version_id, alias, collection_id in conn.execute(
            select(aliases.c.version_id, aliases.c.alias, aliases.c.collection_id)
            .where(aliases.c.version_id.in_(part))
            .order_by(aliases.c.id)
        ):
            alias_names.setdefault((version_id, collection_id), []).append(alias)
    # A link shows its source's tags (W&B keeps tags on the version, not the link).
    tagged_ids = list({_tagged(row) for row in rows})
    for part in _batches(tagged_ids):
        for version_id, tag in conn.execute(
            select(tags.c.version_id, tags.c.tag)
            .where(tags.c.version_id.in_(part))
            .order_by(tags.c.tag)
        ):
            tag_names.setdefault(version_id, []).append(tag)
    return [
        _record(
            row,
            names[row.collection_id],
            alias_names.get((row.id, row.collection_id), []),
            tag_names.get(_tagged(row), []),
            entity=entity,
            project=project,
        )
        for row in rows
    ]


def _tagged(row: Row[Any]) -> str:
    """The id of the version whose tags *row* shows: its source's for a link."""
    source: str | None = row.source_version_id
    return source or str(row.id)


def _batches(ids: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(ids), _IN_BATCH):
        yield ids[start : start + _IN_BATCH]


def _record(
    row: Row[Any],
    collection: Row[Any],
    alias_names: list[str],
    tag_names: list[str],
    *,
    entity: str,
    project: str,
) -> VersionRecord:
    return VersionRecord(
        id=row.id,
        entity=entity,
        project=project,
        collection=collection.name,
        type=collection.type,
        version_index=row.version_index,
        state=row.state,
        digest=row.digest,
        algorithm=row.algorithm,
        manifest_blob=row.manifest_blob,
        metadata=dict(row.metadata or {}),
        description=row.description,
        size=row.size,
        file_count=row.file_count,
        ttl_seconds=row.ttl_seconds,
        aliases=alias_names,
        tags=tag_names,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        committed_at=as_utc(row.committed_at) if row.committed_at else None,
        created_by_run=row.created_by_run,
        distributed_id=row.distributed_id,
        source_id=row.source_version_id,
    )


def no_such_version(version_id: str) -> NotFoundError:
    """The error for a version id that names nothing (the server gives the same one for a
    version the caller may not read)."""
    return NotFoundError(f"No artifact version with id {version_id!r}.")


def names_of_version(conn: Connection, version_id: str) -> tuple[str, str]:
    """(entity, project) of a version."""
    row = conn.execute(
        select(entities.c.name.label("entity"), projects.c.name.label("project"))
        .select_from(versions)
        .join(collections, collections.c.id == versions.c.collection_id)
        .join(projects, projects.c.id == collections.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
        .where(versions.c.id == version_id)
    ).first()
    if row is None:
        raise no_such_version(version_id)
    return row.entity, row.project


def record_by_id(conn: Connection, version_id: str) -> VersionRecord:
    found = records_by_ids(conn, [version_id])
    if not found:
        raise no_such_version(version_id)
    return found[0]


def records_by_ids(conn: Connection, version_ids: Sequence[str]) -> list[VersionRecord]:
    """The records of those of *version_ids* that exist, in their order (ids that name
    nothing are left out): a bounded number of queries however many ids."""
    rows: dict[str, Row[Any]] = {}
    for part in _batches(list(dict.fromkeys(version_ids))):
        for row in conn.execute(
            select(
                versions,
                entities.c.name.label("entity_name"),
                projects.c.name.label("project_name"),
            )
            .join(collections, collections.c.id == versions.c.collection_id)
            .join(projects, projects.c.id == collections.c.project_id)
            .join(entities, entities.c.id == projects.c.entity_id)
            .where(versions.c.id.in_(part))
        ):
            rows[row.id] = row
    by_project: dict[tuple[str, str], list[Row[Any]]] = {}
    for row in rows.values():
        by_project.setdefault((row.entity_name, row.project_name), []).append(row)
    records: dict[str, VersionRecord] = {}
    for (entity, project), members in by_project.items():
        for record in version_records(conn, members, entity=entity, project=project):
            records[record.id] = record
    return [records[version_id] for version_id in version_ids if version_id in records]


def collection_record(
    conn: Connection, row: Row[Any], *, entity: str, project: str
) -> CollectionRecord:
    key = {"collection_id": row.id}
    count = conn.execute(COMMITTED_COUNT, key).scalar_one()
    alias_names = list(conn.execute(COLLECTION_ALIASES, key).scalars())
    tag_names = list(conn.execute(COLLECTION_TAGS, key).scalars())
    return CollectionRecord(
        id=row.id,
        entity=entity,
        project=project,
        name=row.name,
        type=row.type,
        kind=row.kind,
        description=row.description,
        created_at=as_utc(row.created_at),
        version_count=int(count),
        aliases=alias_names,
        tags=tag_names,
    )
