"""``soko.Api``: reading what a store holds, as W&B's public API does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soko import settings as settings_module
from soko.client.backend import Backend
from soko.client.connect import get_backend
from soko.core.names import parse_artifact_path
from soko.core.records import CollectionRecord
from soko.errors import NotFoundError, ValidationError
from soko.sdk.artifact import Artifact
from soko.sdk.runview import PublicRun


class ArtifactCollection:
    """All versions of one artifact name in a project."""

    def __init__(self, record: CollectionRecord, backend: Backend) -> None:
        self._record = record
        self._backend = backend

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.entity}/{self.project}/{self.name} ({self.type})>"

    name = property(lambda self: self._record.name)
    type = property(lambda self: self._record.type)
    entity = property(lambda self: self._record.entity)
    project = property(lambda self: self._record.project)
    description = property(lambda self: self._record.description)
    aliases = property(lambda self: sorted(set(self._record.aliases)))
    created_at = property(lambda self: self._record.created_at.isoformat())

    def is_sequence(self) -> bool:
        return self._record.kind == "sequence"

    def artifacts(self) -> list[Artifact]:
        records = self._backend.list_versions(self.entity, self.project, self.name)
        return [Artifact._from_record(r, self._backend) for r in records]

    versions = artifacts


class ArtifactType:
    """One artifact type of a project, and the collections that have it."""

    def __init__(self, entity: str, project: str, type_name: str, backend: Backend) -> None:
        self.entity = entity
        self.project = project
        self.name = type_name
        self._backend = backend

    def __repr__(self) -> str:
        return f"<ArtifactType {self.name}>"

    def collections(self, per_page: int = 50) -> list[ArtifactCollection]:
        records = self._backend.list_collections(self.entity, self.project, self.name)
        return [ArtifactCollection(r, self._backend) for r in records]

    def collection(self, name: str) -> ArtifactCollection:
        record = self._backend.get_collection(self.entity, self.project, name)
        if record.type != self.name:
            raise NotFoundError(f"Artifact {name!r} has type {record.type!r}, not {self.name!r}.")
        return ArtifactCollection(record, self._backend)


class Api:
    """Read access to artifacts, collections, runs and projects of the configured store."""

    def __init__(self, overrides: dict[str, Any] | None = None, **_ignored: Any) -> None:
        overrides = overrides or {}
        config = settings_module.load()
        self._entity: str = overrides.get("entity") or config.entity
        self._project: str = overrides.get("project") or config.project
        self._backend = get_backend(config)

    @property
    def default_entity(self) -> str:
        return self._entity

    def _split(
        self, path: str, *, default_selector: str | None = "latest"
    ) -> tuple[str, str, str, str | None]:
        return parse_artifact_path(
            path, entity=self._entity, project=self._project, default_selector=default_selector
        )

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """The version ``[entity/][project/]name[:alias|:vN]`` (alias ``latest`` by default)."""
        entity, project, collection, selector = self._split(name)
        record = self._backend.resolve(entity, project, collection, selector or "latest")
        if type is not None and record.type != type:
            raise ValidationError(
                f"Artifact {collection!r} has type {record.type!r}, not {type!r}."
            )
        return Artifact._from_record(record, self._backend)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type=type)
        except (NotFoundError, ValidationError):
            return False
        return True

    def artifacts(
        self,
        type_name: str,
        name: str,
        per_page: int = 50,
        tags: Sequence[str] | None = None,
        **_: Any,
    ) -> list[Artifact]:
        """Every committed version of the collection *name*, oldest first; with *tags*, only
        the versions that have all of them."""
        entity, project, collection, _selector = self._split(name, default_selector=None)
        collection_record = self._backend.get_collection(entity, project, collection)
        if collection_record.type != type_name:
            raise ValidationError(
                f"Artifact {collection!r} has type {collection_record.type!r}, not {type_name!r}."
            )
        records = self._backend.list_versions(entity, project, collection)
        wanted = set(tags or ())
        return [Artifact._from_record(r, self._backend) for r in records if wanted <= set(r.tags)]

    def artifact_versions(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        """Deprecated in W&B; the same as :meth:`artifacts`."""
        return self.artifacts(type_name, name, per_page=per_page)

    def artifact_collections(
        self, project_name: str, type_name: str | None = None, **_: Any
    ) -> list[ArtifactCollection]:
        entity, project = self._project_path(project_name)
        records = self._backend.list_collections(entity, project, type_name)
        return [ArtifactCollection(r, self._backend) for r in records]

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        entity, project, collection, _selector = self._split(name, default_selector=None)
        record = self._backend.get_collection(entity, project, collection)
        if record.type != type_name:
            raise ValidationError(
                f"Artifact {collection!r} has type {record.type!r}, not {type_name!r}."
            )
        return ArtifactCollection(record, self._backend)

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        try:
            self.artifact_collection(type, name)
        except (NotFoundError, ValidationError):
            return False
        return True

    def artifact_types(self, project: str | None = None) -> list[ArtifactType]:
        """The artifact types used in a project, as W&B's ``ArtifactType`` objects."""
        entity, project_name = self._project_path(project or self._project)
        return [
            ArtifactType(entity, project_name, t, self._backend)
            for t in self._backend.list_types(entity, project_name)
        ]

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        entity, project_name = self._project_path(project or self._project)
        if type_name not in self._backend.list_types(entity, project_name):
            raise NotFoundError(f"No artifact type {type_name!r} in {entity}/{project_name}.")
        return ArtifactType(entity, project_name, type_name, self._backend)

    def _project_path(self, path: str) -> tuple[str, str]:
        parts = path.split("/")
        if len(parts) == 1:
            return self._entity, parts[0]
        if len(parts) == 2:
            return parts[0], parts[1]
        raise ValidationError(f"Expected [entity/]project, got {path!r}.")

    def run(self, path: str) -> PublicRun[Artifact]:
        """A run by ``[entity/][project/]run_id``."""
        run_id = path.split("/")[-1]
        backend = self._backend
        return PublicRun(backend.get_run(run_id), backend, Artifact._reader(backend))

    def runs(
        self, path: str | None = None, filters: dict[str, Any] | None = None, **_: Any
    ) -> list[PublicRun[Artifact]]:
        entity, project = self._project_path(path or self._project)
        backend = self._backend
        records = backend.list_runs(entity, project)
        runs = [PublicRun(r, backend, Artifact._reader(backend)) for r in records]
        for key, wanted in (filters or {}).items():
            field = key.removeprefix("config.")
            if key.startswith("config."):
                runs = [r for r in runs if r.config.get(field) == wanted]
            elif key.startswith("summary_metrics."):
                field = key.removeprefix("summary_metrics.")
                runs = [r for r in runs if r.summary_metrics.get(field) == wanted]
            else:
                runs = [r for r in runs if getattr(r, field, None) == wanted]
        return runs

    def projects(self, entity: str | None = None, **_: Any) -> list[Any]:
        from types import SimpleNamespace

        return [
            SimpleNamespace(entity=p.entity, name=p.name, created_at=p.created_at.isoformat())
            for p in self._backend.list_projects(entity)
        ]
