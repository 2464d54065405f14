"""The life of a run: its record, its background log of drafts, its end; the current run.

:class:`RunBase` is what every run is; ``soko.Run`` (:mod:`soko.sdk.run`) adds W&B's API
on top. An artifact logs itself through a run (``Artifact._log_in`` submits its request to
:attr:`RunBase.log_queue`), and a draft saved outside any run is logged through a short-lived
one (:func:`log_outside_run`). So this module knows no artifact class and no ``Run``: the
artifact module imports it, and the run module imports both.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import secrets
import shutil
import string
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from soko import settings as settings_module
from soko.client.backend import Backend
from soko.client.connect import get_backend
from soko.core.names import (
    validate_config,
    validate_group,
    validate_job_type,
    validate_project,
    validate_run_id,
    validate_run_name,
)
from soko.core.records import RunRecord
from soko.errors import CommitError, UsageError
from soko.sdk.publish import LogKind, LogQueue
from soko.sdk.runview import RunIdentity

_ID_ALPHABET = string.ascii_lowercase + string.digits
_current_lock = threading.Lock()
_current: RunBase | None = None
_Run = TypeVar("_Run", bound="RunBase")


class Loggable(Protocol):
    """What a run needs of an artifact to log it (``soko.Artifact`` is one)."""

    def _log_in(
        self,
        run: RunBase,
        *,
        kind: LogKind,
        aliases: Sequence[str] | None,
        tags: Sequence[str] | None,
        distributed_id: str | None = None,
    ) -> None:
        """Hand the draft's request to *run*'s background log; the artifact takes the
        record back when the log has committed."""
        ...

    def wait(self, timeout: float | None = None) -> object:
        """Block until the log has committed; raise what made it fail."""
        ...


class RunBase(RunIdentity):
    """One execution that logs artifacts: its record, its background log, its end."""

    def __init__(self, record: RunRecord, backend: Backend) -> None:
        self._record = record
        self._backend = backend
        self._log = LogQueue(backend)
        self._finished = False

    @property
    def log_queue(self) -> LogQueue:
        """Where artifacts submit their logs (see :mod:`soko.sdk.publish`)."""
        return self._log

    @property
    def state(self) -> str:
        return self._record.state if self._finished else "running"

    def __enter__(self) -> Self:
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

    def _check_open(self) -> None:
        if self._finished:
            # W&B's class and the start of its words (a UsageError is a ValidationError).
            raise UsageError(
                f"Run ({self.id}) is finished. Please make sure that you are using an active "
                "run: start another with soko.init()."
            )

    def log_draft(self, artifact: Loggable) -> None:
        """Log a draft as the next version of its collection, in the background."""
        self._check_open()
        artifact._log_in(self, kind=LogKind.COMMIT, aliases=None, tags=None)

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Wait for every background log, then close the run; raise if a log failed."""
        global _current
        if self._finished:
            return
        errors = self._log.wait()
        self._log.close()
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


def current_run() -> RunBase | None:
    with _current_lock:
        return _current


def start(
    kind: type[_Run],
    *,
    project: str | None = None,
    entity: str | None = None,
    job_type: str | None = None,
    group: str | None = None,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    run_id: str | None = None,
    mode: str | None = None,
) -> _Run:
    """Start a run of class *kind* (finishing the current one, if any) and make it the
    current run; the settings give the entity, project and mode not given."""
    global _current
    previous = current_run()
    if previous is not None:
        previous.finish()
    config_settings = settings_module.load()
    mode = settings_module.check_mode(mode) if mode is not None else config_settings.mode
    if mode == "disabled":
        config_settings = _throwaway(config_settings)
    backend = get_backend(config_settings)
    record = backend.start_run(
        run_id=validate_run_id(run_id) if run_id is not None else _new_run_id(),
        entity=validate_project(entity or config_settings.entity),
        project=validate_project(project or config_settings.project),
        name=validate_run_name(name),
        job_type=validate_job_type(job_type),
        group=validate_group(group),
        config=validate_config(config),
    )
    run = kind(record, backend)
    with _current_lock:
        _current = run
    return run


_throwaway_dir: Path | None = None


def _throwaway(config: settings_module.Settings) -> settings_module.Settings:
    """The settings of a ``disabled`` run: an embedded store of this process alone (W&B
    records nothing of such a run), removed when the process exits."""
    global _throwaway_dir
    with _current_lock:
        if _throwaway_dir is None:
            _throwaway_dir = Path(tempfile.mkdtemp(prefix="soko-disabled-"))
            atexit.register(shutil.rmtree, _throwaway_dir, ignore_errors=True)
        root = _throwaway_dir
    return dataclasses.replace(
        config, soko_dir=root / "store", cache_dir=root / "cache", base_url=None, api_key=None
    )


def _new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def log_outside_run(artifact: Loggable, *, project: str | None, entity: str | None = None) -> None:
    """``artifact.save()`` on a draft: log it in the current run, else in a short-lived
    one, and wait for the commit."""
    run = current_run()
    if run is not None:
        run.log_draft(artifact)
        artifact.wait()
        return
    with start(RunBase, entity=entity, project=project, job_type="auto") as temporary:
        temporary.log_draft(artifact)
        artifact.wait()
