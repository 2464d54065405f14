"""The queries of W&B's GraphQL API, and soko's records as W&B's objects: plain dicts
whose fields that take arguments are callables (graphql-core's default resolver calls them
with the field's arguments).

Ids are standard base64, as W&B's are (the client decodes them): ``kind:value``, so an id
of one kind is never taken for another.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, ManifestRef
from soko.core.records import RunRecord, VersionRecord, as_utc
from soko.errors import NotFoundError, ValidationError
from soko.server.auth import Principal
from soko.server.state import ServerState
from soko.server.wandb.joins import Joins
from soko.server.wandb.signing import Signer
from soko.service import pages, versions
from soko.service.registries import home_entity, organisation_for

Obj = dict[str, Any]
FILES_PAGE_MAX = 10_000
# W&B's TTL values for "no TTL" (DISABLED); a version without one is answered so.
TTL_DISABLED = -2


def encode_id(kind: str, value: str) -> str:
    return base64.standard_b64encode(f"{kind}:{value}".encode()).decode("ascii")


def decode_id(kind: str, text: str) -> str:
    """The value of an id made by :func:`encode_id` for *kind*; ValidationError otherwise."""
    try:
        found, sep, value = base64.b64decode(text, validate=True).decode().partition(":")
    except ValueError:  # not ASCII, not base64, or not UTF-8 once decoded
        raise ValidationError(f"Not an id of this server: {text!r}") from None
    if not sep or found != kind or not value:
        raise ValidationError(f"Not an id of this server: {text!r}")
    return value


def wandb_algorithm(algorithm: str) -> str:
    return "MANIFEST_XXH128" if Algorithm.parse(algorithm) is Algorithm.XXH128 else "MANIFEST_MD5"


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Context:
    """What every resolver of one request needs."""

    state: ServerState
    principal: Principal
    signer: Signer
    base_url: str
    """Where this server is reached, as the client sees it (no trailing slash)."""
    on_upload_url: Callable[[], None] = lambda: None
    """Called for each upload URL handed out (the server counts them)."""
    joins: Joins | None = None
    """Where joins of parts run in the background; None: in the request itself."""

    def download_url(self, digest: Digest, name: str) -> str:
        token = self.signer.sign(
            "get", {"d": str(digest)}, expires_in=self.state.config.presign_expiry_seconds
        )
        safe = name.rsplit("/", 1)[-1] or "file"
        return f"{self.base_url}/wandb/blobs/{token}/{safe}"

    def blob_url(self, digest: Digest, name: str) -> str:
        """A URL the client GETs *digest* from: presigned by the bucket, else signed here."""
        presigner = self.state.presigner
        if presigner is not None:
            return presigner.presign_get(digest, expires=self.state.config.presign_expiry_seconds)
        return self.download_url(digest, name)


def project_obj(ctx: Context, entity: str, project: str) -> Obj:
    pid = encode_id("Project", f"{entity}/{project}")
    return {
        "__typename": "Project",
        "id": pid,
        "internalId": pid,
        "name": project,
        "entityName": entity,
        "entity": entity_obj(ctx, entity),
        "bucket": lambda _info, name, missingOk=None: run_in(ctx, entity, project, name),
        "run": lambda _info, name: run_in(ctx, entity, project, name),
        "artifact": lambda _info, name, enableTracking=None: membership(
            ctx, entity, project, name, "artifact"
        ),
        "artifactCollectionMembership": lambda _info, name: membership(
            ctx, entity, project, name, "membership"
        ),
        "artifactType": lambda _info, name: artifact_type(ctx, entity, project, name),
        "artifactCollection": lambda _info, name: collection(ctx, entity, project, name),
    }


def entity_obj(ctx: Context, name: str) -> Obj:
    def organization(_info: Any) -> Obj:
        return organisation_obj(organisation_for(ctx.state.store, name))

    return {
        "__typename": "Entity",
        "id": encode_id("Entity", name),
        "name": name,
        "xxhashDigestsEnabled": True,
        "organization": organization,
        # W&B asks a personal entity's user for its organisations; an entity of soko is in
        # one organisation, answered as the entity's own.
        "user": lambda _info: {"organizations": [organization(_info)]},
    }


def organisation_obj(name: str) -> Obj:
    """A soko organisation as W&B's: its registries live in the entity of its name."""
    return {
        "__typename": "Organization",
        "id": encode_id("Organization", name),
        "name": name,
        "coreWeaveOrganizationId": None,
        "orgEntity": {"__typename": "Entity", "id": encode_id("Entity", name), "name": name},
    }


def sequence_obj(ctx: Context, entity: str, project: str, name: str, type_name: str) -> Obj:
    def latest(_info: Any) -> Obj | None:
        record = resolve_or_none(ctx, entity, project, name, "latest")
        return None if record is None else artifact_obj(ctx, record)

    def algorithm(_info: Any) -> str | None:
        record = resolve_or_none(ctx, entity, project, name, "latest")
        return None if record is None else wandb_algorithm(record.algorithm)

    def member(_info: Any, aliasName: str) -> Obj | None:
        record = resolve_or_none(ctx, entity, project, name, aliasName)
        return None if record is None else membership_obj(ctx, record)

    return {
        "__typename": "ArtifactSequence",
        "id": encode_id("ArtifactCollection", f"{entity}/{project}/{name}"),
        "name": name,
        "description": None,
        "createdAt": None,
        "project": project_obj(ctx, entity, project),
        "defaultArtifactType": {"id": encode_id("ArtifactType", type_name), "name": type_name},
        "latestArtifact": latest,
        "digestAlgorithm": algorithm,
        "artifactMembership": member,
    }


def _aliases(ctx: Context, record: VersionRecord) -> list[Obj]:
    seq = sequence_obj(ctx, record.entity, record.project, record.collection, record.type)
    return [
        {
            "__typename": "ArtifactAlias",
            "id": encode_id("ArtifactAlias", f"{record.id}/{alias}"),
            "alias": alias,
            "artifactCollection": seq,
        }
        for alias in record.aliases
    ]


def _manifest_obj(ctx: Context, record: VersionRecord) -> Obj | None:
    if record.manifest_blob is None:
        return None
    digest = ManifestRef.parse(record.manifest_blob).digest
    return {
        "__typename": "ArtifactManifest",
        "id": encode_id("ArtifactManifest", record.id),
        "file": {
            "__typename": "File",
            "id": encode_id("File", f"{record.id}/wandb_manifest.json"),
            "name": "wandb_manifest.json",
            "directUrl": ctx.download_url(digest, "wandb_manifest.json"),
        },
    }


def files_field(ctx: Context, record: VersionRecord) -> Callable[..., Obj]:
    def files(
        _info: Any, after: str | None = None, first: int | None = None, names: Any = None
    ) -> Obj:
        return files_page(ctx, record, after=after, first=first, names=names)

    return files


def artifact_obj(ctx: Context, record: VersionRecord) -> Obj:
    seq = sequence_obj(ctx, record.entity, record.project, record.collection, record.type)
    return {
        "__typename": "Artifact",
        "id": encode_id("Artifact", record.id),
        "artifactSequence": seq,
        "versionIndex": record.version_index,
        "artifactType": {"id": encode_id("ArtifactType", record.type), "name": record.type},
        "description": record.description,
        "metadata": json.dumps(record.metadata),
        "ttlDurationSeconds": record.ttl_seconds if record.ttl_seconds else TTL_DISABLED,
        "ttlIsInherited": False,
        "tags": [{"__typename": "Tag", "id": encode_id("Tag", t), "name": t} for t in record.tags],
        "historyStep": None,
        "state": record.state,
        "size": record.size,
        "digest": record.digest,
        "digestAlgorithm": wandb_algorithm(record.algorithm),
        "commitHash": None,
        "fileCount": record.file_count,
        "createdAt": timestamp(record.created_at),
        "updatedAt": timestamp(record.updated_at),
        "aliases": lambda _info: _aliases(ctx, record),
        "currentManifest": lambda _info: _manifest_obj(ctx, record),
        "files": files_field(ctx, record),
    }


def membership_obj(ctx: Context, record: VersionRecord) -> Obj:
    return {
        "__typename": "ArtifactCollectionMembership",
        "id": encode_id("ArtifactCollectionMembership", record.id),
        "versionIndex": record.version_index,
        "createdAt": timestamp(record.created_at),
        "aliases": lambda _info: _aliases(ctx, record),
        "artifactCollection": sequence_obj(
            ctx, record.entity, record.project, record.collection, record.type
        ),
        "artifact": artifact_obj(ctx, record),
        "files": files_field(ctx, record),
    }


def readable_record(ctx: Context, artifact_id: str) -> VersionRecord:
    """The version an artifact id names, if the caller may read it (NotFoundError else)."""
    return ctx.state.readable_version(ctx.principal, decode_id("Artifact", artifact_id))


def committed_or_none(ctx: Context, artifact_id: str) -> VersionRecord | None:
    try:
        return readable_record(ctx, artifact_id)
    except NotFoundError:
        return None


def config_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A W&B run config (``{key: {"value": v, "desc": …}}``) as soko keeps it: the values,
    without W&B's own ``_wandb`` key."""
    values: dict[str, Any] = {}
    for key, item in config.items():
        if key == "_wandb":
            continue
        values[key] = item.get("value") if isinstance(item, Mapping) and "value" in item else item
    return values


def resolve_or_none(
    ctx: Context, entity: str, project: str, name: str, selector: str
) -> VersionRecord | None:
    """The committed version ``name:selector`` of a project the caller may read, or None
    (W&B answers a missing artifact with null, not an error)."""
    entity = home_entity(ctx.state.store, entity, project)
    if not ctx.principal.may(entity, project, "viewer"):
        return None
    try:
        return versions.resolve(ctx.state.store, entity, project, name, selector)
    except NotFoundError:
        return None


def _split_name(name: str) -> tuple[str, str]:
    """``name:selector`` (``latest`` when there is no selector)."""
    collection, _, selector = name.partition(":")
    return collection, selector or "latest"


def membership(ctx: Context, entity: str, project: str, name: str, kind: str) -> Obj | None:
    collection, selector = _split_name(name)
    record = resolve_or_none(ctx, entity, project, collection, selector)
    if record is None:
        return None
    return artifact_obj(ctx, record) if kind == "artifact" else membership_obj(ctx, record)


def collection(ctx: Context, entity: str, project: str, name: str) -> Obj | None:
    record = resolve_or_none(ctx, entity, project, name, "latest")
    if record is None:
        return None
    return sequence_obj(ctx, record.entity, record.project, record.collection, record.type)


def artifact_type(ctx: Context, entity: str, project: str, type_name: str) -> Obj:
    def of_type(_info: Any, name: str) -> Obj | None:
        found = collection(ctx, entity, project, name)
        if found is None or found["defaultArtifactType"]["name"] != type_name:
            return None
        return found

    return {
        "__typename": "ArtifactType",
        "id": encode_id("ArtifactType", type_name),
        "name": type_name,
        "artifactCollection": of_type,
        "artifactSequence": of_type,
    }


def files_page(
    ctx: Context,
    record: VersionRecord,
    *,
    after: str | None,
    first: int | None,
    names: Any,
) -> Obj:
    """One page of the version's stored files with their download URLs, in path order;
    the cursor is the last path of the page. Read through the manifest's index, the slices
    the page needs (:mod:`soko.service.pages`), not the whole manifest."""
    if record.manifest_blob is None:
        raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
    ref = ManifestRef.parse(record.manifest_blob)
    store = ctx.state.store
    index = pages.index_of(
        store,
        ref,
        # Building an index reads the manifest whole, once: the server's bound applies.
        before_build=lambda: ctx.state.check_manifest_size(ref.digest, name=record.qualified_name),
    )
    size = max(1, min(first or FILES_PAGE_MAX, FILES_PAGE_MAX))
    page: list[Entry] = []
    has_next = False
    if names:
        found = (pages.entry_at(store, ref, name) for name in set(names))
        entries = sorted(
            (e for e in found if e is not None and not e.is_reference), key=lambda e: e.path
        )
        total = len(entries)
        later = [e for e in entries if after is None or e.path > after]
        page, has_next = later[:size], len(later) > size
    else:
        total = index.count - index.references
        for entry in pages.iter_entries(store, ref, after=after or None, page_size=size + 1):
            if entry.is_reference:
                continue
            if len(page) == size:
                has_next = True
                break
            page.append(entry)
    edges = [
        {
            "cursor": entry.path,
            "node": {
                "__typename": "File",
                "id": encode_id("File", f"{record.id}/{entry.path}"),
                "name": entry.path,
                "displayName": entry.path.rsplit("/", 1)[-1],
                "digest": entry.digest,
                "sizeBytes": entry.size,
                "directUrl": ctx.blob_url(entry.blob_digest(), entry.path),
                "url": ctx.blob_url(entry.blob_digest(), entry.path),
            },
        }
        for entry in page
    ]
    return {
        "__typename": "FileConnection",
        "pageInfo": {
            "__typename": "PageInfo",
            "endCursor": page[-1].path if page else after,
            "hasNextPage": has_next,
        },
        "edges": edges,
        "totalCount": total,
    }


def wandb_config(values: Mapping[str, Any]) -> str:
    return json.dumps({key: {"value": value, "desc": None} for key, value in values.items()})


def run_obj(ctx: Context, record: RunRecord) -> Obj:
    return {
        "__typename": "Run",
        "id": encode_id("Run", record.id),
        "name": record.id,
        "displayName": record.name,
        "description": None,
        "notes": None,
        "config": wandb_config(record.config),
        "summaryMetrics": json.dumps(record.summary),
        "sweepName": None,
        "jobType": record.job_type,
        "state": record.state,
        "tags": [],
        "project": project_obj(ctx, record.entity, record.project),
        "historyLineCount": 0 if record.last_step is None else record.last_step + 1,
        "logLineCount": 0,
        "eventsLineCount": 0,
        "historyTail": "[]",
        "eventsTail": "[]",
        "wandbConfig": lambda _info, keys=None: "{}",
    }


def run_in(ctx: Context, entity: str, project: str, run_id: str) -> Obj | None:
    """The run *run_id* of ``entity/project`` if the caller may read it, else None."""
    try:
        record = ctx.state.readable_run(ctx.principal, run_id)
    except (NotFoundError, ValidationError):
        return None
    if (record.entity, record.project) != (entity, project):
        return None
    return run_obj(ctx, record)


def default_entity(principal: Principal) -> str:
    """The entity a client logs to when it names none: the first entity where the user
    may write to every project, else the user's own name (an admin's: ``admin``)."""
    writable = sorted(
        entity
        for (entity, project), role in principal.roles.items()
        if project == "*" and role in ("writer", "admin")
    )
    return writable[0] if writable else principal.name


def viewer(ctx: Context) -> Obj:
    name = ctx.principal.name
    return {
        "__typename": "User",
        "id": encode_id("User", name),
        "name": name,
        "username": name,
        "email": None,
        "entity": default_entity(ctx.principal),
        "admin": ctx.principal.admin,
        "flags": "{}",
        "teams": {"edges": []},
    }
