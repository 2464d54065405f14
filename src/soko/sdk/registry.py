"""``Registry`` and the results of ``Api().registries(...)``, as W&B's public API has them.

A registry holds collections of links (``wandb-registry-<name>/<collection>``). Searches
take W&B's filter documents (:mod:`soko.core.filters`): ``Api().registries(filter)``
selects registries, ``.collections(filter)`` their collections, ``.versions(filter)`` the
links in those. The filters are evaluated here, on what the backend lists, so they mean the
same on every backend and only items the caller may read are ever seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from soko.client.backend import Backend
from soko.core.filters import Filter, check_fields, matches
from soko.core.names import validate_description, validate_type
from soko.core.records import CollectionRecord, RegistryRecord, VersionRecord
from soko.errors import ValidationError
from soko.sdk.artifact import Artifact
from soko.sdk.collection import ArtifactCollection

REGISTRY_FIELDS = ("name", "description", "created_at", "updated_at")
COLLECTION_FIELDS = ("name", "tag", "description", "type", "created_at", "updated_at")
VERSION_FIELDS = ("name", "tag", "alias", "type", "created_at", "updated_at", "metadata")
VISIBILITIES = ("organization", "restricted")


def _registry_item(record: RegistryRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "description": record.description,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _collection_item(record: CollectionRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "tag": list(record.tags),
        "description": record.description,
        "type": record.type,
        "created_at": record.created_at,
        "updated_at": record.created_at,
    }


def _version_item(record: VersionRecord) -> dict[str, Any]:
    return {
        "name": record.collection,
        "tag": list(record.tags),
        "alias": list(record.aliases),
        "type": record.type,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "metadata": record.metadata,
    }


def _select(
    records: Iterable[Any], query: Filter | None, item: Callable[[Any], dict[str, Any]]
) -> list[Any]:
    return [r for r in records if matches(query, item(r))]


class Registry:
    """One registry of an organisation: its name, description, visibility, allowed types."""

    def __init__(self, record: RegistryRecord, backend: Backend, *, entity: str) -> None:
        self._backend = backend
        self._entity = entity
        self._load(record)

    def _load(self, record: RegistryRecord) -> None:
        self._record = record
        self._description = record.description
        self._visibility = record.visibility
        self._artifact_types = list(record.artifact_types)

    def __repr__(self) -> str:
        return f"<Registry {self.organization}/{self.name}>"

    name = property(lambda self: self._record.name)
    organization = property(lambda self: self._record.organisation)
    entity = property(lambda self: self._record.organisation)
    created_at = property(lambda self: self._record.created_at.isoformat())
    updated_at = property(lambda self: self._record.updated_at.isoformat())

    @property
    def full_name(self) -> str:
        """``wandb-registry-<name>``: the project that holds its collections."""
        return self._record.project

    @property
    def path(self) -> list[str]:
        return [self.entity, self.full_name]

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = validate_description(value)

    @property
    def visibility(self) -> str:
        return self._visibility

    @visibility.setter
    def visibility(self, value: str) -> None:
        if value not in VISIBILITIES:
            raise ValidationError(
                f"A registry's visibility is one of {list(VISIBILITIES)}, not {value!r}."
            )
        self._visibility = value

    @property
    def artifact_types(self) -> list[str]:
        """The types a link into it may have (empty: any). Add to it, then ``save()``;
        types cannot be removed, as in W&B."""
        return self._artifact_types

    @property
    def allow_all_artifact_types(self) -> bool:
        return not self._artifact_types

    def collections(
        self, filter: Filter | None = None, **_ignored: Any
    ) -> list[ArtifactCollection[Artifact]]:
        """Its collections that match *filter* (fields: name, tag, description, type,
        created_at, updated_at)."""
        return _collections_of([self], filter, self._backend)

    def versions(self, filter: Filter | None = None, **_ignored: Any) -> list[Artifact]:
        """The links in its collections that match *filter* (fields: name, tag, alias,
        type, created_at, updated_at, metadata)."""
        return _versions_of(self.collections(), filter, self._backend)

    def load(self) -> None:
        """Read the registry again from the store, dropping unsaved changes."""
        self._load(
            self._backend.get_registry(
                self.name, entity=self._entity, organisation=self.organization
            )
        )

    def save(self) -> None:
        """Persist the description, visibility and allowed types."""
        record = self._backend.update_registry(
            self.name,
            entity=self._entity,
            organisation=self.organization,
            description=self._description,
            visibility=self._visibility,
            artifact_types=[validate_type(t) for t in self._artifact_types],
        )
        self._load(record)

    def delete(self) -> None:
        """Delete the registry with its collections and links; linked versions stay."""
        self._backend.delete_registry(
            self.name, entity=self._entity, organisation=self.organization
        )


def _collections_of(
    registries: Sequence[Registry], query: Filter | None, backend: Backend
) -> list[ArtifactCollection[Artifact]]:
    check_fields(query, COLLECTION_FIELDS, what="collections")
    reader = Artifact._reader(backend)
    found: list[ArtifactCollection[Artifact]] = []
    for registry in registries:
        records = backend.list_collections(registry.entity, registry.full_name)
        found.extend(
            ArtifactCollection(r, backend, reader)
            for r in _select(records, query, _collection_item)
        )
    return found


def _versions_of(
    collections: Sequence[ArtifactCollection[Artifact]], query: Filter | None, backend: Backend
) -> list[Artifact]:
    check_fields(query, VERSION_FIELDS, what="versions")
    found: list[Artifact] = []
    for collection in collections:
        records = backend.list_versions(collection.entity, collection.project, collection.name)
        found.extend(
            Artifact._from_record(r, backend) for r in _select(records, query, _version_item)
        )
    return found


class Collections(list[ArtifactCollection[Artifact]]):
    """Collections found by a search; ``.versions(filter)`` searches their links."""

    def __init__(self, items: Iterable[ArtifactCollection[Artifact]], backend: Backend) -> None:
        super().__init__(items)
        self._backend = backend

    def versions(self, filter: Filter | None = None, **_ignored: Any) -> list[Artifact]:
        return _versions_of(self, filter, self._backend)


class Registries(list[Registry]):
    """Registries found by ``Api().registries(filter)``; ``.collections(filter)`` and
    ``.versions(filter)`` search inside them."""

    def __init__(self, items: Iterable[Registry], backend: Backend) -> None:
        super().__init__(items)
        self._backend = backend

    def collections(self, filter: Filter | None = None, **_ignored: Any) -> Collections:
        return Collections(_collections_of(self, filter, self._backend), self._backend)

    def versions(self, filter: Filter | None = None, **_ignored: Any) -> list[Artifact]:
        return _versions_of(self.collections(), filter, self._backend)


def find_registries(
    backend: Backend, *, entity: str, organisation: str | None, query: Filter | None
) -> Registries:
    check_fields(query, REGISTRY_FIELDS, what="registries")
    records = backend.list_registries(entity=entity, organisation=organisation)
    return Registries(
        (Registry(r, backend, entity=entity) for r in _select(records, query, _registry_item)),
        backend,
    )
