"""Runs: ``soko.init()``, logging and using artifacts, and the lineage they record.

``log_artifact`` returns at once: the upload and the commit go on in the run's background
thread, in the order they were asked for; ``artifact.wait()`` or ``run.finish()`` block
until they are done and raise what went wrong. What every run is (its record, its
background log, its end, the current run) is :mod:`soko.sdk.runbase`; this module adds
W&B's API.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import pathlib
import time
from collections.abc import Sequence
from typing import Any

from soko import settings as settings_module
from soko.client.backend import Backend
from soko.core.names import parse_artifact_path
from soko.core.records import RunRecord
from soko.errors import ValidationError
from soko.sdk import runbase, runfiles
from soko.sdk.artifact import Artifact
from soko.sdk.publish import LogKind
from soko.sdk.runbase import RunBase
from soko.sdk.runconfig import Config, as_mapping, json_friendly
from soko.sdk.runhistory import RunData
from soko.sdk.runsummary import Summary

logger = logging.getLogger("soko")


class Run(RunBase):
    """One execution of code that uses and logs artifacts; a context manager."""

    def __init__(self, record: RunRecord, backend: Backend) -> None:
        super().__init__(record, backend)
        self._data = RunData(
            functools.partial(backend.write_run_data, record.id),
            config=record.config,
            summary=record.summary,
            next_step=0 if record.last_step is None else record.last_step + 1,
        )
        self._started = time.strftime("%Y%m%d_%H%M%S")
        self._root_dir: str | None = None
        self._files_dir: pathlib.Path | None = None
        _flush_at_exit.register()

    # ----- config, log, summary (sdk.runhistory has W&B's rules) ------------------------

    @property
    def config(self) -> Config:
        return self._data.config

    @property
    def summary(self) -> Summary:
        return self._data.summary

    @property
    def step(self) -> int:
        return self._data.step

    def log(
        self,
        data: dict[str, Any],
        step: int | None = None,
        commit: bool | None = None,
        **_ignored: Any,
    ) -> None:
        """Add *data* to the run's history (W&B's step and commit rules); the summary of
        each key becomes its last logged value."""
        self._check_open()
        self._data.log(data, step=step, commit=commit)

    def define_metric(
        self, name: str, *args: Any, summary: str | None = None, **kwargs: Any
    ) -> None:
        """Accepted so W&B code runs; soko keeps no metric definitions: the summary of a
        key is always its last logged value (a warning says so when *summary* asks for
        another)."""
        if summary is not None and summary != "last":
            logger.warning(
                "soko keeps the last logged value of %r in the summary; define_metric's "
                "summary=%r is not applied.",
                name,
                summary,
            )

    # ----- files ------------------------------------------------------------------------

    @property
    def dir(self) -> str:
        """The run's files folder (W&B's ``run.dir``): its files are kept with the run."""
        if self._files_dir is None:
            root = self._root_dir or str(settings_module.load().run_dir or os.getcwd())
            self._files_dir = runfiles.files_dir(root, self.id, self._started)
            self._files_dir.mkdir(parents=True, exist_ok=True)
        return str(self._files_dir)

    def save(
        self,
        glob_str: str | os.PathLike[str] | bytes,
        base_path: str | os.PathLike[str] | None = None,
        policy: str = "live",
        glob: bool = True,
    ) -> list[str]:
        """Keep the files matching *glob_str* with the run (see :mod:`soko.sdk.runfiles`);
        returns their paths in :attr:`dir`."""
        self._check_open()
        runfiles.check_save_args(glob_str)
        return runfiles.save(pathlib.Path(self.dir), glob_str, base_path, policy, glob)

    def log_code(
        self,
        root: str | None = ".",
        name: str | None = None,
        include_fn: runfiles.PathFilter = runfiles.include_code,
        exclude_fn: runfiles.PathFilter = runfiles.exclude_wandb,
    ) -> Artifact | None:
        """Log the code under *root* as a ``code`` artifact, W&B's
        ``source-<project>-<program path>`` unless *name* is given; None (and a warning)
        when no file matches."""
        self._check_open()
        found = runfiles.code_files(root, include_fn, exclude_fn) if root is not None else []
        if not found:
            logger.warning(
                "No relevant files were detected in the specified directory. No code will be "
                "logged to your run."
            )
            return None
        artifact = Artifact._internal(
            name or runfiles.code_artifact_name(self.project), runfiles.CODE_TYPE
        )
        for path_in_artifact, local_path in found:
            artifact.add_file(local_path, name=path_in_artifact)
        return self.log_artifact(artifact)

    def _keep_files(self) -> None:
        if self._files_dir is None or not self._files_dir.is_dir():
            return
        found = list(runfiles.files_to_keep(self._files_dir))
        if not found:
            return
        artifact = Artifact(runfiles.run_files_name(self.id), runfiles.RUN_FILES_TYPE)
        for path_in_artifact, local_path in found:
            artifact.add_file(local_path, name=path_in_artifact, policy="immutable")
        self.log_artifact(artifact)

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Write the run's last data and keep its files, wait for every background log,
        then close the run; raise if something failed (the run is closed all the same)."""
        if self._finished:
            return
        try:
            self._data.flush(commit_pending=True)
            self._keep_files()
        except BaseException:
            with contextlib.suppress(Exception):
                super().finish(exit_code=1)
            raise
        super().finish(exit_code=exit_code, quiet=quiet)

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


class _AtExit:
    """Writes the current run's buffered data when the interpreter exits, once registered:
    a script that never calls ``finish()`` loses no logged row (the run stays running)."""

    def __init__(self) -> None:
        self._registered = False

    def register(self) -> None:
        if not self._registered:
            self._registered = True
            atexit.register(self)

    def __call__(self) -> None:
        run = current_run()
        if run is not None and not run._finished:
            try:
                run._data.flush(commit_pending=True)
            except Exception as exc:  # the interpreter is exiting: say it, do not raise
                logger.warning("soko could not write the data of run %s: %s", run.id, exc)


_flush_at_exit = _AtExit()


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
    """Start a run (finishing the current one, if any) and make it ``soko.run``.

    *config* is a dict, an ``argparse.Namespace`` or an object with a ``__dict__``, as in
    W&B; *mode* and *dir* default to the settings (``WANDB_MODE``, ``WANDB_DIR``)."""
    items = {str(key).strip("-"): json_friendly(value) for key, value in as_mapping(config).items()}
    run = runbase.start(
        Run,
        project=project,
        entity=entity,
        job_type=job_type,
        group=group,
        name=name,
        config=items,
        run_id=id,
        mode=mode,
    )
    run._root_dir = os.fspath(dir) if dir is not None else None
    if items:
        # A resumed run keeps its stored config; what init is given now is set over it.
        run.config.update(items, allow_val_change=True)
    return run


def current_run() -> Run | None:
    """``soko.run``: the run :func:`init` started, until it finishes."""
    run = runbase.current_run()
    # A short-lived run that saves a draft outside any run is not ``soko.run``.
    return run if isinstance(run, Run) else None


def finish(exit_code: int | None = None) -> None:
    run = runbase.current_run()
    if run is not None:
        run.finish(exit_code=exit_code)
