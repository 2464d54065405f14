"""The mutations of W&B's GraphQL API: runs, and logging an artifact.

W&B logs an artifact in steps: ``createArtifact`` (a PENDING version), its files' upload
URLs, the PUTs, the manifest's upload, ``commitArtifact``. Soko holds the pending artifact
as a distributed version (:mod:`soko.service.distributed`) whose distributed id carries the
digest the client declared: the uploaded manifest's entries are upserted into it, and the
commit finishes it only when their digest is the declared one. Content equal to a committed
version of the collection is answered COMMITTED at once, so the client uploads nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Manifest, ManifestRef
from soko.core.records import COMMITTED, PENDING, VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
)
from soko.server.wandb import uploads
from soko.server.wandb.queries import (
    Context,
    Obj,
    artifact_obj,
    config_values,
    decode_id,
    default_entity,
    encode_id,
    membership_obj,
    readable_record,
    resolve_or_none,
    run_obj,
)
from soko.service import distributed, links, possession, rundata, runs, versions
from soko.service.commit import commit_version
from soko.service.registries import home_entity

DISTRIBUTED_PREFIX = "wandb-"
DEFAULT_PROJECT = "uncategorized"


def _json_object(text: Any, what: str) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        raise ValidationError(f"{what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object.")
    return value


# ----- runs -----------------------------------------------------------------------------


def upsert_bucket(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """Start a run (W&B's bucket), or update the config and summary of an existing one."""
    store = ctx.state.store
    run_id = data.get("name") or (decode_id("Run", data["id"]) if data.get("id") else None)
    existing = None
    if run_id:
        try:
            existing = runs.get_run(store, run_id)
        except NotFoundError:
            existing = None
    if existing is not None and not ctx.principal.may(existing.entity, existing.project, "viewer"):
        # Run ids are one namespace: that the id is taken cannot be hidden, but the project
        # that holds it is not told (as over REST).
        raise ConflictError(f"The run id {run_id!r} is taken; choose another.")
    entity = data.get("entityName") or (existing.entity if existing else None)
    entity = entity or default_entity(ctx.principal)
    project = data.get("modelName") or (existing.project if existing else DEFAULT_PROJECT)
    ctx.principal.require(entity, project, "writer")
    config = _json_object(data.get("config"), "The run config")
    summary = _json_object(data.get("summaryMetrics"), "The run summary")
    if existing is not None:
        if (existing.entity, existing.project) != (entity, project):
            raise ConflictError(f"The run id {run_id!r} is taken; choose another.")
        record = existing
    else:
        record = runs.start_run(
            store,
            run_id=run_id or secrets.token_hex(4),
            entity=entity,
            project=project,
            name=data.get("displayName"),
            job_type=data.get("jobType"),
            group=data.get("groupName"),
            config=config_values(config) if config else None,
        )
    if (existing is not None and config is not None) or summary is not None:
        rundata.write_run_data(
            store,
            record.id,
            config=config_values(config) if config is not None else None,
            summary={k: v for k, v in (summary or {}).items() if k != "_wandb"} or None,
        )
        record = runs.get_run(store, record.id)
    return {"bucket": run_obj(ctx, record), "inserted": existing is None}


def create_run_files(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """URLs for the run's own files (config, summary, requirements): soko keeps a run's
    config and summary from its API calls, so these bytes are accepted and dropped."""
    run = ctx.state.writable_run(ctx.principal, data["runName"])
    token = ctx.signer.sign(
        "discard", {"r": run.id}, expires_in=ctx.state.config.presign_expiry_seconds
    )
    return {
        "runID": encode_id("Run", run.id),
        "uploadHeaders": [],
        "files": [
            {"name": name, "uploadUrl": f"{ctx.base_url}/wandb/discard/{token}"}
            for name in data["files"]
        ],
    }


def use_artifact(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """Record that a run used a version (its input): writer on the run, viewer on the
    version, as the REST API asks."""
    run = ctx.state.writable_run(ctx.principal, data["runName"])
    record = readable_record(ctx, data["artifactID"])
    runs.record_use(ctx.state.store, run.id, record.id)
    return {"artifact": artifact_obj(ctx, record)}


def link_artifact(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """Link a committed version into a collection of links (a registry's, or a portfolio
    of a project): viewer on the version, writer where the link goes, as over REST."""
    if not data.get("artifactID"):
        raise ValidationError(
            "A link names the artifact by its server id: log the artifact and wait() for "
            "it before linking it."
        )
    record = readable_record(ctx, data["artifactID"])
    project = data["projectName"]
    entity = home_entity(ctx.state.store, data["entityName"], project)
    ctx.principal.require(entity, project, "writer")
    collection = data["artifactPortfolioName"]
    aliases = [
        a["alias"]
        for a in data.get("aliases") or ()
        if a.get("artifactCollectionName") in (None, collection) and a["alias"] != "latest"
    ]
    link = links.link_version(
        ctx.state.store,
        record.id,
        entity=entity,
        project=project,
        registry=collection,
        aliases_to_add=aliases,
    )
    return {"versionIndex": link.version_index, "artifactMembership": membership_obj(ctx, link)}


# ----- artifacts ------------------------------------------------------------------------


def _algorithm(value: str | None) -> Algorithm:
    return Algorithm.XXH128 if value == "MANIFEST_XXH128" else Algorithm.MD5


def declared_digest(record: VersionRecord) -> str:
    """The version digest the client declared when it created this pending artifact."""
    distributed_id = record.distributed_id or ""
    if not distributed_id.startswith(DISTRIBUTED_PREFIX):
        raise ValidationError(f"{record.qualified_name} was not created by a wandb client.")
    return distributed_id[len(DISTRIBUTED_PREFIX) :].split("-", 1)[0]


def _writable(ctx: Context, artifact_id: str) -> VersionRecord:
    return ctx.state.writable_version(ctx.principal, decode_id("Artifact", artifact_id))


def _twin(ctx: Context, entity: str, project: str, name: str, digest: str) -> VersionRecord | None:
    try:
        found = versions.list_versions(ctx.state.store, entity, project, name)
    except NotFoundError:
        return None
    for record in reversed(found):
        if record.digest == digest and record.state == COMMITTED and not record.is_link:
            return record
    return None


def create_artifact(ctx: Context, data: Mapping[str, Any]) -> Obj:
    state = ctx.state
    if data.get("distributedID"):
        raise ValidationError(
            "Distributed artifacts (run.upsert_artifact / finish_artifact) are not taken "
            "from the wandb client; soko's own SDK logs them (import soko as wandb)."
        )
    entity = data.get("entityName") or default_entity(ctx.principal)
    project = data["projectName"]
    name = data["artifactCollectionName"]
    ctx.principal.require(entity, project, "writer")
    run_id = data.get("runName") or None
    if run_id is not None:
        state.writable_run(ctx.principal, run_id)
    aliases = [
        a["alias"]
        for a in data.get("aliases") or ()
        if a.get("artifactCollectionName") in (None, name) and a["alias"] != "latest"
    ]
    digest = str(data["digest"])
    algorithm = _algorithm(data.get("digestAlgorithm"))
    ttl = data.get("ttlDurationSeconds")
    request = CommitRequest(
        entity=entity,
        project=project,
        name=name,
        type=data["artifactTypeName"],
        manifest=Manifest.of([], algorithm),
        aliases=aliases,
        tags=[t["tagName"] for t in data.get("tags") or ()],
        metadata=_json_object(data.get("metadata"), "The artifact metadata") or {},
        description=data.get("description"),
        ttl_seconds=ttl if isinstance(ttl, int) and ttl > 0 else None,
        run_id=run_id,
    )
    twin = _twin(ctx, entity, project, name, digest)
    if twin is not None and twin.manifest_blob is not None:
        # The same content again: the committed version gains the aliases and the run's
        # lineage edge, and the client, told COMMITTED, uploads nothing.
        ref = ManifestRef.parse(twin.manifest_blob)
        manifest = state.store.load_manifest(ref, Algorithm.parse(twin.algorithm))
        sources = state.sources(
            ctx.principal, entity=entity, project=project, name=name, version_ids=[twin.id]
        )
        borrowed = possession.check_commit(
            state.store,
            entity=entity,
            project=project,
            name=name,
            manifest=manifest,
            sources=sources,
        )
        record = commit_version(
            state.store,
            replace(request, manifest=manifest, type=twin.type),
            borrowed=borrowed,
        )
    else:
        client_id = str(data.get("clientID") or secrets.token_hex(16))
        request = replace(request, distributed_id=f"{DISTRIBUTED_PREFIX}{digest}-{client_id}")
        record = distributed.upsert(state.store, request)
    latest = resolve_or_none(ctx, entity, project, name, "latest")
    artifact = artifact_obj(ctx, record)
    artifact["artifactSequence"]["latestArtifact"] = (
        None if latest is None else {"id": encode_id("Artifact", latest.id)}
    )
    return {"artifact": artifact}


INCREMENTAL_MANIFEST = "IncrementalManifest"
"""The id kind of the manifest of an incremental artifact (``Artifact(...,
incremental=True)``): its upload holds only the files added, committed over the
collection's latest version (soko's incremental commit)."""


def _manifest_file(ctx: Context, record: VersionRecord, *, incremental: bool) -> Obj:
    """The manifest file of a pending artifact, with the URL its JSON is PUT to."""
    file: Obj = {"id": encode_id("File", f"{record.id}/wandb_manifest.json")}
    if record.state == PENDING:
        token = ctx.signer.sign(
            "manifest",
            {"v": record.id, "u": ctx.principal.user_id, "i": incremental},
            expires_in=ctx.state.config.presign_expiry_seconds,
        )
        file["uploadUrl"] = f"{ctx.base_url}/wandb/manifests/{token}"
        file["uploadHeaders"] = []
    return file


def create_artifact_manifest(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """The manifest's id, and the URL the client PUTs the manifest JSON to (once it knows
    the manifest's digest). An incremental artifact is told an id of its own kind, which
    it sends back to ask for the URL (``updateArtifactManifest``)."""
    record = _writable(ctx, data["artifactID"])
    incremental = data.get("type") == "INCREMENTAL"
    kind = INCREMENTAL_MANIFEST if incremental else "ArtifactManifest"
    manifest: Obj = {"id": encode_id(kind, record.id)}
    if data.get("digest"):
        manifest["file"] = _manifest_file(ctx, record, incremental=incremental)
    else:
        manifest["file"] = {"id": encode_id("File", f"{record.id}/wandb_manifest.json")}
    return {"artifactManifest": manifest}


def update_artifact_manifest(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """The upload URL of an incremental artifact's manifest (the client asks for it with
    the id :func:`create_artifact_manifest` gave)."""
    manifest_id = data["artifactManifestID"]
    try:
        version_id = decode_id(INCREMENTAL_MANIFEST, manifest_id)
    except ValidationError:
        decode_id("ArtifactManifest", manifest_id)  # a manifest id, but not incremental's
        raise ValidationError(
            "Only the manifest of an incremental artifact is updated; a full manifest is "
            "uploaded with createArtifactManifest."
        ) from None
    record = ctx.state.writable_version(ctx.principal, version_id)
    return {
        "artifactManifest": {
            "id": manifest_id,
            "file": _manifest_file(ctx, record, incremental=True),
        }
    }


def _blob_digest(spec: Mapping[str, Any], algorithm: Algorithm) -> Digest:
    if algorithm is Algorithm.XXH128:
        if not spec.get("digest"):
            raise ValidationError(
                f"File {spec['name']!r} of an XXH128 artifact came without its XXH128 digest."
            )
        return Digest.from_b64(spec["digest"], Algorithm.XXH128)
    return Digest.from_b64(spec["md5"], Algorithm.MD5)


def create_artifact_files(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """Per file, a URL to PUT its bytes to; null when the project holds them already."""
    specs = list(data["artifactFiles"])
    records: dict[str, VersionRecord] = {}
    for spec in specs:
        if spec["artifactID"] not in records:
            records[spec["artifactID"]] = _writable(ctx, spec["artifactID"])
    digests = {
        id(spec): _blob_digest(spec, Algorithm.parse(records[spec["artifactID"]].algorithm))
        for spec in specs
    }
    missing: set[Digest] = set()
    for record in records.values():
        sources = ctx.state.sources(
            ctx.principal,
            entity=record.entity,
            project=record.project,
            name=record.collection,
            version_ids=[],
        )
        mine = {digests[id(s)] for s in specs if records[s["artifactID"]] is record}
        found = possession.missing(
            ctx.state.store,
            entity=record.entity,
            project=record.project,
            digests=mine,
            sources=sources,
        )
        missing |= found
    edges = []
    for spec in specs:
        record = records[spec["artifactID"]]
        digest = digests[id(spec)]
        url: str | None = None
        parts: Obj | None = None
        if digest in missing:
            missing.discard(digest)  # one upload per content, however many paths hold it
            url = uploads.upload_url(ctx, record, digest)
            if spec.get("uploadPartsInput"):
                parts = uploads.part_urls(ctx, record, digest, spec["uploadPartsInput"])
            ctx.on_upload_url()
        edges.append(
            {
                "node": {
                    "__typename": "File",
                    "id": encode_id("File", f"{record.id}/{spec['name']}"),
                    "name": spec["name"],
                    "storagePath": f"{digest.algorithm.key}/{digest.hex}",
                    "uploadUrl": url,
                    "uploadHeaders": [f"Content-MD5:{spec['md5']}"] if url else [],
                    "uploadMultipartUrls": parts,
                    "artifact": {"id": spec["artifactID"]},
                }
            }
        )
    return {"files": {"pageInfo": {"endCursor": None, "hasNextPage": False}, "edges": edges}}


def commit_artifact(ctx: Context, data: Mapping[str, Any]) -> Obj:
    """Commit the pending artifact, if the manifest uploaded for it has the digest the
    client declared when it created it."""
    record = _writable(ctx, data["artifactID"])
    if record.state == COMMITTED:
        return {"artifact": artifact_obj(ctx, record)}
    declared = declared_digest(record)
    algorithm = Algorithm.parse(record.algorithm)
    pending = distributed.pending_manifest(ctx.state.store, record.id, algorithm)
    if pending.digest() != declared:
        raise ValidationError(
            f"The manifest uploaded for {record.entity}/{record.project}/{record.collection} "
            f"has the digest {pending.digest()}, not {declared} as declared; nothing was "
            "committed. Upload the manifest first."
        )
    finished = distributed.finish(
        ctx.state.store,
        CommitRequest(
            entity=record.entity,
            project=record.project,
            name=record.collection,
            type=record.type,
            manifest=Manifest.of([], algorithm),
            distributed_id=record.distributed_id,
        ),
    )
    return {"artifact": artifact_obj(ctx, finished)}


def store_manifest(
    ctx: Context, version_id: str, manifest: Manifest, *, incremental: bool = False
) -> None:
    """Upsert the uploaded manifest's entries into the pending version *version_id*
    (what a commit of soko's own client checks, is checked: writer role, possession of
    every blob with its size). An *incremental* one is committed over the collection's
    latest version as the commit finds it."""
    state = ctx.state
    record = state.writable_version(ctx.principal, version_id)
    if record.state != PENDING:
        raise ConflictError(f"{record.qualified_name} is committed already.")
    expected = declared_digest(record)
    if manifest.digest() != expected:
        raise ValidationError(
            f"The uploaded manifest has the digest {manifest.digest()}, not the artifact's "
            f"{expected}; nothing was stored."
        )
    sources = state.sources(
        ctx.principal,
        entity=record.entity,
        project=record.project,
        name=record.collection,
        version_ids=[],
    )
    lacking = possession.missing(
        state.store,
        entity=record.entity,
        project=record.project,
        digests=manifest.blob_digests(),
        sources=sources,
    )
    uploads.complete_staged(ctx, record, lacking)
    borrowed = possession.check_commit(
        state.store,
        entity=record.entity,
        project=record.project,
        name=record.collection,
        manifest=manifest,
        sources=sources,
    )
    request = CommitRequest(
        entity=record.entity,
        project=record.project,
        name=record.collection,
        type=record.type,
        manifest=manifest,
        distributed_id=record.distributed_id,
        incremental=incremental,
    )
    distributed.upsert(state.store, request, borrowed=borrowed)
