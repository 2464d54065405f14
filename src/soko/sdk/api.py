"""``soko.Api``: reading what a store holds, as W&B's public API does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soko import settings as settings_module
from soko.client.backend import Backend
from soko.client.connect import get_backend
from soko.core.names import NAME_MAX_LENGTH, artifact_not_found, parse_artifact_path
from soko.errors import NotFoundError, ValidationError
from soko.sdk.artifact import Artifact
from soko.sdk.automations import AutomationsApi
from soko.sdk.collection import ArtifactCollection
from soko.sdk.registry import Registries, Registry, find_registries
from soko.sdk.runview import PublicRun


class ArtifactType:
    """One artifact type of a project, and the collections that have it."""

    def __init__(self, entity: str, project: str, type_name: str, backend: Backend) -> None:
        self.entity = entity
        self.project = project
        self.name = type_name
        self._backend = backend

    def __repr__(self) -> str:
        return f"<ArtifactType {self.name}>"

    def collections(self, per_page: int = 50) -> list[ArtifactCollection[Artifact]]:
        records = self._backend.list_collections(self.entity, self.project, self.name)
        return [
            ArtifactCollection(r, self._backend, Artifact._reader(self._backend)) for r in records
        ]

    def collection(self, name: str) -> ArtifactCollection[Artifact]:
        record = self._backend.get_collection(self.entity, self.project, name)
        if record.type != self.name:
            raise NotFoundError(f"Artifact {name!r} has type {record.type!r}, not {self.name!r}.")
        return ArtifactCollection(record, self._backend, Artifact._reader(self._backend))


class Project:
    """A project: its name, entity and artifact types."""

    def __init__(self, entity: str, name: str, backend: Backend) -> None:
        self.entity = entity
        self.name = name
        self._backend = backend

    def __repr__(self) -> str:
        return f"<Project {self.entity}/{self.name}>"

    @property
    def path(self) -> list[str]:
        return [self.entity, self.name]

    def artifact_types(self, per_page: int = 50) -> list[ArtifactType]:
        """The artifact types used in the project."""
        return [
            ArtifactType(self.entity, self.name, t, self._backend)
            for t in self._backend.list_types(self.entity, self.name)
        ]

    artifacts_types = artifact_types  # W&B's spelling


class Api(AutomationsApi):
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
        """The version ``[entity/][project/]name[:alias|:vN]`` (alias ``latest`` by default).

        A name longer than any collection may have names none: NotFoundError, as W&B's
        server answers (not a ValidationError)."""
        try:
            entity, project, collection, selector = self._split(name)
        except ValidationError:
            too_long = self._too_long(name)
            if too_long is None:
                raise
            raise artifact_not_found(*too_long) from None
        record = self._backend.resolve(entity, project, collection, selector or "latest")
        if type is not None and record.type != type:
            # W&B's words; its class is CommError (as NotFoundError is), and ValueError.
            raise NotFoundError(
                f"type {type!r} specified but this artifact is of type {record.type!r}"
            )
        return Artifact._from_record(record, self._backend)

    def _too_long(self, path: object) -> tuple[str, str, str, str] | None:
        """(entity, project, name, selector) of *path* when only its name is too long."""
        if not isinstance(path, str):
            return None
        base, _, selector = path.partition(":")
        *prefix, name = base.split("/")
        if len(name) <= NAME_MAX_LENGTH or len(prefix) > 2:
            return None
        try:
            entity, project, _, _ = parse_artifact_path(
                f"{base[: len(base) - len(name)]}x:{selector or 'latest'}",
                entity=self._entity,
                project=self._project,
            )
        except ValidationError:
            return None  # something else is wrong with it too
        return entity, project, name, selector or "latest"

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
    ) -> list[ArtifactCollection[Artifact]]:
        entity, project = self._project_path(project_name)
        records = self._backend.list_collections(entity, project, type_name)
        return [
            ArtifactCollection(r, self._backend, Artifact._reader(self._backend)) for r in records
        ]

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection[Artifact]:
        entity, project, collection, _selector = self._split(name, default_selector=None)
        record = self._backend.get_collection(entity, project, collection)
        if record.type != type_name:
            raise ValidationError(
                f"Artifact {collection!r} has type {record.type!r}, not {type_name!r}."
            )
        return ArtifactCollection(record, self._backend, Artifact._reader(self._backend))

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

    # ----- registries -----------------------------------------------------------------

    def create_registry(
        self,
        name: str,
        visibility: str = "organization",
        organization: str | None = None,
        description: str | None = None,
        artifact_types: Sequence[str] | None = None,
    ) -> Registry:
        """Create registry *name* (without the ``wandb-registry-`` prefix) in *organization*
        (default: the one holding the default entity); *artifact_types* empty: any type."""
        record = self._backend.create_registry(
            name,
            entity=self._entity,
            organisation=organization,
            visibility=visibility,
            description=description,
            artifact_types=list(artifact_types or ()),
        )
        return Registry(record, self._backend, entity=self._entity)

    def registry(self, name: str, organization: str | None = None) -> Registry:
        """The registry *name* (without the ``wandb-registry-`` prefix)."""
        record = self._backend.get_registry(
            name.removeprefix("wandb-registry-"), entity=self._entity, organisation=organization
        )
        return Registry(record, self._backend, entity=self._entity)

    def registries(
        self, organization: str | None = None, filter: dict[str, Any] | None = None, **_: Any
    ) -> Registries:
        """The registries matching *filter* (W&B's filter documents; fields: name,
        description, created_at, updated_at); ``.collections(filter)`` and
        ``.versions(filter)`` search inside them."""
        return find_registries(
            self._backend, entity=self._entity, organisation=organization, query=filter
        )

    def project(self, name: str, entity: str | None = None) -> Project:
        """The project *name* of *entity* (default: the default entity)."""
        return Project(entity or self._entity, name, self._backend)

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
