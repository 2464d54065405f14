"""Runs: ``soko.init()``, logging and using artifacts, and the lineage they record.

``log_artifact`` returns at once: the upload and the commit go on in the run's background
thread, in the order they were asked for; ``artifact.wait()`` or ``run.finish()`` block
until they are done and raise what went wrong.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from soko import settings as settings_module
from soko.client.backend import Backend
from soko.client.connect import get_backend
from soko.client.gcpause import gc_paused
from soko.core.digests import Digest
from soko.core.names import (
    parse_artifact_path,
    validate_aliases,
    validate_config,
    validate_group,
    validate_job_type,
    validate_project,
    validate_run_id,
    validate_run_name,
    validate_tags,
)
from soko.core.records import RunRecord, VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import (
    ArtifactFinalizedError,
    CommitError,
    MissingBlobsError,
    ValidationError,
)
from soko.sdk import transfer
from soko.sdk.artifact import Artifact
from soko.sdk.progress import progress_bar

_ID_ALPHABET = string.ascii_lowercase + string.digits
_current_lock = threading.Lock()
_current: Run | None = None


def _new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


class _RunIdentity:
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
        return isinstance(other, _RunIdentity) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self._record.id)


class PublicRun(_RunIdentity):
    """A run read back from the store (``artifact.logged_by()``, ``Api().run(...)``)."""

    def __init__(self, record: RunRecord, backend: Backend) -> None:
        self._record = record
        self._backend = backend

    config = property(lambda self: dict(self._record.config))
    state = property(lambda self: self._record.state)
    created_at = property(lambda self: self._record.created_at.isoformat())

    def logged_artifacts(self) -> list[Artifact]:
        records = self._backend.versions_of_run(self._record.id, "logged")
        return [Artifact._from_record(r, self._backend) for r in records]

    def used_artifacts(self) -> list[Artifact]:
        records = self._backend.versions_of_run(self._record.id, "used")
        return [Artifact._from_record(r, self._backend) for r in records]


class Run(_RunIdentity):
    """One execution of code that uses and logs artifacts; a context manager."""

    def __init__(self, record: RunRecord, backend: Backend) -> None:
        self._record = record
        self._backend = backend
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-log")
        self._futures: list[Future[VersionRecord]] = []
        self._finished = False
        self.config: dict[str, Any] = dict(record.config)
        self.summary: dict[str, Any] = {}

    @property
    def state(self) -> str:
        return self._record.state if self._finished else "running"

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            with contextlib.suppress(Exception):
                self.finish(exit_code=1)

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
        return self._send_in_background(
            artifact,
            aliases=aliases,
            tags=tags,
            verb="log",
            send=self._backend.commit,
        )

    def _send_in_background(
        self,
        artifact: Artifact,
        *,
        aliases: Sequence[str] | None,
        tags: Sequence[str] | None,
        verb: str,
        send: Callable[[CommitRequest], VersionRecord],
        distributed_id: str | None = None,
        keep_manifest: bool = False,
    ) -> Artifact:
        """Capture the draft's mutable files now, then upload and *send* it in the background.

        *send* is the backend's commit, upsert or finish.
        """
        if not artifact.is_draft() or artifact._draft is None:
            raise ArtifactFinalizedError(
                f"{artifact.name!r} is already logged; use new_draft() to {verb} new content."
            )
        aliases = validate_aliases(list(aliases) if aliases is not None else artifact.aliases)
        tags = validate_tags(list(tags) if tags is not None else artifact.tags)
        draft = artifact._draft
        backend = self._backend
        target = {"entity": self.entity, "project": self.project, "name": artifact._name}
        with gc_paused():
            manifest = draft.build()
            request = CommitRequest(
                entity=self.entity,
                project=self.project,
                name=artifact._name,
                type=artifact.type,
                manifest=manifest,
                aliases=aliases,
                tags=tags,
                metadata=artifact.metadata,
                description=artifact.description,
                ttl_seconds=artifact._ttl,
                run_id=self.id,
                distributed_id=distributed_id,
            )
            if backend.has_committed_digest(
                self.entity, self.project, artifact._name, manifest.digest()
            ):
                # Content already committed in this collection: its blobs are stored, and
                # the commit only adds aliases and lineage to that version.
                missing: set[Digest] = set()
            else:
                with progress_bar(f"Capturing {artifact._name}") as bar:
                    missing = transfer.stage_mutable(
                        backend, draft, manifest, **target, progress=bar
                    )

        def upload_and_send(known_missing: set[Digest] | None) -> VersionRecord:
            with progress_bar(f"Uploading {artifact._name}") as bar:
                transfer.store_missing(
                    backend, draft, manifest, **target, missing=known_missing, progress=bar
                )
            return send(request)

        def job() -> VersionRecord:
            try:
                with gc_paused():
                    record = upload_and_send(missing)
            except MissingBlobsError:
                # Garbage collection swept an unreferenced blob this log counted on between
                # the upload and the commit: upload what is missing now and send again.
                record = upload_and_send(None)
            artifact._attach(record, backend)
            if keep_manifest:
                # A pending version has no manifest yet: the artifact shows what this
                # writer added.
                artifact._manifest = manifest
            return record

        future = self._executor.submit(job)
        artifact._begin_log(future)
        self._futures.append(future)
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
        verb = "finish" if finish else "upsert"
        if distributed_id is None:
            distributed_id = self.group
        if distributed_id is None:
            # W&B raises TypeError here, and code written for it may catch that.
            raise TypeError(
                f"Cannot {verb} artifact unless run is in a group or distributed_id is provided"
            )
        if not isinstance(distributed_id, str) or not distributed_id:
            raise ValidationError(
                f"distributed_id must be a non-empty string, not {distributed_id!r}."
            )
        self._check_open()
        artifact = self._as_artifact(artifact_or_path, name, type)
        return self._send_in_background(
            artifact,
            aliases=aliases,
            tags=None,
            verb=verb,
            send=self._backend.finish_distributed if finish else self._backend.upsert,
            distributed_id=distributed_id,
            keep_manifest=not finish,
        )

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
        assert artifact.id is not None
        self._backend.record_use(self.id, artifact.id)
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
        self._wait_all()
        return PublicRun(self._record, self._backend).logged_artifacts()

    def used_artifacts(self) -> list[Artifact]:
        return PublicRun(self._record, self._backend).used_artifacts()

    # ----- ending ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._finished:
            raise ValidationError(f"Run {self.id} has finished; start another with soko.init().")

    def _wait_all(self) -> list[BaseException]:
        errors: list[BaseException] = []
        for future in list(self._futures):
            exc = future.exception()
            if exc is not None:
                errors.append(exc)
        return errors

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Wait for every background log, then close the run; raise if a log failed."""
        global _current
        if self._finished:
            return
        errors = self._wait_all()
        self._executor.shutdown(wait=True)
        state = "failed" if errors or (exit_code not in (None, 0)) else "finished"
        self._backend.finish_run(self.id, state=state)
        self._finished = True
        self._record = self._backend.get_run(self.id)
        with _current_lock:
            if _current is self:
                _current = None
        if errors:
            first = errors[0]
            if len(errors) == 1:
                raise first
            raise CommitError(f"{len(errors)} artifact logs failed; the first: {first}") from first


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
    global _current
    previous = current_run()
    if previous is not None:
        previous.finish()
    config_settings = settings_module.load()
    backend = get_backend(config_settings)
    record = backend.start_run(
        run_id=validate_run_id(id) if id is not None else _new_run_id(),
        entity=validate_project(entity or config_settings.entity),
        project=validate_project(project or config_settings.project),
        name=validate_run_name(name),
        job_type=validate_job_type(job_type),
        group=validate_group(group),
        config=validate_config(config),
    )
    run = Run(record, backend)
    with _current_lock:
        _current = run
    return run


def current_run() -> Run | None:
    with _current_lock:
        return _current


def finish(exit_code: int | None = None) -> None:
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code)


def log_outside_run(artifact: Artifact, *, project: str | None, entity: str | None = None) -> None:
    """``artifact.save()`` on a draft with no run: log it from a short-lived run."""
    run = current_run()
    if run is not None:
        run.log_artifact(artifact).wait()
        return
    with init(entity=entity, project=project, job_type="auto") as temporary:
        temporary.log_artifact(artifact).wait()
