"""What the server answers: versions, collections, runs and projects as JSON.

Each model mirrors one record of :mod:`soko.core.records` field for field and converts both
ways, so the SDK gets the very records the embedded store would have given it.
"""

from __future__ import annotations

from typing import Any

from soko.core.records import CollectionRecord, ProjectRecord, RunRecord, VersionRecord
from soko.core.runlog import SUMMARY_MAX_BYTES, decode, encode
from soko.wire.base import WireModel
from soko.wire.fields import UtcDatetime


class VersionOut(WireModel):
    id: str
    entity: str
    project: str
    collection: str
    type: str
    version_index: int | None
    state: str
    digest: str
    algorithm: str
    manifest_blob: str | None
    metadata: dict[str, Any]
    description: str | None
    size: int
    file_count: int
    ttl_seconds: int | None
    aliases: list[str]
    tags: list[str]
    created_at: UtcDatetime
    updated_at: UtcDatetime
    committed_at: UtcDatetime | None
    created_by_run: str | None
    distributed_id: str | None = None
    source_id: str | None = None

    @classmethod
    def of(cls, record: VersionRecord) -> VersionOut:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})

    def to_record(self) -> VersionRecord:
        return VersionRecord(**{name: getattr(self, name) for name in type(self).model_fields})


class VersionList(WireModel):
    versions: list[VersionOut]

    @classmethod
    def of(cls, records: list[VersionRecord]) -> VersionList:
        return cls(versions=[VersionOut.of(r) for r in records])

    def to_records(self) -> list[VersionRecord]:
        return [v.to_record() for v in self.versions]


class CollectionOut(WireModel):
    id: int
    entity: str
    project: str
    name: str
    type: str
    kind: str
    description: str | None
    created_at: UtcDatetime
    version_count: int = 0
    aliases: list[str] = []
    tags: list[str] = []

    @classmethod
    def of(cls, record: CollectionRecord) -> CollectionOut:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})

    def to_record(self) -> CollectionRecord:
        return CollectionRecord(**{name: getattr(self, name) for name in type(self).model_fields})


class CollectionList(WireModel):
    collections: list[CollectionOut]


class RunOut(WireModel):
    id: str
    entity: str
    project: str
    name: str | None
    job_type: str | None
    group: str | None
    config: dict[str, Any]
    state: str
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    summary: str = "{}"
    """JSON text of an object (it may hold NaN and infinities: see core/runlog.py)."""
    last_step: int | None = None

    @classmethod
    def of(cls, record: RunRecord) -> RunOut:
        fields = {name: getattr(record, name) for name in cls.model_fields}
        fields["summary"] = encode(
            record.summary, what="A run summary", max_bytes=SUMMARY_MAX_BYTES
        )
        return cls(**fields)

    def to_record(self) -> RunRecord:
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        fields["summary"] = decode(self.summary, what="A run summary", max_bytes=SUMMARY_MAX_BYTES)
        return RunRecord(**fields)


class RunList(WireModel):
    runs: list[RunOut]

    @classmethod
    def of(cls, records: list[RunRecord]) -> RunList:
        return cls(runs=[RunOut.of(r) for r in records])

    def to_records(self) -> list[RunRecord]:
        return [r.to_record() for r in self.runs]


class ProjectOut(WireModel):
    entity: str
    name: str
    created_at: UtcDatetime


class ProjectList(WireModel):
    projects: list[ProjectOut]

    @classmethod
    def of(cls, records: list[ProjectRecord]) -> ProjectList:
        return cls(
            projects=[
                ProjectOut(entity=r.entity, name=r.name, created_at=r.created_at) for r in records
            ]
        )

    def to_records(self) -> list[ProjectRecord]:
        return [ProjectRecord(p.entity, p.name, p.created_at) for p in self.projects]


class TypeList(WireModel):
    types: list[str]
