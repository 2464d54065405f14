"""Finding, listing, changing and deleting versions; registry links."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from soko.core.digests import Digest
from soko.core.manifest import ManifestRef
from soko.core.names import (
    PROJECT_RULE,
    TYPE_RULE,
    artifact_not_found,
    parse_selector,
    validate_aliases,
    validate_description,
    validate_metadata,
    validate_tags,
    validate_ttl,
    validate_version_id,
)
from soko.core.records import (
    COMMITTED,
    DELETED,
    CollectionRecord,
    ProjectRecord,
    VersionRecord,
    as_utc,
)
from soko.errors import NotFoundError, ValidationError
from soko.metadata.schema import aliases, collections, entities, projects, tags, versions
from soko.service import links
from soko.service.catalog import (
    collection_record,
    find_collection,
    find_project,
    now,
    record_by_id,
    version_record,
    version_records,
)
from soko.service.commit import set_aliases
from soko.service.registries import organisation_of, registry_name
from soko.service.store import Store

_UNSET: Any = object()

# Statements the embedded store's short commands also run through sqlite3, as SQL text
# that a test checks against these (soko.service.lite).
ALL_PROJECTS = (
    select(entities.c.name.label("entity"), projects.c.name, projects.c.created_at)
    .join(entities, entities.c.id == projects.c.entity_id)
    .order_by(entities.c.name, projects.c.name)
)
PROJECTS_OF_ENTITY = ALL_PROJECTS.where(entities.c.name == bindparam("entity"))
COLLECTIONS_OF_PROJECT = (
    select(collections)
    .where(collections.c.project_id == bindparam("project_id"))
    .order_by(collections.c.name)
)
COLLECTIONS_OF_TYPE = (
    select(collections)
    .where(collections.c.project_id == bindparam("project_id"))
    .where(collections.c.type == bindparam("type"))
    .order_by(collections.c.name)
)


def _version_row_for(conn: Connection, collection: Any, target: int | str) -> Any:
    """The committed version (or link) *target* (an index, or an alias) of *collection*."""
    if isinstance(target, int):
        return conn.execute(
            select(versions).where(
                versions.c.collection_id == collection.id,
                versions.c.version_index == target,
                versions.c.state == COMMITTED,
            )
        ).first()
    return conn.execute(
        select(versions)
        .join(aliases, aliases.c.version_id == versions.c.id)
        .where(
            aliases.c.collection_id == collection.id,
            aliases.c.alias == target,
            versions.c.state == COMMITTED,
        )
    ).first()


def _home(conn: Connection, entity: str, project: str) -> str:
    """The entity *project* lives in: a registry's is its organisation's."""
    return entity if registry_name(project) is None else organisation_of(conn, entity)


def no_such_artifact(entity: str, project: str, name: str, selector: str) -> NotFoundError:
    """The answer for ``name:selector`` naming no version (or none the caller may see)."""
    return artifact_not_found(entity, project, name, selector)


def resolve(store: Store, entity: str, project: str, name: str, selector: str) -> VersionRecord:
    """The committed version that ``name:selector`` (an alias or ``vN``) names."""
    target = parse_selector(selector)
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        try:
            collection = find_collection(conn, entity, project, name)
        except NotFoundError:
            # One answer for a missing collection and a missing version, as W&B gives.
            raise no_such_artifact(entity, project, name, selector) from None
        row = None if target is None else _version_row_for(conn, collection, target)
        if row is None:
            raise no_such_artifact(entity, project, name, selector)
        return version_record(conn, row, entity=entity, project=project)


def has_committed_digest(
    store: Store, entity: str, project: str, name: str, digest: str, *, blobs: Iterable[Digest]
) -> bool:
    """Whether the collection has a committed version with this content digest, whose
    *blobs* are those of the manifest being logged: logging the same content again then
    needs no blob (a committed version's blobs stay stored).

    False when the store's quarantine holds one of *blobs* or the version's manifest blob,
    found damaged: the version lacks it, and the log must ask which blobs are missing so
    that logging the intact files again stores it again.
    """
    with store.engine.connect() as conn:
        try:
            collection = find_collection(conn, entity, project, name)
        except NotFoundError:
            return False
        row = conn.execute(
            select(versions.c.manifest_blob)
            .where(
                versions.c.collection_id == collection.id,
                versions.c.digest == digest,
                versions.c.state == COMMITTED,
            )
            .limit(1)
        ).first()
    if row is None:
        return False
    manifest = [ManifestRef.parse(row.manifest_blob).digest] if row.manifest_blob else []
    return not store.quarantine_holds(itertools.chain(blobs, manifest))


def get_version(store: Store, version_id: str) -> VersionRecord:
    validate_version_id(version_id)
    with store.engine.connect() as conn:
        return record_by_id(conn, version_id)


def list_versions(store: Store, entity: str, project: str, name: str) -> list[VersionRecord]:
    """Committed versions (or links) of a collection, oldest first."""
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        collection = find_collection(conn, entity, project, name)
        rows = conn.execute(
            select(versions)
            .where(versions.c.collection_id == collection.id, versions.c.state == COMMITTED)
            .order_by(versions.c.version_index)
        ).all()
        return version_records(conn, rows, entity=entity, project=project)


def list_collections(
    store: Store, entity: str, project: str, type_name: str | None = None
) -> list[CollectionRecord]:
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        project_id = find_project(conn, entity, project)
        if project_id is None:
            return []
        if type_name is None:
            rows = conn.execute(COLLECTIONS_OF_PROJECT, {"project_id": project_id}).all()
        else:
            rows = conn.execute(
                COLLECTIONS_OF_TYPE,
                {"project_id": project_id, "type": TYPE_RULE.check(type_name)},
            ).all()
        return [collection_record(conn, r, entity=entity, project=project) for r in rows]


def get_collection(store: Store, entity: str, project: str, name: str) -> CollectionRecord:
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        row = find_collection(conn, entity, project, name)
        return collection_record(conn, row, entity=entity, project=project)


def list_types(store: Store, entity: str, project: str) -> list[str]:
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        project_id = find_project(conn, entity, project)
        if project_id is None:
            return []
        return list(
            conn.execute(
                select(collections.c.type)
                .where(collections.c.project_id == project_id)
                .distinct()
                .order_by(collections.c.type)
            ).scalars()
        )


def list_projects(store: Store, entity: str | None = None) -> list[ProjectRecord]:
    with store.engine.connect() as conn:
        if entity is None:
            rows = conn.execute(ALL_PROJECTS).all()
        else:
            rows = conn.execute(PROJECTS_OF_ENTITY, {"entity": PROJECT_RULE.check(entity)}).all()
        return [ProjectRecord(r.entity, r.name, as_utc(r.created_at)) for r in rows]


def update_version(
    store: Store,
    version_id: str,
    *,
    aliases_to_set: Sequence[str] | None = None,
    tags_to_set: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    description: Any = _UNSET,
    ttl_seconds: Any = _UNSET,
) -> VersionRecord:
    """Replace the user aliases, tags, metadata, description or TTL of a committed version.

    ``latest`` is managed by soko: it is neither removed nor added here.
    """
    validate_version_id(version_id)
    new_aliases = validate_aliases(
        [a for a in aliases_to_set if a != "latest"] if aliases_to_set is not None else None
    )
    new_tags = validate_tags(tags_to_set) if tags_to_set is not None else None
    new_metadata = validate_metadata(metadata) if metadata is not None else None
    if description is not _UNSET:
        description = validate_description(description)
    if ttl_seconds is not _UNSET:
        ttl_seconds = validate_ttl(ttl_seconds)
    with store.engine.begin() as conn:
        row = conn.execute(select(versions).where(versions.c.id == version_id)).first()
        if row is None or row.state == DELETED:
            raise NotFoundError(f"No live artifact version with id {version_id!r}.")
        values: dict[str, Any] = {"updated_at": now()}
        if new_metadata is not None:
            values["metadata"] = new_metadata
        if description is not _UNSET:
            values["description"] = description
        if ttl_seconds is not _UNSET:
            if row.source_version_id is not None and ttl_seconds != row.ttl_seconds:
                raise ValidationError(
                    "A link has no TTL of its own: set the TTL of its source artifact."
                )
            values["ttl_seconds"] = ttl_seconds
        # A link shares its source's description and metadata: they change on the source
        # and on every link of it.
        source_id = row.source_version_id or version_id
        shared = {k: v for k, v in values.items() if k != "ttl_seconds"}
        conn.execute(update(versions).where(versions.c.id == source_id).values(**shared))
        conn.execute(update(versions).where(versions.c.id == version_id).values(**values))
        links.copy_to_links(conn, source_id, shared)
        if aliases_to_set is not None:
            held_before = set(
                conn.execute(
                    select(aliases.c.alias).where(aliases.c.version_id == version_id)
                ).scalars()
            )
            conn.execute(
                delete(aliases).where(
                    aliases.c.version_id == version_id,
                    aliases.c.collection_id == row.collection_id,
                    aliases.c.alias != "latest",
                )
            )
            set_aliases(
                conn, row.collection_id, version_id, new_aliases or [], held_before=held_before
            )
        if new_tags is not None:
            conn.execute(delete(tags).where(tags.c.version_id == source_id))
            for tag in new_tags:
                conn.execute(insert(tags).values(version_id=source_id, tag=tag))
        return record_by_id(conn, version_id)


def delete_version(store: Store, version_id: str, *, delete_aliases: bool = False) -> None:
    """Mark a version DELETED; its blobs are freed later by garbage collection.

    Refused while user aliases point at it or registry collections link it, unless
    *delete_aliases* (its links are then removed too). ``latest`` moves to the newest
    remaining committed version. Deleting a link unlinks it, as in W&B.
    """
    validate_version_id(version_id)
    with store.engine.begin() as conn:
        row = conn.execute(select(versions).where(versions.c.id == version_id)).first()
        if row is None or row.state == DELETED:
            raise NotFoundError(f"No live artifact version with id {version_id!r}.")
        if row.source_version_id is not None:
            links.unlink(conn, row)
            return
        held = list(
            conn.execute(
                select(aliases.c.alias).where(
                    aliases.c.version_id == version_id,
                    aliases.c.collection_id == row.collection_id,
                )
            ).scalars()
        )
        user_held = [alias for alias in held if alias != "latest"]
        if user_held and not delete_aliases:
            raise ValidationError(
                f"Version v{row.version_index} still has aliases {user_held}; pass "
                "delete_aliases=True to delete it with them."
            )
        linked = links.links_of(conn, version_id)
        if linked and not delete_aliases:
            raise ValidationError(
                f"Version v{row.version_index} is linked to "
                f"{links.describe_links(conn, linked)}; unlink it first or pass "
                "delete_aliases=True to delete it with its links."
            )
        for link in linked:
            links.unlink(conn, link)
        stamp = now()
        conn.execute(
            update(versions)
            .where(versions.c.id == version_id)
            .values(state=DELETED, deleted_at=stamp, updated_at=stamp)
        )
        conn.execute(delete(aliases).where(aliases.c.version_id == version_id))
        if "latest" in held:
            links.move_latest(conn, row.collection_id)
