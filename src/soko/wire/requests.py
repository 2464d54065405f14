"""What clients send: commits, version changes, runs, and the questions about blobs.

A commit names its manifest by the digest of a blob the client uploaded first (see
:class:`CommitIn`), so that a million-entry manifest travels like any other blob,
verified and resumable, and the JSON request stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from soko.core.manifest import Entry, Manifest
from soko.core.manifest_index import EntriesPage
from soko.core.names import ALIASES_MAX_COUNT, TAGS_MAX_COUNT
from soko.core.records import RunState
from soko.core.requests import CommitRequest
from soko.wire.base import WireModel
from soko.wire.fields import (
    Alias,
    CollectionName,
    Config,
    Description,
    DistributedId,
    GroupName,
    JobType,
    Metadata,
    ProjectName,
    RunId,
    RunName,
    Tag,
    TtlSeconds,
    TypeName,
    VersionId,
)

MAX_DIGESTS_PER_REQUEST = 10_000
"""The most digests one missing-blobs, batch or URL question may carry."""
MAX_SOURCES = 16
"""The most source versions one missing-blobs question or commit may list: the server may
load each one's manifest for the request (a client lists the versions it read most
recently first)."""


class CommitIn(WireModel):
    """A :class:`~soko.core.requests.CommitRequest` on the wire: the request's fields, its
    manifest replaced by ``manifest_blob``, ``xxh128:<hex>`` of the manifest's canonical
    bytes already uploaded for the project, and ``algorithm``, its entries' digest.

    ``sources`` lists versions the client read whose manifests name blobs of this one (a
    draft made from a version of another project): the commit may name their blobs
    without uploading them. The collection's latest version is a source without asking.
    """

    entity: ProjectName
    project: ProjectName
    name: CollectionName
    type: TypeName
    manifest_blob: str
    algorithm: str
    aliases: list[Alias] = Field(default=[], max_length=ALIASES_MAX_COUNT)
    tags: list[Tag] = Field(default=[], max_length=TAGS_MAX_COUNT)
    metadata: Metadata = {}
    description: Description | None = None
    ttl_seconds: TtlSeconds | None = None
    run_id: RunId | None = None
    distributed_id: DistributedId | None = None
    incremental: bool = False
    """The manifest holds only what the draft added, over the latest version's entries."""
    sources: list[VersionId] = Field(default=[], max_length=MAX_SOURCES)
    base_version: VersionId | None = None
    """A plain commit of a draft made from committed version *base_version* of the same
    project, sent by reference: the manifest holds only the entries added or replaced,
    and the new version is the base's entries, less the paths of ``removed``, with those
    put in (the server splices it from the base's manifest)."""
    removed: list[str] = []
    """With ``base_version``: paths of the base taken out (a path also in the manifest is
    the manifest's)."""

    @classmethod
    def of(cls, request: CommitRequest, *, manifest_blob: str, sources: Sequence[str]) -> CommitIn:
        """The body that sends *request*, its manifest uploaded as *manifest_blob*.

        Built as it is, not validated here: the server validates it with the service's
        rules, and the client raises the ValidationError it answers.
        """
        return cls.model_construct(
            entity=request.entity,
            project=request.project,
            name=request.name,
            type=request.type,
            manifest_blob=manifest_blob,
            algorithm=request.manifest.algorithm.value,
            aliases=list(request.aliases),
            tags=list(request.tags),
            metadata=request.metadata,
            description=request.description,
            ttl_seconds=request.ttl_seconds,
            run_id=request.run_id,
            distributed_id=request.distributed_id,
            incremental=request.incremental,
            sources=list(sources),
        )

    def to_request(self, manifest: Manifest) -> CommitRequest:
        """The request this body carries, with *manifest* read from ``manifest_blob``."""
        return CommitRequest(
            entity=self.entity,
            project=self.project,
            name=self.name,
            type=self.type,
            manifest=manifest,
            aliases=self.aliases,
            tags=self.tags,
            metadata=self.metadata,
            description=self.description,
            ttl_seconds=self.ttl_seconds,
            run_id=self.run_id,
            distributed_id=self.distributed_id,
            incremental=self.incremental,
        )


class UpdateVersionIn(WireModel):
    """Fields left out are left unchanged; ``null`` clears description and TTL."""

    aliases_to_set: list[Alias] | None = Field(default=None, max_length=ALIASES_MAX_COUNT)
    tags_to_set: list[Tag] | None = Field(default=None, max_length=TAGS_MAX_COUNT)
    metadata: Metadata | None = None
    description: Description | None = None
    ttl_seconds: TtlSeconds | None = None


class LinkIn(WireModel):
    entity: ProjectName
    project: ProjectName
    registry: CollectionName
    aliases: list[Alias] = Field(default=[], max_length=ALIASES_MAX_COUNT)


class AbandonIn(WireModel):
    entity: ProjectName
    project: ProjectName
    name: CollectionName
    distributed_id: DistributedId


class StartRunIn(WireModel):
    run_id: RunId
    entity: ProjectName
    project: ProjectName
    name: RunName | None = None
    job_type: JobType | None = None
    group: GroupName | None = None
    config: Config | None = None


class FinishRunIn(WireModel):
    state: RunState


class RecordUseIn(WireModel):
    version_id: VersionId


class DigestList(WireModel):
    """Blob digests as ``<alg>:<hex>`` (at most :data:`MAX_DIGESTS_PER_REQUEST`)."""

    digests: list[str] = Field(max_length=MAX_DIGESTS_PER_REQUEST)


class MissingIn(WireModel):
    """Which of ``digests`` must a writer of ``entity/project`` upload before a commit there
    may name them? Those not stored, and those the project has not proven it holds: neither
    uploaded for it nor named by a source (``sources``, and the latest version of collection
    ``name`` when given) the caller may read. A blob stored only for other projects is
    missing, like an absent one."""

    entity: ProjectName
    project: ProjectName
    digests: list[str] = Field(max_length=MAX_DIGESTS_PER_REQUEST)
    name: CollectionName | None = None
    sources: list[VersionId] = Field(default=[], max_length=MAX_SOURCES)


class MissingOut(WireModel):
    missing: list[str]


class CommittedOut(WireModel):
    committed: bool
    """A committed version of the collection has the content digest asked about, and every
    blob it names is stored: a log of that content uploads nothing."""


class StoredOut(WireModel):
    stored: int
    bytes: int


class BlobRef(WireModel):
    digest: str
    size: int = Field(ge=0)


class UploadPlanIn(WireModel):
    """Ask where to upload large blobs for ``entity/project`` (small ones go in batches to
    ``/blobs/batch?entity=…&project=…``)."""

    entity: ProjectName
    project: ProjectName
    blobs: list[BlobRef] = Field(max_length=MAX_DIGESTS_PER_REQUEST)


class UploadTarget(WireModel):
    """``url`` null: PUT the bytes to ``/api/v1/blobs/<alg>/<hex>?entity=…&project=…`` on the
    server.

    Otherwise PUT them to ``url`` with ``headers`` (a presigned bucket URL: no API key goes
    there), then POST ``/api/v1/blobs/uploads/<upload_id>/complete``: the server checks
    the uploaded bytes against the digest before the blob becomes visible.
    """

    digest: str
    upload_id: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}


class UploadPlanOut(WireModel):
    uploads: list[UploadTarget]


class CompleteUploadIn(WireModel):
    entity: ProjectName
    project: ProjectName
    digest: str


class BlobSource(WireModel):
    """Where to read one blob of a version: ``url`` is a presigned bucket URL, or null to
    read it from the server (in a batch when it is small)."""

    digest: str
    size: int | None
    url: str | None = None


class DownloadPlanOut(WireModel):
    blobs: list[BlobSource]


class EntriesPageOut(WireModel):
    """A page of a version's entries in path order: W&B's manifest ``contents`` objects."""

    contents: dict[str, dict[str, Any]]
    next_after: str | None = None
    """The path to ask the next page after; absent after the last page."""
    total: int
    """Entries in the whole version."""

    @classmethod
    def of(cls, page: EntriesPage) -> EntriesPageOut:
        return cls(
            contents={e.path: e.to_json() for e in page.entries},
            next_after=page.next_after,
            total=page.total,
        )

    def to_page(self) -> EntriesPage:
        entries = [Entry.from_json(path, value) for path, value in self.contents.items()]
        return EntriesPage(entries, self.next_after, self.total)
