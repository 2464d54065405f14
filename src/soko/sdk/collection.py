"""``ArtifactCollection``: all versions of one artifact name in a project (or the links of
one registry collection), with its name, description and tags editable through ``save()``.

It imports no artifact: its versions become artifacts through the function it is given, so
that an artifact can hand out its collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from soko.client.backend import Backend
from soko.core.names import validate_description, validate_name, validate_tags
from soko.core.records import CollectionRecord, VersionRecord

_Artifact = TypeVar("_Artifact")


class ArtifactCollection(Generic[_Artifact]):
    """All versions of one artifact name in a project; a registry collection's are links."""

    def __init__(
        self,
        record: CollectionRecord,
        backend: Backend,
        reader: Callable[[VersionRecord], _Artifact],
    ) -> None:
        self._backend = backend
        self._reader = reader
        self._load(record)

    def _load(self, record: CollectionRecord) -> None:
        self._record = record
        self._name = record.name
        self._description = record.description
        self._tags = list(record.tags)

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.entity}/{self.project}/{self.name} ({self.type})>"

    id = property(lambda self: str(self._record.id))
    type = property(lambda self: self._record.type)
    entity = property(lambda self: self._record.entity)
    project = property(lambda self: self._record.project)
    aliases = property(lambda self: sorted(set(self._record.aliases)))
    created_at = property(lambda self: self._record.created_at.isoformat())

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = validate_name(value)

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = validate_description(value)

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = validate_tags(value)

    def is_sequence(self) -> bool:
        return self._record.kind == "sequence"

    def artifacts(self, per_page: int = 50, **_ignored: Any) -> list[_Artifact]:
        """Its committed versions (a registry collection's links), oldest first."""
        records = self._backend.list_versions(self.entity, self.project, self._record.name)
        return [self._reader(r) for r in records]

    versions = artifacts

    def save(self) -> None:
        """Persist the name, description and tags. A rename keeps every ``name:vN`` of the
        collection's versions, under the new name; the old name then names nothing."""
        changes: dict[str, Any] = {
            "description": self._description,
            "tags_to_set": validate_tags(self._tags),
        }
        if self._name != self._record.name:
            changes["new_name"] = self._name
        record = self._backend.update_collection(
            self.entity, self.project, self._record.name, **changes
        )
        self._load(record)

    def delete(self) -> None:
        """Delete the collection with all its versions; refused while one is linked."""
        self._backend.delete_collection(self.entity, self.project, self._record.name)
