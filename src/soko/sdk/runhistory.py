"""``run.log``: W&B's step and commit rules, and the batches a run writes its data in.

The rules, as W&B's ``log`` and its history handler apply them:

- ``log(d)``: *d* joins the pending row, which is committed at the current step; the
  step then moves on by one.
- ``log(d, commit=False)``: *d* joins the pending row, which stays pending.
- ``log(d, step=s)``: *s* below the current step is refused with a warning and *d* is
  dropped; *s* above it commits the pending row first and makes *s* the current step;
  *d* joins the pending row, which stays pending unless ``commit=True`` (a later
  ``log(d2)`` without a step commits *d* and *d2* as one row at *s*).
- A committed row holds ``_step``, ``_runtime`` (seconds since ``init``) and
  ``_timestamp`` (of the row's last ``log``); its values become the summary of its keys.
- ``finish()`` commits the pending row.

``log`` itself writes nothing: committed rows gather in memory and are written, with the
summary and the config when they changed, every :data:`FLUSH_ROWS` rows, every
:data:`FLUSH_BYTES` of rows, when :data:`FLUSH_SECONDS` have passed since the last write
(checked at the next ``log`` or change), and at ``finish()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from soko.core.runlog import (
    HISTORY_MAX_ROWS,
    ROW_MAX_BYTES,
    STEP_KEY,
    encode,
    plain,
    validate_step,
)
from soko.errors import SokoError
from soko.sdk.runconfig import Config
from soko.sdk.runsummary import Summary

FLUSH_ROWS = 500
FLUSH_BYTES = 4 * 1024 * 1024
"""Below the server's JSON body limit (16 MiB by default) with room to spare."""
FLUSH_SECONDS = 5.0

logger = logging.getLogger("soko")

Writer = Callable[..., None]
"""``Backend.write_run_data`` bound to the run's id: (config=, summary=, history=)."""


class RunData:
    """A live run's config, summary and history, and the batches that write them."""

    def __init__(
        self,
        write: Writer,
        *,
        config: Mapping[str, Any],
        summary: Mapping[str, Any],
        next_step: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._write = write
        self._clock = clock
        self._lock = threading.RLock()
        self._started = clock()
        self._last_write = self._started
        self._retry_at = self._started
        self.config = Config(config, on_change=self._config_changed)
        self.summary = Summary(summary, on_change=self._summary_changed)
        self._step = next_step
        self._pending: dict[str, Any] = {}
        self._rows: list[tuple[dict[str, Any], int]] = []
        self._row_bytes = 0
        self._config_dirty = False
        self._summary_dirty = False

    @property
    def step(self) -> int:
        """The step the next committed row gets (W&B's ``run.step``)."""
        return self._step

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        if not isinstance(data, Mapping):
            raise TypeError("soko.log must be passed a dictionary")
        if any(not isinstance(key, str) for key in data):
            raise TypeError("Key values passed to `soko.log` must be strings.")
        values = {key: plain(value, key) for key, value in data.items()}
        with self._lock:
            if step is not None:
                validate_step(step)
                if step < self._step:
                    logger.warning(
                        "Tried to log to step %d that is less than the current step %d. Steps "
                        "must be monotonically increasing, so this data will be ignored.",
                        step,
                        self._step,
                    )
                    return
                if step > self._step:
                    self._commit_row()
                    self._step = step
            self._pending.update(values)
            self._pending["_timestamp"] = self._clock()
            if (step is None and commit is None) or commit:
                self._commit_row()
            self._flush_if_due()

    def _commit_row(self) -> None:
        if not self._pending:
            return
        row = dict(self._pending)
        self._pending = {}
        row[STEP_KEY] = self._step
        row["_runtime"] = row["_timestamp"] - self._started
        size = len(
            encode(row, what=f"The history row of step {self._step}", max_bytes=ROW_MAX_BYTES)
        )
        self._step += 1
        self._rows.append((row, size))
        self._row_bytes += size
        if len(self._rows) > HISTORY_MAX_ROWS:
            # Rows that wait for a write beyond the newest HISTORY_MAX_ROWS would be dropped
            # by the store as they arrive: drop them here, so waiting costs bounded memory.
            _, dropped = self._rows.pop(0)
            self._row_bytes -= dropped
        self.summary._set_logged(row)
        self._summary_dirty = True

    def _config_changed(self) -> None:
        with self._lock:
            self._config_dirty = True
            self._flush_if_due()

    def _summary_changed(self) -> None:
        with self._lock:
            self._summary_dirty = True
            self._flush_if_due()

    def _flush_if_due(self) -> None:
        now = self._clock()
        if now < self._retry_at:
            return
        if (
            len(self._rows) >= FLUSH_ROWS
            or self._row_bytes >= FLUSH_BYTES
            or now - self._last_write >= FLUSH_SECONDS
        ):
            try:
                self.flush()
            except SokoError as exc:
                # ``log`` does not fail because the store is away (W&B's does not either):
                # the rows wait (at most HISTORY_MAX_ROWS of them, see _commit_row) and
                # the write is tried again FLUSH_SECONDS later; ``finish()`` raises if it
                # still fails.
                logger.warning("soko could not write run data yet (%s); will retry.", exc)
                self._retry_at = now + FLUSH_SECONDS

    def flush(self, *, commit_pending: bool = False) -> None:
        """Write what changed since the last write (the pending row too, when
        *commit_pending*: the run ends)."""
        with self._lock:
            if commit_pending:
                self._commit_row()
            self._last_write = self._clock()
            if not (self._rows or self._config_dirty or self._summary_dirty):
                return
            rows, self._rows, self._row_bytes = self._rows, [], 0
            config = dict(self.config._items) if self._config_dirty else None
            summary = self.summary.as_dict() if self._summary_dirty else None
            batches = _batches(rows)
            try:
                for batch in batches[:-1]:
                    self._write(history=[row for row, _ in batch])
                # The last batch carries the summary those rows made, in one transaction.
                last = [row for row, _ in batches[-1]] if batches else []
                self._write(config=config, summary=summary, history=last)
            except BaseException:
                # Nothing is lost: what was not written is written with the next batch (a
                # batch written twice is harmless: rows are keyed by step).
                self._rows = (rows + self._rows)[-HISTORY_MAX_ROWS:]
                self._row_bytes = sum(size for _, size in self._rows)
                raise
            self._config_dirty = self._summary_dirty = False


def _batches(rows: Sequence[tuple[dict[str, Any], int]]) -> list[list[tuple[dict[str, Any], int]]]:
    """*rows* (each with its size as JSON) in writes of at most FLUSH_ROWS rows and
    FLUSH_BYTES bytes (a row is at most ROW_MAX_BYTES, far below)."""
    batches: list[list[tuple[dict[str, Any], int]]] = []
    batch: list[tuple[dict[str, Any], int]] = []
    size = 0
    for row, row_size in rows:
        if batch and (len(batch) >= FLUSH_ROWS or size + row_size > FLUSH_BYTES):
            batches.append(batch)
            batch, size = [], 0
        batch.append((row, row_size))
        size += row_size
    if batch:
        batches.append(batch)
    return batches
