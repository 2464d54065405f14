"""The commit protocol (DESIGN.md "Writing a version").

1. The caller has stored every blob the manifest names (each verified while written). A
   server has also checked that the committing project may name them
   (:mod:`soko.service.possession`; the blobs it borrowed, passed beside the request as
   *borrowed*, are recorded in step 3), and has
   asked the blob store whether they are all stored (:func:`require_stored`): a folder
   store notes the files it finds that another process wrote, so that step 2 makes them
   durable too. The embedded store does not ask here: its one process wrote them.
2. :func:`commit_version` stores the manifest as a blob and makes every blob put since the
   last sync durable with one ``sync``.
3. One transaction (:func:`commit_in`): lock the collection row and ask the blob store, in
   one batch, whether any blob is missing (garbage collection deletes only under that lock,
   so a version never names a deleted blob); then dedup against a committed version of the
   same digest, else take the next index from the collection's counter, insert the
   COMMITTED row (or turn a distributed version's PENDING row into it), move ``latest`` and
   the aliases, record tags and the lineage edges.

A draft made from a large version by reference (:class:`~soko.core.layered.LayeredManifest`)
takes the same steps, its manifest spliced from its base's and its check in step 3 limited
to the change's blobs while the base is committed (:mod:`soko.service.layered`).

A crash before step 3 commits leaves only unreferenced blobs, which garbage collection
removes after its grace period; nobody can see a partial version.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from soko.core.automations import ALIAS_ADDED, VERSION_CREATED
from soko.core.digests import Digest
from soko.core.layered import LayeredManifest
from soko.core.manifest import Manifest, ManifestRef
from soko.core.names import (
    check_new_paths,
    validate_aliases,
    validate_description,
    validate_metadata,
    validate_name,
    validate_project,
    validate_run_id,
    validate_size,
    validate_tags,
    validate_ttl,
    validate_type,
)
from soko.core.records import COMMITTED, VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import ConflictError, ValidationError
from soko.metadata.schema import aliases, collections, lineage, tags, versions
from soko.service import automations, incremental, layered, possession
from soko.service.catalog import ensure_collection, ensure_project, now, version_record
from soko.service.store import Store

Borrowed = Mapping[Digest, int]
"""Blobs of other projects' versions the committer may read, which the project comes to
possess with the commit (digest -> size), as a server finds them
(:func:`soko.service.possession.check_commit`); the embedded store borrows none."""

NOTHING_BORROWED: Borrowed = MappingProxyType({})


def validated(request: CommitRequest) -> CommitRequest:
    """*request* checked and normalised, before anything is stored."""
    validate_project(request.entity)
    validate_project(request.project)
    validate_name(request.name)
    validate_type(request.type)
    validate_size(request.manifest.size, f"Artifact {request.name!r}")
    manifest = request.manifest
    check_new_paths(
        manifest.new_paths() if isinstance(manifest, LayeredManifest) else manifest.paths()
    )
    if request.run_id is not None:
        validate_run_id(request.run_id)
    return replace(
        request,
        aliases=validate_aliases(request.aliases),
        tags=validate_tags(request.tags),
        metadata=validate_metadata(request.metadata),
        description=validate_description(request.description),
        ttl_seconds=validate_ttl(request.ttl_seconds),
    )


def require_stored(store: Store, manifest: Manifest, *, name: str) -> None:
    """Raise MissingBlobsError unless every blob *manifest* names is stored (one batch)."""
    missing = store.blobs.missing(manifest.stored_blobs())
    if missing:
        raise possession.not_stored(name, missing)


def commit_version(
    store: Store, request: CommitRequest, *, borrowed: Borrowed = NOTHING_BORROWED
) -> VersionRecord:
    """Commit *request* as the next version of its collection (or return its twin)."""
    if request.distributed_id is not None:
        raise ValidationError(
            "A plain commit takes no distributed_id; upsert or finish a distributed version."
        )
    request = validated(request)
    if request.incremental:
        return _commit_incremental(store, request, borrowed)
    twin = _commit_to_twin(store, request, borrowed)
    if twin is not None:
        if twin.manifest_blob and store.quarantine_holds(
            [ManifestRef.parse(twin.manifest_blob).digest]
        ):
            # The twin's manifest blob was found damaged and set aside: the same content
            # logged again stores it again.
            _put_manifest(store, request.manifest)
            store.blobs.sync()
        return twin
    manifest_key = _put_manifest(store, request.manifest)
    store.blobs.sync()
    with store.engine.begin() as conn:
        project_id = ensure_project(conn, request.entity, request.project)
        collection = ensure_collection(conn, project_id, request.name, request.type)
        # Garbage collection deletes blobs only while it holds a lock this excludes (see
        # soko.service.gc), so a blob it removed since the check above fails the commit
        # here instead of being named by a version.
        conn.execute(
            select(collections.c.id).where(collections.c.id == collection.id).with_for_update()
        ).one()
        if isinstance(request.manifest, LayeredManifest):
            layered.require_stored(store, conn, request.manifest, name=request.name)
        else:
            require_stored(store, request.manifest, name=request.name)
        # The check notes the blob files it found, written by another process (another
        # server on this folder store, whose client uploaded there and commits here) and
        # perhaps not synced yet: they are flushed before a version names them. One check
        # of a million blobs, not one before the transaction and one in it.
        store.blobs.sync()
        return commit_in(conn, collection, request, manifest_key=manifest_key, borrowed=borrowed)


def _put_manifest(store: Store, manifest: Manifest) -> str:
    """Store *manifest* as a blob (a layered one spliced from its base's bytes)."""
    if isinstance(manifest, LayeredManifest):
        return layered.put_manifest(store, manifest)
    return store.put_manifest(manifest)


def _commit_incremental(store: Store, request: CommitRequest, borrowed: Borrowed) -> VersionRecord:
    """Commit the request's entries over the latest version (:mod:`soko.service.incremental`).

    The base is read, the whole manifest built and stored outside the transaction; the
    transaction commits only if the base is still the latest version, else it builds again
    on the new one. The twin rule applies to the whole manifest (inside :func:`commit_in`).
    """
    for _ in range(incremental.ATTEMPTS):
        with store.engine.connect() as conn:
            base = incremental.resolve_base(
                store, conn, entity=request.entity, project=request.project, name=request.name
            )
        whole = replace(request, manifest=incremental.overlay(base, request.manifest))
        validate_size(whole.manifest.size, f"Artifact {request.name!r}")
        manifest_key = store.put_manifest(whole.manifest)
        store.blobs.sync()
        with store.engine.begin() as conn:
            project_id = ensure_project(conn, request.entity, request.project)
            collection = ensure_collection(conn, project_id, request.name, request.type)
            conn.execute(
                select(collections.c.id).where(collections.c.id == collection.id).with_for_update()
            ).one()
            if incremental.latest_id(conn, collection.id) != incremental.base_id(base):
                continue
            # The base's blobs are live (a committed version names them, under this lock);
            # only the added ones are checked, as commit_version checks all of its own.
            require_stored(store, request.manifest, name=request.name)
            return commit_in(conn, collection, whole, manifest_key=manifest_key, borrowed=borrowed)
    raise ConflictError(
        f"Other versions of {request.name!r} kept being committed while this incremental "
        f"version was built on the latest ({incremental.ATTEMPTS} attempts); log it again."
    )


def _commit_to_twin(
    store: Store, request: CommitRequest, borrowed: Borrowed
) -> VersionRecord | None:
    """Re-logging committed content: the twin gains aliases, tags and lineage at once.

    Its manifest and blobs are durable already, so neither is written nor synced again;
    None when the collection has no committed version with this digest.
    """
    digest = request.manifest.digest()
    with store.engine.begin() as conn:
        project_id = ensure_project(conn, request.entity, request.project)
        collection = ensure_collection(conn, project_id, request.name, request.type)
        twin = conn.execute(
            select(versions.c.id).where(
                versions.c.collection_id == collection.id,
                versions.c.digest == digest,
                versions.c.state == COMMITTED,
            )
        ).first()
        if twin is None:
            return None
        # commit_in finds the same twin in this transaction and takes its twin branch,
        # which never reads the manifest key.
        return commit_in(conn, collection, request, manifest_key="", borrowed=borrowed)


def join_twin(
    conn: Connection,
    collection_id: int,
    twin: Row[Any],
    *,
    aliases: Sequence[str],
    tags: Sequence[str],
    run_ids: Sequence[str],
    entity: str,
    project: str,
) -> VersionRecord:
    """Content already committed, logged again: its version *twin* gains the aliases, the
    tags and the runs' lineage, and no version is made."""
    set_aliases(conn, collection_id, twin.id, aliases)
    add_tags(conn, twin.id, tags)
    for run_id in dict.fromkeys(run_ids):
        add_lineage(conn, run_id, twin.id, "logged")
    return version_record(conn, twin, entity=entity, project=project)


def commit_in(
    conn: Connection,
    collection: Row[Any],
    request: CommitRequest,
    *,
    manifest_key: str,
    borrowed: Borrowed = NOTHING_BORROWED,
    pending_id: str | None = None,
    writers: Sequence[str] = (),
) -> VersionRecord:
    """Step 3 of the protocol after its check, inside the caller's transaction; *request* is
    validated.

    The version becomes the next ``vN`` of *collection*: a new row, or the PENDING row
    *pending_id* of a distributed version. When a committed version with the same digest
    exists, no version is made: that twin gains the aliases, tags and lineage instead (the
    caller then drops the pending row). *writers* are runs that logged into the version
    besides ``request.run_id``.
    """
    manifest = request.manifest
    digest = manifest.digest()
    possession.record(conn, collection.project_id, borrowed)
    twin = conn.execute(
        select(versions)
        .where(
            versions.c.collection_id == collection.id,
            versions.c.digest == digest,
            versions.c.state == COMMITTED,
        )
        .order_by(versions.c.version_index.desc())
    ).first()
    run_ids = [*writers, *([request.run_id] if request.run_id else [])]
    if twin is not None:
        return join_twin(
            conn,
            collection.id,
            twin,
            aliases=request.aliases,
            tags=request.tags,
            run_ids=run_ids,
            entity=request.entity,
            project=request.project,
        )

    index = take_next_index(conn, collection.id)
    stamp = now()
    values: dict[str, Any] = {
        "version_index": index,
        "state": COMMITTED,
        "digest": digest,
        "algorithm": manifest.algorithm.value,
        "manifest_blob": manifest_key,
        "metadata": request.metadata,
        "description": request.description,
        "size": manifest.size,
        "file_count": len(manifest),
        "ttl_seconds": request.ttl_seconds,
        "committed_at": stamp,
        "updated_at": stamp,
    }
    if pending_id is None:
        version_id = uuid.uuid4().hex
        conn.execute(
            insert(versions).values(
                id=version_id,
                collection_id=collection.id,
                distributed_id=request.distributed_id,
                created_by_run=request.run_id,
                created_at=stamp,
                **values,
            )
        )
    else:
        version_id = pending_id
        conn.execute(update(versions).where(versions.c.id == version_id).values(**values))
    automations.emit(
        conn, VERSION_CREATED, version_id, version_aliases=["latest", *request.aliases]
    )
    set_aliases(conn, collection.id, version_id, ["latest", *request.aliases])
    add_tags(conn, version_id, request.tags)
    for run_id in dict.fromkeys(run_ids):
        add_lineage(conn, run_id, version_id, "logged")
    row = conn.execute(select(versions).where(versions.c.id == version_id)).one()
    return version_record(conn, row, entity=request.entity, project=request.project)


def take_next_index(conn: Connection, collection_id: int) -> int:
    """The collection's next version index, taken inside the caller's transaction.

    The UPDATE locks the collection row (PostgreSQL) or the database (SQLite) until the
    transaction ends, and the unique (collection, index) constraint backs it up.
    """
    taken = conn.execute(
        update(collections)
        .where(collections.c.id == collection_id)
        .values(next_index=collections.c.next_index + 1)
        .returning(collections.c.next_index)
    ).scalar_one()
    return int(taken) - 1


def set_aliases(
    conn: Connection,
    collection_id: int,
    version_id: str,
    names: Sequence[str],
    *,
    held_before: Collection[str] = (),
) -> None:
    """Point each alias of *names* at the version, taking it from any other version; an
    alias (but ``latest``) new to the version, and not among *held_before* (what a caller
    that cleared them first saw), is an ``alias_added`` event."""
    for alias in dict.fromkeys(names):
        held = (
            None
            if alias == "latest"
            else conn.execute(
                select(aliases.c.version_id).where(
                    aliases.c.collection_id == collection_id, aliases.c.alias == alias
                )
            ).scalar()
        )
        conn.execute(
            delete(aliases).where(
                aliases.c.collection_id == collection_id, aliases.c.alias == alias
            )
        )
        conn.execute(
            insert(aliases).values(collection_id=collection_id, alias=alias, version_id=version_id)
        )
        if alias != "latest" and held != version_id and alias not in held_before:
            automations.emit(conn, ALIAS_ADDED, version_id, alias=alias)


def add_tags(conn: Connection, version_id: str, names: Sequence[str]) -> None:
    existing = set(
        conn.execute(select(tags.c.tag).where(tags.c.version_id == version_id)).scalars()
    )
    for tag in names:
        if tag not in existing:
            conn.execute(insert(tags).values(version_id=version_id, tag=tag))


def add_lineage(conn: Connection, run_id: str, version_id: str, direction: str) -> None:
    if direction not in ("used", "logged"):
        raise ValidationError(f"Unknown lineage direction {direction!r}.")
    exists = conn.execute(
        select(lineage.c.run_id).where(
            lineage.c.run_id == run_id,
            lineage.c.version_id == version_id,
            lineage.c.direction == direction,
        )
    ).first()
    if exists is None:
        conn.execute(
            insert(lineage).values(
                run_id=run_id, version_id=version_id, direction=direction, created_at=now()
            )
        )
