"""Plain records that cross layers: what the service returns and the client hands the SDK.

The HTTP wire models convert to and from these, so that the SDK sees the same objects
whichever backend it talks to. Pure data; no behaviour beyond formatting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

PENDING = "PENDING"
COMMITTED = "COMMITTED"
DELETED = "DELETED"

RunState = Literal["running", "finished", "failed", "crashed"]
RUN_STATES: tuple[str, ...] = get_args(RunState)


def as_utc(value: datetime) -> datetime:
    """*value* with its UTC offset: every time soko stores is UTC, and SQLite returns them
    naive."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class VersionRecord:
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
    created_at: datetime
    updated_at: datetime
    committed_at: datetime | None
    created_by_run: str | None
    distributed_id: str | None = None
    source_id: str | None = None
    """Of a link: the id of the version it links (whose content it is)."""

    @property
    def is_link(self) -> bool:
        return self.source_id is not None

    @property
    def version(self) -> str:
        return f"v{self.version_index}" if self.version_index is not None else "PENDING"

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.collection}:{self.version}"


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    id: int
    entity: str
    project: str
    name: str
    type: str
    kind: str
    description: str | None
    created_at: datetime
    version_count: int = 0
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    entity: str
    project: str
    name: str | None
    job_type: str | None
    group: str | None
    config: dict[str, Any]
    state: str
    created_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] = field(default_factory=dict)
    """The run's summary: the last logged value of each key, and what was set in it."""
    last_step: int | None = None
    """The step of the newest history row kept; None before the first."""


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    entity: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """A registry of an organisation; its links live in ``organisation/wandb-registry-<name>``."""

    organisation: str
    name: str
    description: str | None
    visibility: str
    artifact_types: list[str]
    created_at: datetime
    updated_at: datetime

    @property
    def project(self) -> str:
        return f"wandb-registry-{self.name}"
