"""Server maintenance as the admin endpoints exchange it: gc, verify, usage per project."""

from __future__ import annotations

from pydantic import Field

from soko.wire.base import WireModel
from soko.wire.fields import UtcDatetime


class GcIn(WireModel):
    grace_seconds: float = Field(default=3600.0, ge=0, le=10 * 365 * 86400)
    """Nothing younger than this is deleted: blobs uploaded for a commit still on its way."""
    dry_run: bool = False


class GcOut(WireModel):
    dry_run: bool
    grace_seconds: float
    expired: list[str]
    """Versions deleted because their TTL passed, by qualified name."""
    blobs_listed: int
    live_blobs: int
    deleted: list[str]
    """The digests of the blobs deleted (or that would be, in a dry run)."""
    freed_bytes: int
    kept_young: int
    temp_files_removed: int
    packs_deleted: int
    packs_rewritten: int
    pack_bytes_reclaimed: int
    quarantine_removed: int


class ProblemOut(WireModel):
    kind: str
    subject: str
    message: str
    versions: list[str]
    """The live versions the problem breaks, by qualified name."""


class VerifyIn(WireModel):
    sample: int | None = Field(default=None, ge=1)
    """Re-hash only this many blobs, chosen at random (all of them when not given)."""


class VerifyOut(WireModel):
    ok: bool
    problems: list[ProblemOut]
    notes: list[str]
    blobs_checked: int
    bytes_checked: int
    versions_checked: int
    unreferenced_blobs: int
    quarantined: list[str]
    """Blobs found damaged and set aside by this check."""


class ProjectUsage(WireModel):
    entity: str
    project: str
    collections: int
    versions: int
    """Committed versions not deleted."""
    files: int
    logical_bytes: int
    """The sum of the versions' sizes: a file in ten versions counts ten times."""
    blob_bytes: int
    """The bytes of the distinct blobs the project holds (each counted once per project)."""
    last_commit_at: UtcDatetime | None


class UsageList(WireModel):
    projects: list[ProjectUsage]
