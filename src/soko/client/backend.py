"""The Backend protocol: everything the SDK asks of a store, embedded or remote.

:class:`~soko.client.local.LocalBackend` answers by calling the service in process;
the HTTP backend answers through a soko server. Both return the records of
:mod:`soko.core.records`, so the SDK cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from soko.client.hashing import Capture
from soko.core.digests import Digest
from soko.core.manifest import Manifest
from soko.core.records import CollectionRecord, ProjectRecord, RunRecord, VersionRecord
from soko.core.requests import CommitRequest

Progress = Callable[[int, int], None]
"""Called with (items done in this step, bytes done in this step)."""


class Backend(Protocol):
    # --- blobs -----------------------------------------------------------------------
    def missing_blobs(
        self, digests: Iterable[Digest], *, entity: str, project: str, name: str | None = None
    ) -> set[Digest]:
        """Which of *digests* must be uploaded before a commit into ``entity/project`` (of
        collection *name*, when known) may name them. A server answers per project: a blob
        only other projects hold counts as missing, and uploading it proves possession."""
        ...

    def upload_files(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        entity: str,
        project: str,
        progress: Progress | None = None,
        contents: Mapping[Digest, bytes] | None = None,
    ) -> None:
        """Store each local file as its digest, verified, for ``entity/project``; raises
        DigestMismatchError.

        *contents* holds the bytes of some of the files, read when they were hashed: they
        are stored (verified as well) instead of reading those files again.
        """
        ...

    def stage_files(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        entity: str,
        project: str,
        progress: Progress | None = None,
    ) -> dict[Digest, str]:
        """Capture each file's bytes now, verified, so later edits cannot change a log.

        ``log_artifact`` calls it for files added with ``policy="mutable"`` before it returns:
        the embedded store stores them where the upload would put them; a server takes them
        at once (or the local cache keeps a verified copy). One read and one write either
        way. Returns, per digest, a local file the bytes can be read from until the upload.
        """
        ...

    def begin_capture(self) -> Capture | None:
        """Something that stores files while a draft hashes them (``policy="mutable"``), or
        None: the embedded store takes them at once (:mod:`soko.client.capture`); a server
        is only written to by a log."""
        ...

    def fetch_blobs(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        progress: Progress | None = None,
        use_cache: bool = True,
    ) -> None:
        """Write each blob, verified, to its destination path, creating the folders it
        lacks. Folders that exist are written into as they are: the caller has checked
        that none is a link out of its root (``sdk.transfer.refuse_linked_folders``). A
        destination that exists, a link included, is replaced by a rename, never written
        into.

        *use_cache* False (W&B's ``download(skip_cache=True)``): a download cache is
        neither read nor written; the bytes go straight to the destinations."""
        ...

    # --- versions --------------------------------------------------------------------
    def commit(self, request: CommitRequest) -> VersionRecord:
        """Commit *request* (no ``distributed_id``) as the next version of its collection,
        or return the committed version with the same content, which gains its aliases,
        tags and lineage. Its blobs must be stored first: MissingBlobsError otherwise."""
        ...

    # --- distributed versions (many writers build one version) ------------------------
    def upsert(self, request: CommitRequest) -> VersionRecord:
        """Merge the request's manifest into the pending version of its ``distributed_id``
        (created if none).

        Its blobs must be uploaded first. All or nothing: ConflictError, and nothing applied,
        when a path is already pending with other content. Returns the PENDING record.
        """
        ...

    def finish_distributed(self, request: CommitRequest) -> VersionRecord:
        """Commit the pending version of the request's ``distributed_id`` with its
        manifest's entries added; the next upsert with the same id starts a new one.
        Without a pending version, a plain commit."""
        ...

    def list_pending(
        self, entity: str, project: str, name: str | None = None
    ) -> list[VersionRecord]: ...

    def abandon_pending(
        self, entity: str, project: str, name: str, distributed_id: str
    ) -> VersionRecord:
        """Drop a pending version and its entries; NotFoundError when there is none."""
        ...

    def manifest(self, record: VersionRecord) -> Manifest: ...
    def has_committed_digest(self, entity: str, project: str, name: str, digest: str) -> bool:
        """Whether the collection holds a committed version of this content digest (a
        re-log then skips the missing-blob question). False when the backend cannot tell
        cheaply: the question is then asked as usual."""
        ...

    def resolve(self, entity: str, project: str, name: str, selector: str) -> VersionRecord: ...
    def get_version(self, version_id: str) -> VersionRecord: ...
    def list_versions(self, entity: str, project: str, name: str) -> list[VersionRecord]: ...
    def list_collections(
        self, entity: str, project: str, type_name: str | None = None
    ) -> list[CollectionRecord]: ...
    def get_collection(self, entity: str, project: str, name: str) -> CollectionRecord: ...
    def list_types(self, entity: str, project: str) -> list[str]: ...
    def list_projects(self, entity: str | None = None) -> list[ProjectRecord]: ...
    def update_version(self, version_id: str, **changes: Any) -> VersionRecord: ...
    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> None: ...
    def link_version(
        self, version_id: str, *, entity: str, project: str, registry: str, aliases: Sequence[str]
    ) -> int: ...

    # --- runs and lineage ------------------------------------------------------------
    def start_run(self, **fields: Any) -> RunRecord: ...
    def finish_run(self, run_id: str, *, state: str) -> None: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(self, entity: str, project: str) -> list[RunRecord]: ...
    def record_use(self, run_id: str, version_id: str) -> None: ...
    def runs_of_version(self, version_id: str, direction: str) -> list[RunRecord]: ...
    def versions_of_run(self, run_id: str, direction: str) -> list[VersionRecord]: ...
