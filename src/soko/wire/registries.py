"""Registries and collection changes on the wire: what the server answers and is sent."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from soko.core.names import TAGS_MAX_COUNT
from soko.core.records import RegistryRecord
from soko.wire.base import WireModel
from soko.wire.fields import CollectionName, Description, ProjectName, Tag, TypeName, UtcDatetime

Visibility = Literal["organization", "restricted"]


class RegistryOut(WireModel):
    organisation: str
    name: str
    description: str | None
    visibility: str
    artifact_types: list[str]
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, record: RegistryRecord) -> RegistryOut:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})

    def to_record(self) -> RegistryRecord:
        return RegistryRecord(**{name: getattr(self, name) for name in type(self).model_fields})


class RegistryList(WireModel):
    registries: list[RegistryOut]


class RegistryIn(WireModel):
    """A new registry of *organisation*, or of the organisation holding *entity*."""

    name: CollectionName
    entity: ProjectName
    organisation: ProjectName | None = None
    visibility: Visibility = "organization"
    description: Description | None = None
    artifact_types: list[TypeName] = Field(default=[], max_length=TAGS_MAX_COUNT)


class UpdateRegistryIn(WireModel):
    """Fields left out are left unchanged; allowed types may only grow."""

    description: Description | None = None
    visibility: Visibility | None = None
    artifact_types: list[TypeName] | None = Field(default=None, max_length=TAGS_MAX_COUNT)


class UpdateCollectionIn(WireModel):
    """Fields left out are left unchanged; ``name`` renames the collection."""

    name: CollectionName | None = None
    description: Description | None = None
    tags: list[Tag] | None = Field(default=None, max_length=TAGS_MAX_COUNT)


class OrganisationIn(WireModel):
    name: ProjectName


class OrganisationOut(WireModel):
    name: str
    entities: list[str]


class OrganisationList(WireModel):
    organisations: list[OrganisationOut]


class EntityOrganisationIn(WireModel):
    organisation: ProjectName
