"""A run as the store records it: :class:`PublicRun` (``artifact.logged_by()``,
``Api().run(...)``), and what it shares with a live run (:class:`RunIdentity`).

It imports no artifact: the versions a run logged or used become artifacts through the
function it is given, so the artifact module can hand out the runs of a version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from soko.client.backend import Lineage
from soko.core.records import RunRecord, VersionRecord

_Artifact = TypeVar("_Artifact")


class RunIdentity:
    """What a live run and a run read back from the store both show of their record."""

    _record: RunRecord

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)}>"

    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    entity = property(lambda self: self._record.entity)
    project = property(lambda self: self._record.project)
    job_type = property(lambda self: self._record.job_type)
    group = property(lambda self: self._record.group)

    @property
    def path(self) -> list[str]:
        return [self._record.entity, self._record.project, self._record.id]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunIdentity) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self._record.id)


class PublicRun(RunIdentity, Generic[_Artifact]):
    """A run read back from the store; its versions become artifacts by *artifact_of*."""

    def __init__(
        self,
        record: RunRecord,
        lineage: Lineage,
        artifact_of: Callable[[VersionRecord], _Artifact],
    ) -> None:
        self._record = record
        self._lineage = lineage
        self._artifact_of = artifact_of

    config = property(lambda self: dict(self._record.config))
    state = property(lambda self: self._record.state)
    created_at = property(lambda self: self._record.created_at.isoformat())

    def logged_artifacts(self) -> list[_Artifact]:
        return self._artifacts("logged")

    def used_artifacts(self) -> list[_Artifact]:
        return self._artifacts("used")

    def _artifacts(self, direction: str) -> list[_Artifact]:
        records = self._lineage.versions_of_run(self._record.id, direction)
        return [self._artifact_of(r) for r in records]
