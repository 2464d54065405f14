"""Links: versions of a registry collection whose content is another version's.

A link is a row of ``versions`` in a collection of kind ``registry`` with
``source_version_id`` set. It is a member of that collection like any version: its own id,
``vN`` (taken from the collection's counter inside the link's transaction, as a commit
takes one) and aliases. It shares its source's manifest, digest, size, description,
metadata and tags: as in W&B, changing those on a link changes them on the source and on
every link of it (description and metadata are copied to the link rows; tags are read from
the source). A version is linked once into a collection: linking it again only adds
aliases. Unlinking removes the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from soko.core.automations import VERSION_CREATED
from soko.core.names import validate_aliases, validate_version_id
from soko.core.records import COMMITTED, DELETED, VersionRecord
from soko.errors import NotFoundError, ValidationError
from soko.metadata.schema import aliases, collections, lineage, tags, versions
from soko.service import automations
from soko.service.catalog import (
    ensure_collection,
    ensure_project,
    names_of_version,
    now,
    record_by_id,
)
from soko.service.commit import set_aliases, take_next_index
from soko.service.registries import organisation_of, registry_for_link, registry_name
from soko.service.store import Store


def link_version(
    store: Store,
    version_id: str,
    *,
    entity: str,
    project: str,
    registry: str,
    aliases_to_add: Sequence[str] = (),
) -> VersionRecord:
    """Link a version into the collection *registry* of ``entity/project``; returns the link.

    A registry project (``wandb-registry-R``) lives in the entity of the organisation
    holding *entity* (:func:`soko.service.registries.home_entity`). Linking a link links its
    source. Linking a version already linked there returns that link with the aliases added.
    """
    validate_version_id(version_id)
    names = validate_aliases(aliases_to_add)
    with store.engine.begin() as conn:
        if registry_name(project) is not None:
            entity = organisation_of(conn, entity)
        source = _committed(conn, version_id)
        if source.source_version_id is not None:
            source = _committed(conn, source.source_version_id)
        type_name = conn.execute(
            select(collections.c.type).where(collections.c.id == source.collection_id)
        ).scalar_one()
        registry_for_link(conn, entity=entity, project=project, type_name=type_name)
        project_id = ensure_project(conn, entity, project)
        target = ensure_collection(conn, project_id, registry, type_name, kind="registry")
        if target.kind != "registry":
            raise ValidationError(
                f"{entity}/{project}/{registry} is an artifact collection, not a registry "
                "collection: versions are logged there, not linked."
            )
        # One link at a time per collection: PostgreSQL locks the collection's row until
        # the transaction ends (SQLite's writes are serialised anyway), so racing links of
        # one version find each other's row, and moving `latest` cannot collide.
        conn.execute(
            select(collections.c.id).where(collections.c.id == target.id).with_for_update()
        )
        link = _link_of(conn, target.id, source.id)
        if link is None:
            link = _insert_link(conn, target.id, source)
            automations.emit(conn, VERSION_CREATED, link.id, version_aliases=["latest", *names])
        set_aliases(conn, target.id, link.id, ["latest", *names])
        return record_by_id(conn, link.id)


def _committed(conn: Connection, version_id: str) -> Row[Any]:
    row = conn.execute(select(versions).where(versions.c.id == version_id)).first()
    if row is None or row.state != COMMITTED:
        raise NotFoundError(f"No committed artifact version with id {version_id!r}.")
    return row


def _link_of(conn: Connection, collection_id: int, source_id: str) -> Row[Any] | None:
    return conn.execute(
        select(versions).where(
            versions.c.collection_id == collection_id,
            versions.c.source_version_id == source_id,
        )
    ).first()


def _insert_link(conn: Connection, collection_id: int, source: Row[Any]) -> Row[Any]:
    # The unique (collection, source) index backs up the caller's lock.
    index = take_next_index(conn, collection_id)
    existing = _link_of(conn, collection_id, source.id)
    if existing is not None:
        return existing
    stamp = now()
    link_id = str(uuid.uuid4())
    try:
        with conn.begin_nested():
            conn.execute(
                insert(versions).values(
                    id=link_id,
                    collection_id=collection_id,
                    version_index=index,
                    state=COMMITTED,
                    digest=source.digest,
                    algorithm=source.algorithm,
                    manifest_blob=source.manifest_blob,
                    metadata=source.metadata,
                    description=source.description,
                    size=source.size,
                    file_count=source.file_count,
                    created_at=stamp,
                    committed_at=stamp,
                    updated_at=stamp,
                    source_version_id=source.id,
                )
            )
    except IntegrityError:
        existing = _link_of(conn, collection_id, source.id)
        if existing is None:
            raise
        return existing
    return conn.execute(select(versions).where(versions.c.id == link_id)).one()


def list_links(store: Store, version_id: str) -> list[VersionRecord]:
    """The links of a version (of its source, for a link), oldest first."""
    validate_version_id(version_id)
    with store.engine.connect() as conn:
        row = conn.execute(
            select(versions.c.source_version_id).where(versions.c.id == version_id)
        ).first()
        if row is None:
            raise NotFoundError(f"No artifact version with id {version_id!r}.")
        source_id = row.source_version_id or version_id
        ids = conn.execute(
            select(versions.c.id)
            .where(versions.c.source_version_id == source_id, versions.c.state == COMMITTED)
            .order_by(versions.c.created_at, versions.c.id)
        ).scalars()
        return [record_by_id(conn, link_id) for link_id in ids]


def links_of(conn: Connection, source_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(select(versions).where(versions.c.source_version_id == source_id)).all()
    )


def describe_links(conn: Connection, rows: Sequence[Row[Any]]) -> list[str]:
    """``entity/project/collection:vN`` of each link, for messages."""
    named = []
    for row in rows:
        entity, project = names_of_version(conn, row.id)
        name = conn.execute(
            select(collections.c.name).where(collections.c.id == row.collection_id)
        ).scalar_one()
        named.append(f"{entity}/{project}/{name}:v{row.version_index}")
    return named


def unlink(conn: Connection, link: Row[Any]) -> None:
    """Remove a link; ``latest`` of its collection moves to the newest remaining link."""
    held_latest = conn.execute(
        select(aliases.c.id).where(aliases.c.version_id == link.id, aliases.c.alias == "latest")
    ).first()
    conn.execute(delete(aliases).where(aliases.c.version_id == link.id))
    conn.execute(delete(tags).where(tags.c.version_id == link.id))
    conn.execute(delete(lineage).where(lineage.c.version_id == link.id))
    conn.execute(delete(versions).where(versions.c.id == link.id))
    if held_latest is not None:
        move_latest(conn, link.collection_id)


def move_latest(conn: Connection, collection_id: int) -> None:
    """Point ``latest`` of a collection at its newest committed version (or link)."""
    newest = conn.execute(
        select(versions.c.id)
        .where(versions.c.collection_id == collection_id, versions.c.state == COMMITTED)
        .order_by(versions.c.version_index.desc())
        .limit(1)
    ).scalar()
    if newest is not None:
        set_aliases(conn, collection_id, newest, ["latest"])


def copy_to_links(conn: Connection, source_id: str, values: dict[str, Any]) -> None:
    """Give the links of *source_id* the source's new description or metadata."""
    shared = {k: v for k, v in values.items() if k in ("metadata", "description", "updated_at")}
    if len(shared) > 1:
        conn.execute(
            update(versions)
            .where(versions.c.source_version_id == source_id, versions.c.state != DELETED)
            .values(**shared)
        )
