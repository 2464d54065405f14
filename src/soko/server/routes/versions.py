"""Versions and collections: commit, distributed upsert/finish, resolve, list, change, delete,
link. Each handler checks the caller's role, then calls the same service functions as the
embedded store."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response

from soko.core.digests import Algorithm
from soko.core.manifest import ManifestRef
from soko.core.requests import CommitRequest
from soko.errors import CorruptBlobError, MissingBlobsError, NotFoundError, ValidationError
from soko.server import by_reference
from soko.server.auth import Principal
from soko.server.deps import Caller, State
from soko.server.state import ServerState
from soko.service import distributed, links, pages, possession, relog, versions
from soko.service.commit import Borrowed, commit_version
from soko.service.registries import home_entity
from soko.wire import API_PREFIX
from soko.wire.base import parse_digest
from soko.wire.fields import CollectionName, ProjectName, TypeFilter, VersionId
from soko.wire.records import (
    CollectionList,
    CollectionOut,
    ProjectList,
    TypeList,
    VersionList,
    VersionOut,
)
from soko.wire.requests import AbandonIn, CommitIn, CommittedOut, LinkIn, UpdateVersionIn

router = APIRouter(prefix=API_PREFIX, tags=["versions"])

_HEX_DIGEST = re.compile(r"[0-9a-f]{32,128}")


def _request_of(
    state: ServerState, caller: Principal, body: CommitIn
) -> tuple[CommitRequest, Borrowed]:
    """The client's commit request, with the manifest read from the blob the client sent,
    and the blobs of other projects it borrows.

    The project must possess the manifest blob and every blob the manifest names, each
    with its real size (:mod:`soko.service.possession`): a writer cannot reach another
    project's bytes by naming their digests.
    """
    _require_committer(state, caller, body)
    if body.base_version is not None:
        raise ValidationError("Only a plain commit is sent by reference (base_version).")
    ref = ManifestRef(parse_digest(body.manifest_blob))
    digest = ref.digest
    possession.require_manifest_blob(
        state.store, entity=body.entity, project=body.project, digest=digest
    )
    try:
        state.check_manifest_size(digest, name=f"{body.entity}/{body.project}/{body.name}")
        manifest = state.store.load_manifest(ref, Algorithm.parse(body.algorithm), cached=False)
    except NotFoundError:
        raise possession.manifest_blob_not_stored(digest) from None
    except CorruptBlobError:
        if state.store.blobs.exists(digest):
            raise  # a store without a quarantine keeps the damaged blob
        # Set aside: the client's retry of a MissingBlobsError uploads it again.
        raise MissingBlobsError(
            f"The stored manifest blob {body.manifest_blob} was damaged and has been set "
            "aside; upload it again."
        ) from None
    sources = state.sources(
        caller,
        entity=body.entity,
        project=body.project,
        name=body.name,
        version_ids=body.sources,
    )
    borrowed = possession.check_commit(
        state.store,
        entity=body.entity,
        project=body.project,
        name=body.name,
        manifest=manifest,
        sources=sources,
    )
    return body.to_request(manifest), borrowed


def _require_committer(state: ServerState, caller: Principal, body: CommitIn) -> None:
    """The caller may commit into the project, as the run it names (if any)."""
    caller.require(body.entity, body.project, "writer")
    if body.run_id is not None:
        try:
            state.writable_run(caller, body.run_id)
        except NotFoundError:
            raise NotFoundError(f"No run with id {body.run_id!r}; start it first.") from None


def _require_distributed_id(body: CommitIn) -> None:
    if body.distributed_id is None:
        raise ValidationError("distributed_id is required here.")


@router.post("/versions")
def commit(body: CommitIn, state: State, caller: Caller) -> VersionOut:
    """Commit the next version of a collection (or return the one with the same digest)."""
    if body.distributed_id is not None:
        raise ValidationError("A plain commit takes no distributed_id; use /versions/upsert.")
    if body.base_version is not None:
        # A new draft of a committed version, sent as its change (soko.server.by_reference).
        _require_committer(state, caller, body)
        return VersionOut.of(by_reference.commit(state, caller, body))
    if not body.incremental:
        # Committed content logged again: its twin, without reading the manifest's entries.
        _require_committer(state, caller, body)
        twin = relog.commit_to_twin(
            state.store,
            entity=body.entity,
            project=body.project,
            name=body.name,
            type_name=body.type,
            manifest_blob=body.manifest_blob,
            algorithm=body.algorithm,
            aliases=body.aliases,
            tags=body.tags,
            run_id=body.run_id,
        )
        if twin is not None:
            return VersionOut.of(twin)
    request, borrowed = _request_of(state, caller, body)
    return VersionOut.of(commit_version(state.store, request, borrowed=borrowed))


@router.get("/projects/{entity}/{project}/collections/{name}/committed/{digest}")
def committed(
    entity: ProjectName,
    project: ProjectName,
    name: CollectionName,
    digest: str,
    state: State,
    caller: Caller,
) -> CommittedOut:
    """Whether a log of content *digest* (a version digest, hex) into the collection needs
    no blob: a writer's re-log then skips the missing-blob question for its every file."""
    caller.require(entity, project, "writer")
    if not _HEX_DIGEST.fullmatch(digest):
        raise ValidationError(f"Not a version digest: {digest!r}.")
    found = relog.nothing_to_store(state.store, entity, project, name, digest)
    return CommittedOut(committed=found)


@router.get("/versions/{version_id}/manifest/index")
def manifest_index(version_id: VersionId, state: State, caller: Caller) -> Response:
    """The index of the version's manifest (:mod:`soko.core.manifest_index`, as stored):
    each slice of its entries, its byte range and digest, and its folders. A client keeps
    a large version as a new draft's base with it, reading the slices it needs."""
    record, ref = state.readable_manifest(caller, version_id)
    index = pages.index_of(
        state.store,
        ref,
        # Building an index reads the manifest whole, once: the server's bound applies.
        before_build=lambda: state.check_manifest_size(ref.digest, name=record.qualified_name),
    )
    return Response(index.to_bytes(), media_type="application/octet-stream")


@router.post("/versions/upsert")
def upsert(body: CommitIn, state: State, caller: Caller) -> VersionOut:
    request, borrowed = _request_of(state, caller, body)
    _require_distributed_id(body)
    return VersionOut.of(distributed.upsert(state.store, request, borrowed=borrowed))


@router.post("/versions/finish")
def finish(body: CommitIn, state: State, caller: Caller) -> VersionOut:
    request, borrowed = _request_of(state, caller, body)
    _require_distributed_id(body)
    return VersionOut.of(distributed.finish(state.store, request, borrowed=borrowed))


@router.get("/projects/{entity}/{project}/pending")
def list_pending(
    entity: ProjectName,
    project: ProjectName,
    state: State,
    caller: Caller,
    name: CollectionName | None = None,
) -> VersionList:
    caller.require(entity, project, "viewer")
    records = distributed.list_pending(state.store, entity=entity, project=project, name=name)
    return VersionList.of(records)


@router.post("/pending/abandon")
def abandon_pending(body: AbandonIn, state: State, caller: Caller) -> VersionOut:
    caller.require(body.entity, body.project, "writer")
    record = distributed.abandon_pending(
        state.store,
        entity=body.entity,
        project=body.project,
        name=body.name,
        distributed_id=body.distributed_id,
    )
    return VersionOut.of(record)


@router.get("/versions/{version_id}")
def get_version(version_id: VersionId, state: State, caller: Caller) -> VersionOut:
    return VersionOut.of(state.readable_version(caller, version_id))


@router.patch("/versions/{version_id}")
def update_version(
    version_id: VersionId, body: UpdateVersionIn, state: State, caller: Caller
) -> VersionOut:
    """Change the fields given; a field left out of the body is left as it is."""
    state.writable_version(caller, version_id)
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    return VersionOut.of(versions.update_version(state.store, version_id, **changes))


@router.delete("/versions/{version_id}", status_code=204)
def delete_version(
    version_id: VersionId, state: State, caller: Caller, delete_aliases: bool = False
) -> Response:
    state.writable_version(caller, version_id)
    versions.delete_version(state.store, version_id, delete_aliases=delete_aliases)
    return Response(status_code=204)


@router.post("/versions/{version_id}/links")
def link_version(version_id: VersionId, body: LinkIn, state: State, caller: Caller) -> VersionOut:
    """Link a version the caller may read into a registry collection it may write; the
    link, with its own ``vN`` and aliases."""
    state.readable_version(caller, version_id)
    entity = home_entity(state.store, body.entity, body.project)
    caller.require(entity, body.project, "writer")
    record = links.link_version(
        state.store,
        version_id,
        entity=entity,
        project=body.project,
        registry=body.registry,
        aliases_to_add=body.aliases,
    )
    return VersionOut.of(record)


@router.get("/versions/{version_id}/links")
def list_links(version_id: VersionId, state: State, caller: Caller) -> VersionList:
    """The links of a version that the caller may read."""
    state.readable_version(caller, version_id)
    found = links.list_links(state.store, version_id)
    return VersionList.of([r for r in found if caller.may(r.entity, r.project, "viewer")])


@router.get("/projects/{entity}/{project}/collections/{name}/versions/{selector}")
def resolve(
    entity: ProjectName,
    project: ProjectName,
    name: CollectionName,
    selector: str,
    state: State,
    caller: Caller,
) -> VersionOut:
    """The version ``name:selector`` names (an alias or ``vN``)."""
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "viewer")
    return VersionOut.of(versions.resolve(state.store, entity, project, name, selector))


@router.get("/projects/{entity}/{project}/collections/{name}/versions")
def list_versions(
    entity: ProjectName, project: ProjectName, name: CollectionName, state: State, caller: Caller
) -> VersionList:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "viewer")
    return VersionList.of(versions.list_versions(state.store, entity, project, name))


@router.get("/projects/{entity}/{project}/collections/{name}")
def get_collection(
    entity: ProjectName, project: ProjectName, name: CollectionName, state: State, caller: Caller
) -> CollectionOut:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "viewer")
    return CollectionOut.of(versions.get_collection(state.store, entity, project, name))


@router.get("/projects/{entity}/{project}/collections")
def list_collections(
    entity: ProjectName,
    project: ProjectName,
    state: State,
    caller: Caller,
    type: TypeFilter | None = None,
) -> CollectionList:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "viewer")
    records = versions.list_collections(state.store, entity, project, type)
    return CollectionList(collections=[CollectionOut.of(r) for r in records])


@router.get("/projects/{entity}/{project}/types")
def list_types(entity: ProjectName, project: ProjectName, state: State, caller: Caller) -> TypeList:
    entity = home_entity(state.store, entity, project)
    caller.require(entity, project, "viewer")
    return TypeList(types=versions.list_types(state.store, entity, project))


@router.get("/projects")
def list_projects(state: State, caller: Caller, entity: ProjectName | None = None) -> ProjectList:
    """The projects the caller may read."""
    records = versions.list_projects(state.store, entity)
    return ProjectList.of([p for p in records if caller.may(p.entity, p.name, "viewer")])
