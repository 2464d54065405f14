"""``soko.Artifact``: W&B's artifact API, as a draft and once logged.

A draft collects entries (files hashed in place, references resolved by their handler;
:mod:`soko.sdk.editing`, :mod:`soko.sdk.draft`, :mod:`soko.sdk.adding`). Logging builds the
draft's commit request and hands it, with the draft that knows where its blobs' bytes are,
to a run's background log (:meth:`Artifact._log_in`). A logged artifact reads its
attributes from the version it was loaded from (:mod:`soko.sdk.logged`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from soko import settings as settings_module
from soko.client.backend import Backend, KeepsDraftBase
from soko.client.connect import get_stat_cache
from soko.client.pygc import python_gc_paused
from soko.core.digests import Algorithm
from soko.core.layered import LayeredManifest, ManifestBase
from soko.core.manifest import Manifest
from soko.core.names import (
    logical_path,
    parse_artifact_path,
    validate_aliases,
    validate_description,
    validate_metadata,
    validate_name,
    validate_tags,
    validate_ttl,
    validate_type,
)
from soko.core.records import VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import ArtifactFinalizedError, ArtifactNotLoggedError, ValidationError
from soko.sdk import transfer
from soko.sdk.artifacts.artifact_ttl import ArtifactTTL
from soko.sdk.collection import ArtifactCollection
from soko.sdk.data_types import add_to_artifact, load_from_artifact
from soko.sdk.draft import BASE_BY_REFERENCE_AT, Draft
from soko.sdk.editing import DraftEditing
from soko.sdk.entry import ArtifactFiles as EntriesOwner
from soko.sdk.entry import ManifestEntry
from soko.sdk.files import ArtifactFiles
from soko.sdk.manifest import ArtifactManifest
from soko.sdk.publish import LogKind
from soko.sdk.runbase import RunBase, log_outside_run
from soko.sdk.runview import PublicRun
from soko.terminal import termwarn


class Artifact(DraftEditing):
    """A versioned set of files and references: ``Artifact(name, type, ...)``.

    ``digest_algorithm`` is ``"XXH128"`` (soko's default, much faster to hash) or ``"MD5"``
    (W&B's default); both produce manifests W&B reads. Left out, it is the setting
    ``SOKO_DIGEST_ALGORITHM`` (XXH128 when unset).
    """

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,
        storage_region: str | None = None,
        digest_algorithm: str | None = None,
        **_ignored: Any,
    ) -> None:
        super().__init__(validate_name(name))
        self._type = validate_type(type, name)
        self._description = validate_description(description)
        self._metadata = validate_metadata(metadata)
        self._incremental = incremental
        self._algorithm = Algorithm.parse(digest_algorithm or settings_module.digest_algorithm())
        self._draft: Draft | None = Draft(self._algorithm)
        self._final = False
        self._ttl: int | None = None
        # W&B's states of a TTL: inherited (the default) cannot be read on a draft.
        self._ttl_inherited = True
        self._ttl_changed = False
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._manifest: Manifest | None = None
        # Where a draft made by new_draft() comes from: save() outside a run logs it there.
        self._source_entity: str | None = None
        self._source_project: str | None = None
        if incremental:
            termwarn("Using experimental arg `incremental`")  # as W&B warns

    def __repr__(self) -> str:
        return f"<Artifact {self._name}>"

    # ----- identity -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection name of a draft; ``name:vN`` once logged."""
        record = self._logged_record(wait=False)
        return f"{self._name}:{record.version}" if record else self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def digest_algorithm(self) -> str:
        return self._algorithm.value

    @property
    def incremental(self) -> bool:
        return self._incremental

    # ----- settable attributes --------------------------------------------------------

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = validate_description(value)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any] | None) -> None:
        self._metadata = validate_metadata(value)

    @property
    def ttl(self) -> datetime.timedelta | None:
        """The time to live; ArtifactNotLoggedError on a draft whose TTL was not set (W&B:
        the inherited default is known only once logged)."""
        if self._ttl_inherited and (self.is_draft() or self._ttl_changed):
            raise ArtifactNotLoggedError("Artifact.ttl", self)
        return None if self._ttl is None else datetime.timedelta(seconds=self._ttl)

    @ttl.setter
    def ttl(self, value: datetime.timedelta | ArtifactTTL | None) -> None:
        if self._record is not None and self._record.is_link:
            raise ValidationError(
                "Cannot set the TTL of a link; set it on its source artifact instead."
            )
        if isinstance(value, ArtifactTTL):
            if value is not ArtifactTTL.INHERIT:
                raise ValidationError(f"Unhandled ArtifactTTL enum {value}")
            # soko has no default TTL to inherit: an inherited TTL keeps the version.
            self._ttl, self._ttl_inherited = None, True
        else:
            self._ttl, self._ttl_inherited = validate_ttl(value), False
        self._ttl_changed = True

    @property
    def aliases(self) -> list[str]:
        return self._aliases

    @aliases.setter
    def aliases(self, value: Sequence[str]) -> None:
        self._aliases = validate_aliases(value)

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = validate_tags(value)

    # ----- the manifest ---------------------------------------------------------------

    @property
    def manifest(self) -> ArtifactManifest:
        """The entries: W&B's ``ArtifactManifest`` API (:mod:`soko.sdk.manifest`) on
        soko's manifest. A draft's is its entries as they are now, and its ``add_entry``
        and ``remove_entry`` change the draft."""
        if self._manifest is None and self._draft is not None:
            return ArtifactManifest.view(self._draft.build(), owner=self)
        if self._manifest is None:
            record = self._require_logged("manifest")
            assert self._backend is not None
            self._manifest = self._backend.manifest(record)
        if not isinstance(self._manifest, ArtifactManifest):
            self._manifest = ArtifactManifest.view(self._manifest, owner=self)
        return self._manifest

    def _draft_manifest(self) -> Manifest:
        return self._editable("manifest").build()

    @property
    def size(self) -> int:
        record = self._logged_record(wait=True)
        return record.size if record else self.manifest.size

    @property
    def digest(self) -> str:
        record = self._logged_record(wait=True)
        return record.digest if record else self.manifest.digest()

    @property
    def file_count(self) -> int:
        return self._require_logged("file_count").file_count

    def _as_files(self) -> EntriesOwner:
        return self

    def get_entry(self, name: str | os.PathLike[str]) -> ManifestEntry:
        """The entry at *name*; KeyError when the artifact has none."""
        path = logical_path(name).replace(os.sep, "/")
        if self._draft is not None and self._record is None:
            entry = self._draft.get(path)
            file = self._draft.files.get(path)
            local = file.local_path if file else None
        else:
            entry = self.manifest.get(path)
            local = None
        if entry is None:
            raise KeyError(f"Path not contained in artifact: {path}")
        return ManifestEntry.of(entry, local_path=local, artifact=self)

    def get_path(self, name: str | os.PathLike[str]) -> ManifestEntry:
        """Deprecated in W&B; the same as :meth:`get_entry`."""
        return self.get_entry(name)

    def add(self, obj: Any, name: str, overwrite: bool = False) -> ManifestEntry:
        """Store a Table, Image, PartitionedTable or JoinedTable as ``name.<type>.json``."""
        return add_to_artifact(self, obj, name, overwrite=overwrite)

    def __setitem__(self, name: str, obj: Any) -> None:
        self.add(obj, name)

    def get(self, name: str) -> Any:
        """The Table, Image, … stored as *name* (type suffix optional); None if there is none.

        Only the entries that object needs are fetched, not the whole artifact.
        """
        return load_from_artifact(self, name)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def _download_entry(self, path: str, *, root: str | None) -> str:
        record = self._require_logged("download")
        entry = self.manifest.get(path)
        if entry is None:
            raise KeyError(f"Path not contained in artifact: {path}")
        target = root or self._root(None, record)
        transfer.download_entries(self._live_backend(), [entry], target, cache=get_stat_cache())
        return transfer.destination(target, entry.path)

    # ----- logged state ---------------------------------------------------------------

    @classmethod
    def _from_record(cls, record: VersionRecord, backend: Backend) -> Artifact:
        artifact = cls.__new__(cls)
        Artifact.__init__(
            artifact,
            record.collection,
            "placeholder",
            description=record.description,
            digest_algorithm=record.algorithm,
        )
        # Not checked against the reserved types: the wandb package logs run_table and
        # job versions of its own, which a soko server stores and Api() reads.
        artifact._type = record.type
        artifact._draft = None
        artifact._attach(record, backend)
        return artifact

    @classmethod
    def _internal(cls, name: str, type: str) -> Artifact:
        """A draft of one of the types W&B reserves for its own artifacts (``code`` of a
        ``source-*`` name for ``run.log_code``), which ``Artifact()`` refuses to users."""
        artifact = cls(name, "placeholder")
        artifact._type = validate_type(type)
        return artifact

    @classmethod
    def _reader(cls, backend: Backend) -> Callable[[VersionRecord], Artifact]:
        """What turns a version of *backend* into an artifact (a run's versions)."""
        return lambda record: cls._from_record(record, backend)

    def _attach(self, record: VersionRecord, backend: Backend) -> None:
        """Become the logged version *record*: attributes now reflect the stored version."""
        self._record = record
        self._backend = backend
        self._pending = None
        self._final = True
        self._description = record.description
        self._metadata = dict(record.metadata)
        self._ttl = record.ttl_seconds
        self._ttl_changed = False
        self._aliases = [a for a in record.aliases]
        self._tags = list(record.tags)
        if self._draft is not None and self._manifest is None:
            self._manifest = self._draft.build()
            if self._manifest.digest() != record.digest:
                self._manifest = None
        self._draft = None

    def _log_in(
        self,
        run: RunBase,
        *,
        kind: LogKind,
        aliases: Sequence[str] | None,
        tags: Sequence[str] | None,
        distributed_id: str | None = None,
    ) -> None:
        """Log this draft through *run* (the run's one way into an artifact): build the
        request now, hand it to the run's background log, and become the version it
        commits. *aliases* and *tags* given replace the artifact's own."""
        draft = self._draft
        if not self.is_draft() or draft is None:
            raise ArtifactFinalizedError(
                f"{self.name!r} is already logged; use new_draft() to {kind.value} new content."
            )
        aliases = validate_aliases(list(aliases) if aliases is not None else self._aliases)
        # Again: keys added to the dict in place since it was set were never checked.
        self._metadata = validate_metadata(self._metadata)
        tags = validate_tags(list(tags) if tags is not None else self._tags)
        queue = run.log_queue
        with python_gc_paused():
            manifest = draft.build()
            if isinstance(manifest, LayeredManifest) and not (
                kind is LogKind.COMMIT
                and not self._incremental
                and isinstance(queue.backend, KeepsDraftBase)
                and queue.backend.holds_manifest_base(manifest.base)
            ):
                # Committed elsewhere than its base's store, or not by a plain commit:
                # the whole manifest, as any draft's.
                manifest = manifest.whole()
            request = CommitRequest(
                entity=run.entity,
                project=run.project,
                name=self._name,
                type=self._type,
                manifest=manifest,
                aliases=aliases,
                tags=tags,
                metadata=self._metadata,
                description=self._description,
                ttl_seconds=self._ttl,
                run_id=run.id,
                distributed_id=distributed_id,
                incremental=self._incremental,
            )

        def logged(record: VersionRecord) -> None:
            if isinstance(request.manifest, LayeredManifest):
                # Its blob is stored (or a twin's was): the artifact keeps no copy of it.
                request.manifest.release_bytes()
            if self._manifest is None and request.manifest.digest() == record.digest:
                # The manifest just committed: the draft is not built a second time.
                self._manifest = request.manifest
            self._attach(record, queue.backend)
            if kind is LogKind.UPSERT:
                # A pending version has no manifest yet: the artifact shows what this
                # writer added.
                self._manifest = request.manifest

        # Not inside the pause above: the collector is one per process, and the background
        # thread pauses it for its commit only if it finds it running.
        future = queue.submit(request, draft, kind=kind, on_logged=logged)
        self._pending = future
        self._final = True

    # ----- logged operations ----------------------------------------------------------

    def files(self, names: Sequence[str] | None = None, per_page: int = 50) -> ArtifactFiles:
        """The entries of the artifact (those named, when *names* is given), fetched
        *per_page* at a time as they are iterated (:mod:`soko.sdk.files`)."""
        record = self._require_logged("files")
        if self._manifest_loaded() or record.manifest_blob is None:
            return ArtifactFiles(self, entries=list(self.manifest), names=names)
        backend = self._live_backend()
        return ArtifactFiles(
            self,
            page_of=lambda prefix, after, limit: backend.manifest_page(
                record, prefix=prefix, after=after, limit=limit
            ),
            names=names,
            per_page=per_page,
        )

    def _manifest_loaded(self) -> bool:
        # A manifest logged from a base by reference loads the whole only when asked.
        return self._manifest is not None and not isinstance(self._manifest, LayeredManifest)

    def file(self, root: str | None = None) -> str:
        """Download a single-file artifact and return the file's path."""
        self._require_logged("file")
        entries = list(self.manifest)
        if len(entries) != 1:
            raise ValidationError("file() is for artifacts holding exactly one file.")
        return self._download_entry(entries[0].path, root=root)

    def new_draft(self) -> Artifact:
        """A draft holding the same entries; logging it makes the next version."""
        record = self._require_logged("new_draft")
        draft = Artifact(
            self._name,
            self._type,
            description=self._description,
            metadata=dict(self._metadata),
            digest_algorithm=record.algorithm,
        )
        assert draft._draft is not None
        base = self._draft_base(record)
        if base is not None:
            draft._draft = Draft(draft._algorithm, base=base)
        else:
            draft._draft.builder.add_all(self.manifest)
        draft._source_entity = record.entity
        draft._source_project = record.project
        return draft

    def _draft_base(self, record: VersionRecord) -> ManifestBase | None:
        """The version as a new draft's base, kept by reference (a large version of a
        backend that can: see :mod:`soko.core.layered`); None to take every entry."""
        backend = self._live_backend()
        if (
            record.file_count < BASE_BY_REFERENCE_AT
            or record.manifest_blob is None
            or record.is_link
            or not isinstance(backend, KeepsDraftBase)
        ):
            return None
        return backend.manifest_base(record)

    def save(self, project: str | None = None, settings: Any = None) -> None:
        """Persist aliases, tags, description, metadata and TTL; a draft is logged."""
        if self._record is None and self._pending is None:
            log_outside_run(
                self, entity=self._source_entity, project=project or self._source_project
            )
            return
        record = self._require_logged("save")
        changes: dict[str, Any] = {
            "aliases_to_set": self._aliases,
            "tags_to_set": self._tags,
            "metadata": self._metadata,
            "description": self._description,
        }
        if not record.is_link:
            changes["ttl_seconds"] = self._ttl
        updated = self._live_backend().update_version(record.id, **changes)
        self._attach(updated, self._live_backend())

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version; refused while it has user aliases or links, unless
        *delete_aliases*. Deleting a link only unlinks it, as in W&B."""
        record = self._require_logged("delete")
        self._live_backend().delete_version(record.id, delete_aliases=delete_aliases)
        self._record = replace(record, state="DELETED", aliases=[])

    def unlink(self) -> None:
        """Remove this link from its registry collection; the source version stays."""
        record = self._require_logged("unlink")
        if not record.is_link:
            raise ValidationError(
                f"Artifact {record.qualified_name!r} is not a linked artifact and cannot be "
                "unlinked; to delete it, use delete() instead."
            )
        self.delete()

    @property
    def source_artifact(self) -> Artifact:
        """The version a link links; a version that is no link is its own source."""
        record = self._require_logged("source_artifact")
        if not record.is_link:
            return self
        return Artifact._from_record(self._source("source_artifact"), self._live_backend())

    @property
    def collection(self) -> ArtifactCollection[Artifact]:
        """The collection it was read from: a registry collection for a link."""
        record = self._require_logged("collection")
        backend = self._live_backend()
        found = backend.get_collection(record.entity, record.project, record.collection)
        return ArtifactCollection(found, backend, self._reader(backend))

    @property
    def source_collection(self) -> ArtifactCollection[Artifact]:
        """The collection the version was logged in."""
        return self.source_artifact.collection

    @property
    def linked_artifacts(self) -> list[Artifact]:
        """The links of this version in registry collections (empty for a link)."""
        record = self._require_logged("linked_artifacts")
        if record.is_link:
            return []
        backend = self._live_backend()
        return [Artifact._from_record(r, backend) for r in backend.list_links(record.id)]

    def logged_by(self) -> PublicRun[Artifact] | None:
        record = self._require_logged("logged_by")
        backend = self._live_backend()
        runs = backend.runs_of_version(record.source_id or record.id, "logged")
        return PublicRun(runs[0], backend, self._reader(backend)) if runs else None

    def used_by(self) -> list[PublicRun[Artifact]]:
        record = self._require_logged("used_by")
        backend = self._live_backend()
        runs = backend.runs_of_version(record.source_id or record.id, "used")
        return [PublicRun(r, backend, self._reader(backend)) for r in runs]

    def link(self, target_path: str, aliases: Sequence[str] | None = None) -> Artifact:
        """Link this version into a registry collection ``[entity/][project/]name`` (a
        registry's is ``wandb-registry-<registry>/<collection>``); returns the link. A draft
        is saved first, as W&B does."""
        if self._record is None and self._pending is None:
            self.save()
        record = self._require_logged("link")
        entity, project, registry, _ = parse_artifact_path(
            target_path, entity=record.entity, project=record.project, default_selector=None
        )
        backend = self._live_backend()
        link = backend.link_version(
            record.source_id or record.id,
            entity=entity,
            project=project,
            registry=registry,
            aliases=validate_aliases(aliases),
        )
        return Artifact._from_record(link, backend)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        if self._record is None or other._record is None:
            return self is other
        return self._record.id == other._record.id

    def __hash__(self) -> int:
        return hash(self._record.id) if self._record else id(self)
