"""The Backend: everything the SDK asks of a store, embedded or remote, by role.

:class:`~soko.client.local.LocalBackend` answers by calling the service in process;
the HTTP backend answers through a soko server. Both return the records of
:mod:`soko.core.records`, so the SDK cannot tell them apart.

A caller is typed with the role it uses: :class:`BlobTransfer` (bytes in and out),
:class:`Publisher` (versions made: commit, distributed upsert and finish),
:class:`Catalog` (versions read and changed) and :class:`Lineage` (runs and what they used
and logged); :class:`Backend` is all four. An ability only one backend has is a protocol
of its own, asked for with ``isinstance``: :class:`CapturesWhileHashing`,
:class:`UploadsWhileHashing`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from soko.client.hashing import Capture
from soko.client.sources import BlobSource
from soko.core.automations import AutomationRecord, DeliveryRecord
from soko.core.digests import Digest
from soko.core.layered import ManifestBase
from soko.core.manifest import Manifest
from soko.core.manifest_index import EntriesPage
from soko.core.records import (
    CollectionRecord,
    ProjectRecord,
    RegistryRecord,
    RunRecord,
    VersionRecord,
)
from soko.core.requests import CommitRequest

Progress = Callable[[int, int], None]
"""Called with (items done in this step, bytes done in this step)."""


class BlobTransfer(Protocol):
    """Blobs into the store before a commit, and out of it into a download root."""

    def missing_blobs(
        self, digests: Iterable[Digest], *, entity: str, project: str, name: str | None = None
    ) -> set[Digest]:
        """Which of *digests* must be stored before a commit into ``entity/project`` (of
        collection *name*, when known) may name them. A server answers per project: a blob
        only other projects hold counts as missing, and uploading it proves possession."""
        ...

    def store_blobs(
        self,
        sources: Sequence[BlobSource],
        *,
        entity: str,
        project: str,
        progress: Progress | None = None,
        staging: bool = False,
    ) -> list[BlobSource]:
        """Store each source's bytes as its digest, verified, for ``entity/project``;
        raises DigestMismatchError naming a file that no longer has its digest.

        The SDK runs it twice per log: *staging*, before ``log_artifact`` returns, for
        the ``policy="mutable"`` files the backend lacks, so that later edits of those files
        cannot change the log; and after, in the background, for every blob still missing.
        A backend that may not store the bytes yet when *staging* (a key that may not
        upload) keeps verified local copies instead and returns them as the sources to
        store later; otherwise it returns nothing.
        """
        ...

    def fetch_blobs(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        progress: Progress | None = None,
        use_cache: bool = True,
        writers: int | None = None,
    ) -> None:
        """Write each blob, verified, to its destination path, creating the folders it
        lacks. Folders that exist are written into as they are: the caller has checked
        that none is a link out of its root (``sdk.transfer.refuse_linked_folders``). A
        destination that exists, a link included, is replaced by a rename, never written
        into.

        *use_cache* False (W&B's ``download(skip_cache=True)``): a download cache is
        neither read nor written; the bytes go straight to the destinations.

        *writers*: how many threads may create files for this call at once; None leaves
        it to the backend (one per core). A caller that fetches two slices at once gives
        each one writer, so that no more threads than cores contend for the files."""
        ...


class Publisher(Protocol):
    """Versions made from a :class:`~soko.core.requests.CommitRequest`, whose blobs are
    stored already (MissingBlobsError otherwise)."""

    def commit(self, request: CommitRequest) -> VersionRecord:
        """Commit *request* (no ``distributed_id``) as the next version of its collection,
        or return the committed version with the same content, which gains its aliases,
        tags and lineage."""
        ...

    def upsert(self, request: CommitRequest) -> VersionRecord:
        """Merge the request's manifest into the pending version of its ``distributed_id``
        (created if none); many writers build one version that way.

        All or nothing: ConflictError, and nothing applied, when a path is already pending
        with other content. Returns the PENDING record.
        """
        ...

    def finish_distributed(self, request: CommitRequest) -> VersionRecord:
        """Commit the pending version of the request's ``distributed_id`` with its
        manifest's entries added; the next upsert with the same id starts a new one.
        Without a pending version, a plain commit."""
        ...

    def has_committed_digest(
        self, entity: str, project: str, name: str, digest: str, *, blobs: Iterable[Digest]
    ) -> bool:
        """Whether the collection holds a committed version of this content digest, whose
        manifest names *blobs*, all of them stored (a re-log then skips the missing-blob
        question). False when the backend cannot tell cheaply: the question is then asked
        as usual."""
        ...

    def list_pending(
        self, entity: str, project: str, name: str | None = None
    ) -> list[VersionRecord]: ...

    def abandon_pending(
        self, entity: str, project: str, name: str, distributed_id: str
    ) -> VersionRecord:
        """Drop a pending version and its entries; NotFoundError when there is none."""
        ...


class Catalog(Protocol):
    """Committed versions, collections, types and projects: read, changed, deleted."""

    def manifest(self, record: VersionRecord) -> Manifest: ...
    def manifest_page(
        self, record: VersionRecord, *, prefix: str = "", after: str | None = None, limit: int
    ) -> EntriesPage:
        """Up to *limit* entries of the version whose path starts with *prefix* and sorts
        after *after*, in path order, read without loading the whole manifest; the entries
        of a page can be fetched (``fetch_blobs``) like those of a loaded manifest."""
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
    def update_version(self, version_id: str, **changes: Any) -> VersionRecord:
        """Change the fields given (``aliases_to_set``, ``tags_to_set``, ``metadata``,
        ``description``, ``ttl_seconds``); a field not given is left as it is."""
        ...

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> None:
        """Mark a version DELETED (refused while it has user aliases or links, unless
        *delete_aliases*); for a link, remove the link."""
        ...

    def link_version(
        self, version_id: str, *, entity: str, project: str, registry: str, aliases: Sequence[str]
    ) -> VersionRecord:
        """Link a version into the registry collection ``entity/project/registry``; the link
        (the existing one, with the aliases added, when the version is linked there)."""
        ...

    def list_links(self, version_id: str) -> list[VersionRecord]:
        """The links of a version (of its source, for a link)."""
        ...


class Registries(Protocol):
    """Registries of an organisation, and changes to collections."""

    def create_registry(
        self,
        name: str,
        *,
        entity: str,
        organisation: str | None,
        visibility: str,
        description: str | None,
        artifact_types: Sequence[str],
    ) -> RegistryRecord:
        """Make a registry of *organisation* (default: the one holding *entity*);
        ConflictError when it exists."""
        ...

    def get_registry(
        self, name: str, *, entity: str, organisation: str | None
    ) -> RegistryRecord: ...
    def list_registries(self, *, entity: str, organisation: str | None) -> list[RegistryRecord]: ...
    def update_registry(
        self, name: str, *, entity: str, organisation: str | None, **changes: Any
    ) -> RegistryRecord:
        """Change the fields given (``description``, ``visibility``, ``artifact_types``)."""
        ...

    def delete_registry(self, name: str, *, entity: str, organisation: str | None) -> None: ...
    def update_collection(
        self, entity: str, project: str, name: str, **changes: Any
    ) -> CollectionRecord:
        """Change the fields given (``new_name``, ``description``, ``tags_to_set``)."""
        ...

    def delete_collection(self, entity: str, project: str, name: str) -> None: ...


class Automations(Protocol):
    """Webhooks on events of a project or registry, and their deliveries."""

    def create_automation(
        self,
        *,
        entity: str,
        project: str,
        event: str,
        url: str,
        collection: str | None,
        secret: str | None,
    ) -> AutomationRecord:
        """The new automation, carrying its secret (made when none is given) this once."""
        ...

    def list_automations(self, entity: str, project: str) -> list[AutomationRecord]: ...
    def delete_automation(self, entity: str, project: str, automation_id: str) -> None: ...
    def update_automation(
        self, entity: str, project: str, automation_id: str, *, enabled: bool
    ) -> AutomationRecord:
        """Enable or disable it; a disabled one sends nothing (its pending deliveries wait)."""
        ...

    def list_deliveries(
        self, entity: str, project: str, automation_id: str, *, status: str | None = None
    ) -> list[DeliveryRecord]:
        """Newest first."""
        ...


class Lineage(Protocol):
    """Runs, and the versions each used and logged."""

    def start_run(
        self,
        *,
        run_id: str,
        entity: str,
        project: str,
        name: str | None = None,
        job_type: str | None = None,
        group: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create the run, or resume it (state back to running) when the id exists."""
        ...

    def finish_run(self, run_id: str, *, state: str) -> None: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(self, entity: str, project: str) -> list[RunRecord]: ...
    def record_use(self, run_id: str, version_id: str) -> None: ...
    def runs_of_version(self, version_id: str, direction: str) -> list[RunRecord]: ...
    def versions_of_run(self, run_id: str, direction: str) -> list[VersionRecord]: ...
    def write_run_data(
        self,
        run_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        history: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Replace the run's config and summary (each when given) and add *history* rows
        (JSON objects, each with an integer ``_step``); bounds in :mod:`soko.core.runlog`."""
        ...

    def run_history(
        self, run_id: str, *, min_step: int = 0, max_step: int | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """The kept rows with ``min_step <= _step < max_step``, oldest first."""
        ...


class Backend(BlobTransfer, Publisher, Catalog, Registries, Automations, Lineage, Protocol):
    """Every role: what :func:`soko.client.connect.get_backend` returns."""


@runtime_checkable
class CapturesWhileHashing(Protocol):
    """A backend that stores files while a draft hashes them (``policy="mutable"``): the
    embedded store, whose store is where the bytes end up anyway (see
    :mod:`soko.client.capture`). A server's is :class:`UploadsWhileHashing`."""

    def begin_capture(self) -> Capture:
        """A capture for the files of one ``add_*`` call."""
        ...


@runtime_checkable
class StagingCapture(Capture, Protocol):
    """A capture that sends what it is given to a server, for one project."""

    entity: str
    project: str

    def staged(self) -> int:
        """How many of the blobs given the server has confirmed stored (a blob given twice
        counts twice)."""
        ...


@runtime_checkable
class UploadsWhileHashing(Protocol):
    """A server that takes a folder's small files while ``add_dir`` hashes them, for the
    project of the run they are added in (see :mod:`soko.client.http_capture`): a head
    start for the log, which uploads whatever did not arrive."""

    def begin_upload_capture(
        self, *, entity: str, project: str, name: str | None
    ) -> StagingCapture:
        """A capture for the files of one ``add_dir`` call, sent for ``entity/project``
        (to collection *name*, whose latest version may lend it blobs)."""
        ...


@runtime_checkable
class KeepsDraftBase(Protocol):
    """A backend whose new drafts keep their base version by reference
    (:mod:`soko.core.layered`): the embedded store and a soko server, which read the
    base's slices and commit the change in proportion to it."""

    def manifest_base(self, record: VersionRecord) -> ManifestBase | None:
        """The manifest of committed version *record* as a draft's base; None when it
        cannot be kept by reference (a server that predates it): the draft takes every
        entry."""
        ...

    def holds_manifest_base(self, base: ManifestBase) -> bool:
        """Whether *base* is a version of this backend's store: a draft made from it is
        committed here by reference, elsewhere whole."""
        ...
