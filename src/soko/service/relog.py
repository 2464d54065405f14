"""Logging committed content again, answered without the manifest's entries.

A re-log of a million unchanged files must not cost a million of anything on a server:
neither the missing-blob question for every digest nor reading, checking and possessing
the manifest again. Two shortcuts, both taken only when they are certain:

- :func:`nothing_to_store`: the collection has a committed version of this content
  digest, so every blob it names is stored (a committed version's blobs stay), unless the
  store set a damaged blob aside: then the client asks the missing-blob question as usual,
  and logging the intact files stores it again.
- :func:`commit_to_twin`: the manifest blob a commit names is the very blob a committed
  version of the collection was made from. Same bytes, same entries: that version is the
  commit's twin (the rule of :func:`soko.service.commit.commit_in`), which gains the
  aliases, tags and lineage. The blob is hashed (not parsed): one found damaged is set
  aside and the commit goes the usual way, which has the client upload it again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from soko.core.manifest import ManifestRef
from soko.core.names import validate_aliases, validate_run_id, validate_tags
from soko.core.records import COMMITTED, VersionRecord
from soko.errors import NotFoundError
from soko.metadata.schema import versions
from soko.service.catalog import (
    ensure_collection,
    ensure_project,
    find_collection,
)
from soko.service.commit import join_twin
from soko.service.store import Store
from soko.service.versions import has_committed_digest


def _nothing_set_aside(store: Store) -> bool:
    """Whether the store's quarantine is empty: no committed version lacks a blob."""
    quarantine = store.quarantine
    return quarantine is None or quarantine.is_empty()


def nothing_to_store(store: Store, entity: str, project: str, name: str, digest: str) -> bool:
    """Whether a log of content *digest* into collection *name* needs no blob: a committed
    version of the collection has that digest, and nothing of the store is set aside."""
    return _nothing_set_aside(store) and has_committed_digest(
        store, entity, project, name, digest, blobs=()
    )


def commit_to_twin(
    store: Store,
    *,
    entity: str,
    project: str,
    name: str,
    type_name: str,
    manifest_blob: str,
    algorithm: str,
    aliases: Sequence[str],
    tags: Sequence[str],
    run_id: str | None,
) -> VersionRecord | None:
    """The committed version of the collection made from the manifest blob *manifest_blob*
    (a ``xxh128:<hex>`` key) with *algorithm*, given the aliases, tags and lineage of this
    commit; None when there is none (or something is set aside): commit as usual then."""
    key = ManifestRef.parse(manifest_blob).key
    aliases = validate_aliases(aliases)
    tags = validate_tags(tags)
    if run_id is not None:
        validate_run_id(run_id)
    if not _nothing_set_aside(store):
        return None
    with store.engine.begin() as conn:
        try:
            find_collection(conn, entity, project, name)
        except NotFoundError:
            return None
        project_id = ensure_project(conn, entity, project)
        # Raises TypeConflictError for another type, as the commit does.
        collection = ensure_collection(conn, project_id, name, type_name)
        twin = conn.execute(
            select(versions)
            .where(
                versions.c.collection_id == collection.id,
                versions.c.manifest_blob == key,
                versions.c.algorithm == algorithm,
                versions.c.state == COMMITTED,
            )
            .order_by(versions.c.version_index.desc())
            .limit(1)
        ).first()
        if twin is None:
            return None
        if not store.manifest_intact(ManifestRef.parse(manifest_blob)):
            # Damaged on disk and now set aside: the commit as usual finds the manifest blob
            # missing, and the client's retry uploads it again.
            return None
        return join_twin(
            conn,
            collection.id,
            twin,
            aliases=aliases,
            tags=tags,
            run_ids=[run_id] if run_id is not None else [],
            entity=entity,
            project=project,
        )
