"""Runs: ``soko.init()``, logging and using artifacts, and the lineage they record.

``log_artifact`` returns at once: the upload and the commit go on in the run's background
thread, in the order they were asked for; ``artifact.wait()`` or ``run.finish()`` block
until they are done and raise what went wrong. What every run is (its record, its
background log, its end, the current run) is :mod:`soko.sdk.runbase`; this module adds
W&B's API.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from soko.client.backend import Backend
from soko.core.names import parse_artifact_path
from soko.core.records import RunRecord
from soko.errors import ValidationError
from soko.sdk import runbase
from soko.sdk.artifact import Artifact
from soko.sdk.publish import LogKind
from soko.sdk.runbase import RunBase


class Run(RunBase):
    """One execution of code that uses and logs artifacts; a context manager."""

    def __init__(self, record: RunRecord, backend: Backend) -> None:
        super().__init__(record, backend)
        self.config: dict[str, Any] = dict(record.config)
        self.summary: dict[str, Any] = {}

    def log(self, data: dict[str, Any], **_ignored: Any) -> None:
        """Metrics are outside soko's scope: kept in ``summary`` so W&B code runs."""
        self.summary.update(data)

    # ----- logging --------------------------------------------------------------------

    def _as_artifact(self, artifact_or_path: Any, name: str | None, type: str | None) -> Artifact:
        if isinstance(artifact_or_path, Artifact):
            return artifact_or_path
        path = os.fspath(artifact_or_path)
        if "://" in path:
            artifact = Artifact(
                name or f"run-{self.id}-{os.path.basename(path.rstrip('/'))}", type or "unspecified"
            )
            artifact.add_reference(path)
            return artifact
        artifact = Artifact(
            name or f"run-{self.id}-{os.path.basename(path.rstrip(os.sep))}", type or "unspecified"
        )
        if os.path.isdir(path):
            artifact.add_dir(path)
        elif os.path.isfile(path):
            artifact.add_file(path)
        else:
            raise ValidationError(f"Path {path!r} is neither a file nor a directory.")
        return artifact

    def log_artifact(
        self,
        artifact_or_path: Any,
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        **_ignored: Any,
    ) -> Artifact:
        """Log a draft as the next version of its collection; returns at once."""
        self._check_open()
        artifact = self._as_artifact(artifact_or_path, name, type)
        artifact._log_in(self, kind=LogKind.COMMIT, aliases=aliases, tags=tags)
        return artifact

    def upsert_artifact(
        self,
        artifact_or_path: Any,
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        distributed_id: str | None = None,
        **_ignored: Any,
    ) -> Artifact:
        """Add a draft's entries to the pending version that every run with the same
        ``distributed_id`` (default: the run's group) builds; returns at once.

        :meth:`finish_artifact` commits that version. ``wait()`` or ``finish()`` raise
        ConflictError when a path was upserted before with other content; the entries
        upserted before are kept.
        """
        return self._log_distributed(
            artifact_or_path, name, type, aliases, distributed_id, finish=False
        )

    def finish_artifact(
        self,
        artifact_or_path: Any,
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        distributed_id: str | None = None,
        **_ignored: Any,
    ) -> Artifact:
        """Commit the pending version of ``distributed_id`` (default: the run's group),
        with this draft's entries added; returns at once. A later upsert with the same id
        starts the next version. With nothing upserted, it logs the draft as a version."""
        return self._log_distributed(
            artifact_or_path, name, type, aliases, distributed_id, finish=True
        )

    def _log_distributed(
        self,
        artifact_or_path: Any,
        name: str | None,
        type: str | None,
        aliases: Sequence[str] | None,
        distributed_id: str | None,
        *,
        finish: bool,
    ) -> Artifact:
        kind = LogKind.FINISH if finish else LogKind.UPSERT
        if distributed_id is None:
            distributed_id = self.group
        if distributed_id is None:
            # W&B raises TypeError here, and code written for it may catch that.
            raise TypeError(
                f"Cannot {kind.value} artifact unless run is in a group or distributed_id is "
                "provided"
            )
        if not isinstance(distributed_id, str) or not distributed_id:
            raise ValidationError(
                f"distributed_id must be a non-empty string, not {distributed_id!r}."
            )
        self._check_open()
        artifact = self._as_artifact(artifact_or_path, name, type)
        artifact._log_in(self, kind=kind, aliases=aliases, tags=None, distributed_id=distributed_id)
        return artifact

    def use_artifact(
        self,
        artifact_or_name: Any,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        use_as: str | None = None,
        **_ignored: Any,
    ) -> Artifact:
        """Record that this run uses a version (a draft is logged first) and return it."""
        self._check_open()
        if isinstance(artifact_or_name, Artifact):
            artifact = artifact_or_name
            if artifact.is_draft():
                self.log_artifact(artifact, aliases=aliases)
            artifact.wait()
        else:
            entity, project, name, selector = parse_artifact_path(
                str(artifact_or_name), entity=self.entity, project=self.project
            )
            record = self._backend.resolve(entity, project, name, selector or "latest")
            artifact = Artifact._from_record(record, self._backend)
        if type is not None and artifact.type != type:
            raise ValidationError(
                f"Artifact {artifact.name!r} has type {artifact.type!r}, not {type!r}."
            )
        # The version's own id: a link's is not its ``id`` (the source's), and a reader of
        # a registry may use a link without reading the source's project.
        self._backend.record_use(self.id, artifact._require_logged("use_artifact").id)
        return artifact

    def log_model(
        self, path: str, name: str | None = None, aliases: Sequence[str] | None = None
    ) -> Artifact:
        artifact = self._as_artifact(path, name, "model")
        return self.log_artifact(artifact, aliases=aliases).wait()

    def use_model(self, name: str) -> str:
        artifact = self.use_artifact(name)
        return artifact.download()

    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: Sequence[str] | None = None
    ) -> Artifact:
        if artifact.is_draft():
            self.log_artifact(artifact)
        return artifact.wait().link(target_path, aliases=aliases)

    def link_model(
        self,
        path: str,
        registered_model_name: str,
        name: str | None = None,
        aliases: Sequence[str] | None = None,
    ) -> Artifact:
        artifact = self.log_model(path, name=name)
        return artifact.link(f"model-registry/{registered_model_name}", aliases=aliases)

    def logged_artifacts(self) -> list[Artifact]:
        self._log.wait()
        return self._artifacts("logged")

    def used_artifacts(self) -> list[Artifact]:
        return self._artifacts("used")

    def _artifacts(self, direction: str) -> list[Artifact]:
        records = self._backend.versions_of_run(self.id, direction)
        return [Artifact._from_record(r, self._backend) for r in records]


def init(
    project: str | None = None,
    entity: str | None = None,
    job_type: str | None = None,
    group: str | None = None,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    dir: str | None = None,
    mode: str | None = None,
    id: str | None = None,
    resume: Any = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    **_ignored: Any,
) -> Run:
    """Start a run (finishing the current one, if any) and make it ``soko.run``."""
    return runbase.start(
        Run,
        project=project,
        entity=entity,
        job_type=job_type,
        group=group,
        name=name,
        config=config,
        run_id=id,
    )


def current_run() -> Run | None:
    """``soko.run``: the run :func:`init` started, until it finishes."""
    run = runbase.current_run()
    # A short-lived run that saves a draft outside any run is not ``soko.run``.
    return run if isinstance(run, Run) else None


def finish(exit_code: int | None = None) -> None:
    run = runbase.current_run()
    if run is not None:
        run.finish(exit_code=exit_code)
