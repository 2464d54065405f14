"""What a run records besides lineage: its config, its summary and its history.

The SDK batches ``run.log`` rows and sends them with the current summary (and the config
when it changed) in one write; this module checks them against the bounds of
:mod:`soko.core.runlog` and stores them in one transaction. A run keeps its newest
:data:`~soko.core.runlog.HISTORY_MAX_ROWS` rows; a row written again at a step it holds
replaces it (a resumed run that logs that step again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from soko.core.names import validate_run_id
from soko.core.runlog import (
    HISTORY_MAX_ROWS,
    ROW_MAX_BYTES,
    ROWS_PER_REQUEST_MAX,
    STEP_KEY,
    SUMMARY_MAX_BYTES,
    encode,
    plain,
    validate_run_config,
    validate_step,
)
from soko.errors import ValidationError
from soko.metadata.schema import run_history as history_table
from soko.metadata.schema import runs
from soko.service.runs import no_such_run
from soko.service.store import Store


def write_run_data(
    store: Store,
    run_id: str,
    *,
    config: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Replace the run's config and summary (each when given) and add *history* rows
    (each a JSON object with an integer ``_step``), in one transaction."""
    validate_run_id(run_id)
    values: dict[str, Any] = {}
    if config is not None:
        values["config"] = validate_run_config(config)
    if summary is not None:
        values["summary"] = encode(
            _object(summary, "A run summary"), what="A run summary", max_bytes=SUMMARY_MAX_BYTES
        )
    rows = _rows(history)
    with store.engine.begin() as conn:
        if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise no_such_run(run_id)
        if values:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
        if rows:
            _add_rows(conn, run_id, rows)


def _object(data: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{what} must be a JSON object, not {type(data).__name__}.")
    return {str(key): plain(value, str(key)) for key, value in data.items()}


def _rows(history: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    if len(history) > ROWS_PER_REQUEST_MAX:
        raise ValidationError(
            f"At most {ROWS_PER_REQUEST_MAX} history rows may be written at once, "
            f"not {len(history)}."
        )
    rows: dict[int, str] = {}
    for data in history:
        row = _object(data, "A history row")
        step = validate_step(row.get(STEP_KEY))
        rows[step] = encode(row, what=f"The history row of step {step}", max_bytes=ROW_MAX_BYTES)
    return rows


def _add_rows(conn: Connection, run_id: str, rows: dict[int, str]) -> None:
    conn.execute(
        delete(history_table).where(
            history_table.c.run_id == run_id, history_table.c.step.in_(list(rows))
        )
    )
    conn.execute(
        insert(history_table),
        [{"run_id": run_id, "step": step, "row": text} for step, text in sorted(rows.items())],
    )
    # Keep the newest rows: the step of the oldest one kept, then drop what is below it.
    oldest_kept = conn.execute(
        select(history_table.c.step)
        .where(history_table.c.run_id == run_id)
        .order_by(history_table.c.step.desc())
        .offset(HISTORY_MAX_ROWS - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        conn.execute(
            delete(history_table).where(
                history_table.c.run_id == run_id, history_table.c.step < oldest_kept
            )
        )


def run_history(
    store: Store,
    run_id: str,
    *,
    min_step: int = 0,
    max_step: int | None = None,
    limit: int = HISTORY_MAX_ROWS,
) -> list[str]:
    """The kept rows with ``min_step <= _step < max_step``, oldest first, at most *limit*,
    as the JSON text they were stored as."""
    validate_run_id(run_id)
    validate_step(min_step)
    if max_step is not None:
        validate_step(max_step)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HISTORY_MAX_ROWS:
        raise ValidationError(f"limit must be from 1 to {HISTORY_MAX_ROWS}, not {limit!r}.")
    query = select(history_table.c.row).where(
        history_table.c.run_id == run_id, history_table.c.step >= min_step
    )
    if max_step is not None:
        query = query.where(history_table.c.step < max_step)
    with store.engine.connect() as conn:
        if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise no_such_run(run_id)
        return list(conn.execute(query.order_by(history_table.c.step).limit(limit)).scalars())
