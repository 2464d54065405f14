"""What every request of one server process shares: the store, its config, and small caches.

The membership cache answers "does this version name this blob?" for downloads without
reading the manifest again: a key may read a blob only through a version it may read. It
also gives the blobs of source versions to the possession checks (``service.possession``).

A version or run named by id that the caller may not read is answered exactly like an id
that does not exist (404, same message): ids do not reveal what other projects hold. A
caller who may read it but lacks the role to change it gets 403.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from soko.core.digest_index import members_of
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ManifestRef
from soko.core.manifest_index import EntriesPage
from soko.core.membership import Members, MembershipCache
from soko.core.records import RunRecord, VersionRecord
from soko.errors import CorruptBlobError, NotFoundError, ValidationError
from soko.server.auth import Principal
from soko.server.config import ServerConfig
from soko.service import possession, runs, versions
from soko.service.catalog import no_such_version
from soko.service.runs import no_such_run
from soko.service.store import Store
from soko.storage.capabilities import Presigner

PAGE_MEMBERS_MAX = 100_000
"""Blobs of served pages noted for one manifest (about 180 bytes each)."""


@dataclass
class ServerState:
    store: Store
    config: ServerConfig
    presign_min_bytes: int = 1024 * 1024
    _members: MembershipCache = field(default_factory=MembershipCache)
    """Keyed by manifest blob: versions of the same content share one entry."""
    _building: threading.Lock = field(default_factory=threading.Lock)
    """Held while a manifest's members are made: the first requests of a download come at
    once, and each would otherwise parse the same manifest (a million entries, some 300 MB
    while parsed) beside the others."""
    io_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="soko-io")
    )
    """Reads blobs in parallel for batch answers (a bucket answers each GET slowly)."""

    @property
    def presigner(self) -> Presigner | None:
        blobs = self.store.blobs
        return blobs if isinstance(blobs, Presigner) else None

    def readable_version(self, principal: Principal, version_id: str) -> VersionRecord:
        """The version, if *principal* may read its project; else NotFoundError, the same as
        for an id that does not exist."""
        record = versions.get_version(self.store, version_id)
        if not principal.may(record.entity, record.project, "viewer"):
            raise no_such_version(version_id)
        return record

    def readable_manifest(
        self, principal: Principal, version_id: str
    ) -> tuple[VersionRecord, ManifestRef]:
        """The version, as :meth:`readable_version` gives it, and its manifest's reference;
        NotFoundError for a version that has none yet (a distributed one not finished)."""
        record = self.readable_version(principal, version_id)
        return record, manifest_ref(record)

    def writable_version(self, principal: Principal, version_id: str) -> VersionRecord:
        """The version, if *principal* may change it; PermissionDeniedError when it may only
        read it, NotFoundError when it may not even do that."""
        record = self.readable_version(principal, version_id)
        principal.require(record.entity, record.project, "writer")
        return record

    def readable_run(self, principal: Principal, run_id: str) -> RunRecord:
        """The run, if *principal* may read its project; else NotFoundError, as for a run
        that does not exist."""
        record = runs.get_run(self.store, run_id)
        if not principal.may(record.entity, record.project, "viewer"):
            raise no_such_run(run_id)
        return record

    def writable_run(self, principal: Principal, run_id: str) -> RunRecord:
        record = self.readable_run(principal, run_id)
        principal.require(record.entity, record.project, "writer")
        return record

    def sources(
        self,
        principal: Principal,
        *,
        entity: str,
        project: str,
        name: str | None,
        version_ids: Sequence[str],
    ) -> list[possession.Source]:
        """The versions a commit into ``entity/project/name`` may borrow blobs from: the
        collection's latest and *version_ids*, those *principal* may read (others are
        ignored, as if they did not exist).

        A version whose manifest cannot be loaded (set aside, or found damaged now and set
        aside, or larger than ``max_manifest_bytes``) lends nothing and is skipped: it must
        not block the log that repairs it, which uploads what the project cannot borrow and
        then stores the manifest again.
        """
        found = possession.source_versions(
            self.store, entity=entity, project=project, name=name, version_ids=version_ids
        )
        sources = []
        for record in found:
            if not principal.may(record.entity, record.project, "viewer"):
                continue
            try:
                sizes = self.blob_sizes(record)
            except (NotFoundError, CorruptBlobError, ValidationError):
                continue  # lost, damaged, or over the size this server reads
            sources.append(possession.Source(record.entity, record.project, sizes))
        return sources

    def blob_sizes(self, record: VersionRecord) -> Mapping[Digest, int | None]:
        """Every blob the version's manifest names, with its size (None when unknown)."""
        ref = manifest_ref(record)
        key = ref.key
        known = self._members.get_whole(key)
        if known is not None:
            return known
        with self._building:
            known = self._members.get_whole(key)  # made by the request this one waited for
            if known is not None:
                return known
            self.check_manifest_size(ref.digest, name=record.qualified_name)
            manifest = self.store.load_manifest(ref, Algorithm.parse(record.algorithm))
            return self._members.remember(key, members_of(manifest))

    def check_manifest_size(self, digest: Digest, *, name: str) -> None:
        """Refuse (ValidationError) to read a manifest blob larger than the config's
        ``max_manifest_bytes``: it is read and parsed whole, in memory. NotFoundError when
        the blob is not stored."""
        size = self.store.blobs.stat(digest).size
        limit = self.config.max_manifest_bytes
        if size > limit:
            raise ValidationError(
                f"The manifest of {name} has {size} bytes; this server reads manifests of at "
                f"most {limit} bytes (soko server --max-manifest-bytes)."
            )

    def remember_page(self, ref: ManifestRef, page: EntriesPage) -> None:
        """Note the blobs of a page of entries read from the manifest *ref*: a download of
        that page's files is then checked without reading the manifest whole.

        Up to :data:`PAGE_MEMBERS_MAX` blobs a manifest: a reader paging through a whole
        large version (a listing, not a download of one folder) would otherwise grow a map
        of a million `Digest`s, where the whole manifest's members, made when a download
        needs them, take a fifth of that."""
        known = self._members.get(ref.key)
        if known is not None and len(known) >= PAGE_MEMBERS_MAX:
            return
        try:
            sizes = page.blob_sizes()
        except ValidationError:
            return  # an entry whose digest is not one: listed, and never fetched
        self._members.add(ref.key, sizes)

    def require_members(self, record: VersionRecord, digests: list[Digest]) -> Members:
        """NotFoundError unless the version's manifest names each of *digests*; else the
        sizes of (at least) those blobs. Blobs of pages read before are known without
        reading the manifest whole, so fetching one folder of a large version costs that
        folder's pages."""
        known = self._members.get(manifest_ref(record).key)
        if known is not None and all(d in known for d in digests):
            return known
        sizes = self.blob_sizes(record)
        strangers = [d for d in digests if d not in sizes]
        if strangers:
            raise NotFoundError(
                f"{len(strangers)} blob(s) are not part of {record.qualified_name} "
                f"(e.g. {strangers[0]})."
            )
        return sizes


def manifest_ref(record: VersionRecord) -> ManifestRef:
    """Where the version's manifest is stored; NotFoundError for a version without one yet."""
    if record.manifest_blob is None:
        raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
    return ManifestRef.parse(record.manifest_blob)
