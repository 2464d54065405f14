"""Changing and deleting a collection: rename, description, tags, delete.

A rename changes the collection's row only: its versions keep their ids and indexes, so
every ``name:vN`` resolves under the new name, and the old name names nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from soko.core.names import validate_description, validate_name, validate_tags
from soko.core.records import CollectionRecord
from soko.errors import ConflictError, ValidationError
from soko.metadata.schema import (
    aliases,
    collection_tags,
    collections,
    lineage,
    pending_entries,
    tags,
    versions,
)
from soko.service import links
from soko.service.catalog import collection_record, find_collection
from soko.service.registries import organisation_of, registry_name
from soko.service.store import Store

_UNSET: Any = object()


def update_collection(
    store: Store,
    entity: str,
    project: str,
    name: str,
    *,
    new_name: str | None = None,
    description: Any = _UNSET,
    tags_to_set: Sequence[str] | None = None,
) -> CollectionRecord:
    """Rename a collection or replace its description or tags; fields not given stay."""
    if new_name is not None:
        validate_name(new_name)
    if description is not _UNSET:
        description = validate_description(description)
    new_tags = validate_tags(tags_to_set) if tags_to_set is not None else None
    with store.engine.begin() as conn:
        if registry_name(project) is not None:
            entity = organisation_of(conn, entity)
        row = find_collection(conn, entity, project, name)
        values: dict[str, Any] = {}
        if new_name is not None and new_name != row.name:
            values["name"] = new_name
        if description is not _UNSET:
            values["description"] = description
        if values:
            try:
                with conn.begin_nested():
                    conn.execute(
                        update(collections).where(collections.c.id == row.id).values(**values)
                    )
            except IntegrityError:
                raise ConflictError(
                    f"Cannot rename {entity}/{project}/{name} to {new_name!r}: that name is "
                    "taken in the project."
                ) from None
        if new_tags is not None:
            conn.execute(delete(collection_tags).where(collection_tags.c.collection_id == row.id))
            for tag in new_tags:
                conn.execute(insert(collection_tags).values(collection_id=row.id, tag=tag))
        fresh = conn.execute(select(collections).where(collections.c.id == row.id)).one()
        return collection_record(conn, fresh, entity=entity, project=project)


def delete_collection(store: Store, entity: str, project: str, name: str) -> None:
    """Delete a collection and its versions (or links); their blobs are freed by gc.

    Refused while a version of it is linked into a registry collection: unlink it first.
    """
    with store.engine.begin() as conn:
        if registry_name(project) is not None:
            entity = organisation_of(conn, entity)
        row = find_collection(conn, entity, project, name)
        member_ids = select(versions.c.id).where(versions.c.collection_id == row.id)
        linked = list(
            conn.execute(select(versions).where(versions.c.source_version_id.in_(member_ids))).all()
        )
        if linked:
            raise ValidationError(
                f"Versions of {entity}/{project}/{name} are linked to "
                f"{links.describe_links(conn, linked)}; unlink them first."
            )
        conn.execute(delete(aliases).where(aliases.c.collection_id == row.id))
        conn.execute(delete(tags).where(tags.c.version_id.in_(member_ids)))
        conn.execute(delete(lineage).where(lineage.c.version_id.in_(member_ids)))
        conn.execute(delete(pending_entries).where(pending_entries.c.version_id.in_(member_ids)))
        conn.execute(delete(versions).where(versions.c.collection_id == row.id))
        conn.execute(delete(collection_tags).where(collection_tags.c.collection_id == row.id))
        conn.execute(delete(collections).where(collections.c.id == row.id))
