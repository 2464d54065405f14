"""A run as the store records it: :class:`PublicRun` (``artifact.logged_by()``,
``Api().run(...)``), and what it shares with a live run (:class:`RunIdentity`).

It imports no artifact: the versions a run logged or used become artifacts through the
function it is given, so the artifact module can hand out the runs of a version.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import IO, Any, Generic, TypeVar

from soko.client.backend import Lineage
from soko.core.records import RunRecord, VersionRecord
from soko.core.runlog import HISTORY_MAX_ROWS, STEP_KEY
from soko.errors import NotFoundError
from soko.sdk.runfiles import RUN_FILES_TYPE, run_files_name
from soko.sdk.runsummary import Summary

logger = logging.getLogger("soko")

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
    summary_metrics = property(lambda self: dict(self._record.summary))

    @property
    def summary(self) -> Summary:
        """The run's summary as last written (changes to this copy are not stored)."""
        return Summary(self._record.summary)

    @property
    def lastHistoryStep(self) -> int:  # W&B's name
        return -1 if self._record.last_step is None else self._record.last_step

    def history(
        self,
        samples: int = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
    ) -> Any:
        """At most *samples* of the kept history rows, evenly spread, oldest first; with
        *keys*, the rows holding all of them, with only them and *x_axis*. A pandas
        DataFrame when *pandas* and pandas is installed, else a list of dicts (W&B's)."""
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(key, str) for key in keys)
        ):
            raise ValueError("keys must be specified as a list of strings")
        rows = [] if stream != "default" else self._lineage.run_history(self._record.id)
        if keys:
            wanted = [*keys, x_axis] if x_axis not in keys else list(keys)
            rows = [
                {key: row[key] for key in wanted if key in row}
                for row in rows
                if all(key in row for key in keys)
            ]
        rows = _sample(rows, samples)
        if pandas:
            try:
                pd = importlib.import_module("pandas")  # optional, and heavy to import
            except ImportError:
                logger.warning("Unable to load pandas, call history with pandas=False")
            else:
                return pd.DataFrame.from_records(rows)
        return rows

    def scan_history(
        self,
        keys: list[str] | None = None,
        page_size: int = 1000,
        min_step: int = 0,
        max_step: int | None = None,
        **_ignored: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every kept history row with ``min_step <= _step < max_step``, read *page_size*
        rows at a time; with *keys*, the rows holding all of them, with only them."""
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(key, str) for key in keys)
        ):
            raise ValueError("keys must be specified as a list of strings")
        page_size = max(1, min(int(page_size), HISTORY_MAX_ROWS))
        return self._scan(keys, page_size, min_step, max_step)

    def _scan(
        self, keys: list[str] | None, page_size: int, min_step: int, max_step: int | None
    ) -> Iterator[dict[str, Any]]:
        step = min_step
        while True:
            rows = self._lineage.run_history(
                self._record.id, min_step=step, max_step=max_step, limit=page_size
            )
            for row in rows:
                if not keys:
                    yield row
                elif all(key in row for key in keys):
                    yield {key: row[key] for key in keys}
            if len(rows) < page_size:
                return
            step = rows[-1][STEP_KEY] + 1

    def files(
        self, names: list[str] | None = None, pattern: str | None = None, per_page: int = 50
    ) -> list[RunFile]:
        """The files kept with the run (``run.save``, ``run.dir``): of the newest version of
        its ``run-<id>-files`` artifact; only *names* when given."""
        if names and pattern:
            raise ValueError("names and pattern cannot both be given")
        kept = [
            record
            for record in self._lineage.versions_of_run(self._record.id, "logged")
            if record.type == RUN_FILES_TYPE
            and record.collection == run_files_name(self._record.id)
        ]
        if not kept:
            return []
        artifact: Any = self._artifact_of(kept[-1])
        paths = sorted(artifact.manifest.entries)
        if names:
            paths = [path for path in paths if path in set(names)]
        elif pattern:
            # W&B's pattern is SQL LIKE: % any run of characters, _ one character.
            regex = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
            )
            paths = [path for path in paths if regex.fullmatch(path)]
        return [RunFile(artifact.get_entry(path)) for path in paths]

    def file(self, name: str) -> RunFile:
        """One file kept with the run; NotFoundError when it has none of that name."""
        found = self.files([name])
        if not found:
            raise NotFoundError(f"Run {self._record.id} keeps no file {name!r}.")
        return found[0]

    def logged_artifacts(self) -> list[_Artifact]:
        return self._artifacts("logged")

    def used_artifacts(self) -> list[_Artifact]:
        return self._artifacts("used")

    def _artifacts(self, direction: str) -> list[_Artifact]:
        records = self._lineage.versions_of_run(self._record.id, direction)
        return [self._artifact_of(r) for r in records]


class RunFile:
    """A file kept with a run (W&B's ``File`` of ``run.files()``)."""

    def __init__(self, entry: Any) -> None:
        self._entry = entry

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.size} bytes)>"

    name = property(lambda self: self._entry.path)
    size = property(lambda self: self._entry.size)
    digest = property(lambda self: self._entry.digest)

    def download(
        self, root: str = ".", replace: bool = False, exist_ok: bool = False, **_ignored: Any
    ) -> IO[str]:
        """Write the file under *root* and return it open for reading (W&B's rules for a
        file that is there already)."""
        path = os.path.join(root, self.name)
        if os.path.exists(path) and not replace:
            if exist_ok:
                return open(path)  # returned open, as W&B does
            raise ValueError(
                "File already exists, pass replace=True to overwrite or exist_ok=True to "
                "leave it as is and don't error."
            )
        self._entry.download(root)
        return open(path)


def _sample(rows: list[dict[str, Any]], samples: int) -> list[dict[str, Any]]:
    """*samples* rows spread evenly over *rows*, the first and the last included."""
    if samples <= 0:
        return []
    if len(rows) <= samples:
        return rows
    if samples == 1:
        return [rows[-1]]
    last = len(rows) - 1
    return [rows[round(i * last / (samples - 1))] for i in range(samples)]
