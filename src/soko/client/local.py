"""LocalBackend: the embedded store, the service called in process on ``SOKO_DIR``.

The service runs on SQLAlchemy, which costs more to load than a short command does in
all. So what ``soko artifact ls`` and a script's ``init`` and ``finish`` ask (listing, a
run's start and end) runs on :mod:`soko.service.lite` (``sqlite3``) while the database
is at the schema this soko needs, and the service modules are imported by the methods
that call them, when first called.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soko.client.backend import Progress
from soko.client.capture import StoreCapture, store_sources
from soko.client.hashing import map_chunks
from soko.client.materialize import FolderWriter, materialize
from soko.client.sources import BlobSource
from soko.core.automations import AutomationRecord, DeliveryRecord
from soko.core.digests import Algorithm, Digest
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
from soko.errors import CorruptBlobError, NotFoundError, StoreError
from soko.metadata.connect import open_current
from soko.service import lite
from soko.service.store import SET_ASIDE, Store
from soko.storage.local import LocalBlobStore

if TYPE_CHECKING:
    from soko.service.webhooks import InProcessSender


class LocalBackend:
    def __init__(self, root: Path, *, link_mode: str = "auto") -> None:
        self.root = root
        self.link_mode = link_mode
        self._store: Store | None = None
        self._lite: lite.Database | None = None
        self._lite_checked = False
        self._sender: InProcessSender | None = None
        self._store_lock = threading.Lock()

    @property
    def store(self) -> Store:
        """The blob store and the metadata database, opened on first use.

        Opening the database (engine, schema check) costs a second or more; building a
        draft only needs the blob store, so the database waits for the first query.
        """
        from soko.metadata.engine import open_engine, open_read_only_engine, sqlite_url

        with self._store_lock:
            if self._store is None and self.read_only:
                self._store = Store(open_read_only_engine(self.root / "soko.db"), self.blobs)
            if self._store is None:
                try:
                    self.root.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"Cannot use {self.root} as the soko store (SOKO_DIR): {exc}"
                    ) from exc
                self._store = Store(open_engine(sqlite_url(self.root / "soko.db")), self.blobs)
            return self._store

    def _quick(self, *, write: bool = False) -> lite.Database | None:
        """The database on ``sqlite3`` (:mod:`soko.service.lite`), when it exists at the
        schema this soko needs; None otherwise (the service creates or migrates it), and
        for a change to a store this account may not write (the service says so)."""
        if write and self.read_only:
            return None
        with self._store_lock:
            if not self._lite_checked:
                self._lite_checked = True
                conn = open_current(self.root / "soko.db", read_only=self.read_only)
                self._lite = None if conn is None else lite.Database(conn)
            return self._lite

    @functools.cached_property
    def read_only(self) -> bool:
        """Whether the store exists and this account may not write to it (a store shared
        by another account): it is then read without being created, locked or migrated."""
        database = self.root / "soko.db"
        return database.is_file() and not (
            os.access(self.root, os.W_OK) and os.access(database, os.W_OK)
        )

    @functools.cached_property
    def blobs(self) -> LocalBlobStore:
        return LocalBlobStore(self.root / "store")

    # --- blobs -----------------------------------------------------------------------
    # The embedded store has one user: there is no other project to keep blobs from, so
    # the project an upload or a question is for changes nothing here.
    def missing_blobs(
        self,
        digests: Iterable[Digest],
        *,
        entity: str | None = None,
        project: str | None = None,
        name: str | None = None,
    ) -> set[Digest]:
        return self.blobs.missing(digests)

    def store_blobs(
        self,
        sources: Sequence[BlobSource],
        *,
        entity: str | None = None,
        project: str | None = None,
        progress: Progress | None = None,
        staging: bool = False,
    ) -> list[BlobSource]:
        # The embedded store is its own staging area: staging stores the blobs where the
        # log's upload would, which then finds them stored and reads no file.
        in_memory = [s for s in sources if s.data is not None]
        if in_memory:
            # Bytes already in memory cost only Python to pack, which one thread does
            # best (threads would contend for the GIL); the pack writes overlap it.
            sizes = store_sources(self.blobs, in_memory)
            if progress:
                progress(len(sizes), sum(sizes))
        on_disk = [s for s in sources if s.data is None]
        # Each chunk of files becomes a pack of its own: two per core keep the packs large
        # while one thread's reads overlap the other's.
        map_chunks(
            on_disk,
            functools.partial(store_sources, self.blobs),
            progress=progress,
            size_of=lambda n: n,
            chunks_per_worker=2,
        )
        return []

    def begin_capture(self) -> StoreCapture:
        return StoreCapture(self.blobs)

    def fetch_blobs(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        progress: Progress | None = None,
        use_cache: bool = True,
        writers: int | None = None,
    ) -> None:
        del use_cache  # the embedded store has no download cache: blobs come from it
        # A destination is a joined path (``sdk.transfer.destination``): its folder is
        # what precedes the last separator, without os.path's per-call normalising.
        folders = {d.rpartition(os.sep)[0] or os.path.dirname(d) or "." for _, d in items}
        for folder in folders:
            os.makedirs(folder, exist_ok=True)

        def fetch(chunk: Sequence[tuple[Digest, str]]) -> list[int]:
            dests: dict[Digest, list[str]] = {}
            for digest, dest in chunk:
                dests.setdefault(digest, []).append(dest)
            sizes: dict[str, int] = {}
            with FolderWriter() as writer:
                for digest, data in self.blobs.read_packed(dests):
                    for dest in dests.pop(digest):
                        # Not _setting_aside_if_damaged: a context manager per file costs
                        # more than the file's own Python work here.
                        try:
                            writer.write(data, dest, digest)
                        except CorruptBlobError as exc:
                            raise self._set_aside(digest, exc) from None
                        sizes[dest] = len(data)
            for digest, loose in dests.items():
                src = self.blobs.local_path(digest)
                if src is None:
                    raise NotFoundError(f"Blob {digest} is missing from the store {self.root}.")
                for dest in loose:
                    try:
                        with self._setting_aside_if_damaged(digest):
                            materialize(src, dest, digest, mode=self.link_mode, make_dirs=False)
                    except FileNotFoundError:
                        raise self._missing(digest) from None
            return [sizes.get(dest, 0) for _, dest in chunk]

        map_chunks(items, fetch, progress=progress, size_of=lambda n: n, workers=writers)

    def _missing(self, digest: Digest) -> NotFoundError | CorruptBlobError:
        if self.blobs.quarantine.holds([digest]):
            return CorruptBlobError(f"Blob {digest} was found damaged.{SET_ASIDE}")
        return NotFoundError(f"Blob {digest} is missing from the store {self.root}.")

    @contextlib.contextmanager
    def _setting_aside_if_damaged(self, digest: Digest) -> Iterator[None]:
        """A stored blob that fails its digest while it is copied out is moved to the
        store's quarantine, so that logging the intact file again stores it again."""
        try:
            yield
        except CorruptBlobError as exc:
            raise self._set_aside(digest, exc) from None

    def _set_aside(self, digest: Digest, exc: CorruptBlobError) -> CorruptBlobError:
        """*exc* (the blob found damaged) to raise, naming the quarantine when the blob
        was moved there."""
        if not self.blobs.quarantine.set_aside(digest):
            return exc
        return CorruptBlobError(f"{exc}{SET_ASIDE}")

    # --- versions --------------------------------------------------------------------
    def commit(self, request: CommitRequest) -> VersionRecord:
        from soko.service.commit import commit_version

        record = commit_version(self.store, request)
        self._send_events()
        return record

    def _send_events(self) -> None:
        # The outbox of automations is sent on a daemon thread (service.webhooks).
        if self.read_only:
            return
        if self._sender is None:
            quick = self._quick()
            if quick is not None and not lite.has_pending(quick):
                # Nothing to send: the sender, and SQLAlchemy, are not needed yet.
                return
            from soko.service import webhooks

            self._sender = webhooks.InProcessSender(self.store)
        self._sender.kick()

    def wait_for_events(self, timeout: float | None = None) -> None:
        """Wait for the webhook deliveries being sent in process."""
        if self._sender is not None:
            self._sender.join(timeout)

    # --- distributed versions ----------------------------------------------------------
    def upsert(self, request: CommitRequest) -> VersionRecord:
        from soko.service import distributed

        return distributed.upsert(self.store, request)

    def finish_distributed(self, request: CommitRequest) -> VersionRecord:
        from soko.service import distributed

        record = distributed.finish(self.store, request)
        self._send_events()
        return record

    def list_pending(
        self, entity: str, project: str, name: str | None = None
    ) -> list[VersionRecord]:
        from soko.service import distributed

        return distributed.list_pending(self.store, entity=entity, project=project, name=name)

    def abandon_pending(
        self, entity: str, project: str, name: str, distributed_id: str
    ) -> VersionRecord:
        from soko.service import distributed

        return distributed.abandon_pending(
            self.store, entity=entity, project=project, name=name, distributed_id=distributed_id
        )

    def manifest(self, record: VersionRecord) -> Manifest:
        if record.manifest_blob is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        return self.store.load_manifest(record.manifest_blob, Algorithm.parse(record.algorithm))

    def manifest_base(self, record: VersionRecord) -> ManifestBase:
        if record.manifest_blob is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        from soko.service.layered import StoredBase

        return StoredBase(
            self.store,
            version_id=record.id,
            key=record.manifest_blob,
            algorithm=Algorithm.parse(record.algorithm),
            owner=self._owner_name,
        )

    def holds_manifest_base(self, base: ManifestBase) -> bool:
        return getattr(base, "owner", None) == self._owner_name

    @functools.cached_property
    def _owner_name(self) -> str:
        return os.path.realpath(self.root)

    def manifest_page(
        self, record: VersionRecord, *, prefix: str = "", after: str | None = None, limit: int
    ) -> EntriesPage:
        if record.manifest_blob is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        from soko.service import pages

        return pages.entries_page(
            self.store, record.manifest_blob, prefix=prefix, after=after, limit=limit
        )

    def has_committed_digest(
        self, entity: str, project: str, name: str, digest: str, *, blobs: Iterable[Digest]
    ) -> bool:
        from soko.service import versions

        return versions.has_committed_digest(self.store, entity, project, name, digest, blobs=blobs)

    def resolve(self, entity: str, project: str, name: str, selector: str) -> VersionRecord:
        from soko.service import versions

        return versions.resolve(self.store, entity, project, name, selector)

    def get_version(self, version_id: str) -> VersionRecord:
        from soko.service import versions

        return versions.get_version(self.store, version_id)

    def list_versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        from soko.service import versions

        return versions.list_versions(self.store, entity, project, name)

    def list_collections(
        self, entity: str, project: str, type_name: str | None = None
    ) -> list[CollectionRecord]:
        quick = self._quick()
        if quick is not None:
            found = lite.list_collections(quick, entity, project, type_name)
            if found is not None:
                return found
        from soko.service import versions

        return versions.list_collections(self.store, entity, project, type_name)

    def get_collection(self, entity: str, project: str, name: str) -> CollectionRecord:
        from soko.service import versions

        return versions.get_collection(self.store, entity, project, name)

    def list_types(self, entity: str, project: str) -> list[str]:
        from soko.service import versions

        return versions.list_types(self.store, entity, project)

    def list_projects(self, entity: str | None = None) -> list[ProjectRecord]:
        quick = self._quick()
        if quick is not None and entity is not None:
            return lite.list_projects(quick, entity)
        from soko.service import versions

        return versions.list_projects(self.store, entity)

    def update_version(self, version_id: str, **changes: Any) -> VersionRecord:
        from soko.service import versions

        record = versions.update_version(self.store, version_id, **changes)
        self._send_events()
        return record

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> None:
        from soko.service import versions

        versions.delete_version(self.store, version_id, delete_aliases=delete_aliases)

    def link_version(
        self, version_id: str, *, entity: str, project: str, registry: str, aliases: Sequence[str]
    ) -> VersionRecord:
        from soko.service import links

        record = links.link_version(
            self.store,
            version_id,
            entity=entity,
            project=project,
            registry=registry,
            aliases_to_add=aliases,
        )
        self._send_events()
        return record

    def list_links(self, version_id: str) -> list[VersionRecord]:
        from soko.service import links

        return links.list_links(self.store, version_id)

    # --- registries and collections ----------------------------------------------------
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
        from soko.service import registries

        return registries.create_registry(
            self.store,
            name,
            entity=entity,
            organisation=organisation,
            visibility=visibility,
            description=description,
            artifact_types=artifact_types,
        )

    def get_registry(self, name: str, *, entity: str, organisation: str | None) -> RegistryRecord:
        from soko.service import registries

        return registries.get_registry(self.store, name, entity=entity, organisation=organisation)

    def list_registries(self, *, entity: str, organisation: str | None) -> list[RegistryRecord]:
        from soko.service import registries

        return registries.list_registries(self.store, entity=entity, organisation=organisation)

    def update_registry(
        self, name: str, *, entity: str, organisation: str | None, **changes: Any
    ) -> RegistryRecord:
        from soko.service import registries

        org = registries.resolve_organisation(self.store, entity=entity, organisation=organisation)
        return registries.update_registry(self.store, name, organisation=org, **changes)

    def delete_registry(self, name: str, *, entity: str, organisation: str | None) -> None:
        from soko.service import registries

        org = registries.resolve_organisation(self.store, entity=entity, organisation=organisation)
        registries.delete_registry(self.store, name, organisation=org)

    def update_collection(
        self, entity: str, project: str, name: str, **changes: Any
    ) -> CollectionRecord:
        from soko.service import collections

        return collections.update_collection(self.store, entity, project, name, **changes)

    def delete_collection(self, entity: str, project: str, name: str) -> None:
        from soko.service import collections

        collections.delete_collection(self.store, entity, project, name)

    # --- runs and lineage ------------------------------------------------------------
    def start_run(self, **fields: Any) -> RunRecord:
        quick = self._quick(write=True)
        if quick is not None:
            record = lite.start_run(quick, **fields)
        else:
            from soko.service import runs

            record = runs.start_run(self.store, **fields)
        self._send_events()
        return record

    # --- automations -----------------------------------------------------------------
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
        from soko.service import automations, registries

        return automations.create_automation(
            self.store,
            entity=registries.home_entity(self.store, entity, project),
            project=project,
            event=event,
            url=url,
            collection=collection,
            secret=secret,
        )

    def _automation_of(self, entity: str, project: str, automation_id: str) -> None:
        from soko.service import automations, registries

        home = registries.home_entity(self.store, entity, project)
        record = automations.get_automation(self.store, automation_id)
        if (record.entity, record.project) != (home, project):
            raise NotFoundError(f"No automation with id {automation_id!r} in {home}/{project}.")

    def list_automations(self, entity: str, project: str) -> list[AutomationRecord]:
        from soko.service import automations, registries

        home = registries.home_entity(self.store, entity, project)
        return automations.list_automations(self.store, entity=home, project=project)

    def delete_automation(self, entity: str, project: str, automation_id: str) -> None:
        from soko.service import automations

        self._automation_of(entity, project, automation_id)
        automations.delete_automation(self.store, automation_id)

    def update_automation(
        self, entity: str, project: str, automation_id: str, *, enabled: bool
    ) -> AutomationRecord:
        from soko.service import automations

        self._automation_of(entity, project, automation_id)
        record = automations.set_enabled(self.store, automation_id, enabled=enabled)
        self._send_events()
        return record

    def list_deliveries(
        self, entity: str, project: str, automation_id: str, *, status: str | None = None
    ) -> list[DeliveryRecord]:
        from soko.service import automations

        self._automation_of(entity, project, automation_id)
        self._send_events()
        return automations.list_deliveries(self.store, automation_id, status=status)

    def finish_run(self, run_id: str, *, state: str) -> None:
        quick = self._quick(write=True)
        if quick is not None:
            lite.finish_run(quick, run_id, state=state)
        else:
            from soko.service import runs

            runs.finish_run(self.store, run_id, state=state)

    def get_run(self, run_id: str) -> RunRecord:
        quick = self._quick()
        if quick is not None:
            return lite.get_run(quick, run_id)
        from soko.service import runs

        return runs.get_run(self.store, run_id)

    def list_runs(self, entity: str, project: str) -> list[RunRecord]:
        from soko.service import runs

        return runs.list_runs(self.store, entity, project)

    def record_use(self, run_id: str, version_id: str) -> None:
        from soko.service import runs

        runs.record_use(self.store, run_id, version_id)

    def runs_of_version(self, version_id: str, direction: str) -> list[RunRecord]:
        from soko.service import runs

        return runs.runs_of_version(self.store, version_id, direction)

    def versions_of_run(self, run_id: str, direction: str) -> list[VersionRecord]:
        from soko.service import runs

        return runs.versions_of_run(self.store, run_id, direction)

    def write_run_data(
        self,
        run_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        history: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        from soko.service import rundata

        rundata.write_run_data(self.store, run_id, config=config, summary=summary, history=history)

    def run_history(
        self, run_id: str, *, min_step: int = 0, max_step: int | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        from soko.service import rundata

        rows = rundata.run_history(
            self.store, run_id, min_step=min_step, max_step=max_step, limit=limit
        )
        return [json.loads(row) for row in rows]
