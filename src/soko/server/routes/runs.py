"""Runs and lineage: start, finish, read, list; record a use; who used or logged what.

Lineage crosses projects (a run of A may use a version of B); listings show only the runs
and versions of projects the caller may read. A run id of a project the caller may not read
is answered as one that does not exist (404).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from soko.core.runlog import (
    HISTORY_MAX_ROWS,
    ROW_MAX_BYTES,
    STEP_MAX,
    SUMMARY_MAX_BYTES,
    decode,
)
from soko.errors import ConflictError, NotFoundError
from soko.server.deps import Caller, State
from soko.service import rundata, runs
from soko.wire import API_PREFIX
from soko.wire.fields import ProjectName, RunId, VersionId
from soko.wire.records import RunList, RunOut, VersionList
from soko.wire.requests import FinishRunIn, RecordUseIn, StartRunIn
from soko.wire.rundata import HistoryOut, RunDataIn

router = APIRouter(prefix=API_PREFIX, tags=["runs"])

# The runs that used a version (it was their input) or logged it (their output).
Direction = Literal["used", "logged"]


@router.post("/runs")
def start_run(body: StartRunIn, state: State, caller: Caller) -> RunOut:
    """Start a run, or resume the run with this id."""
    caller.require(body.entity, body.project, "writer")
    try:
        existing = runs.get_run(state.store, body.run_id)
    except NotFoundError:
        existing = None
    if existing is not None:
        if not caller.may(existing.entity, existing.project, "viewer"):
            # Run ids are one namespace: that the id is taken cannot be hidden, but the
            # project that holds it is not told.
            raise ConflictError(f"The run id {body.run_id!r} is taken; choose another.")
        caller.require(existing.entity, existing.project, "writer")
    record = runs.start_run(
        state.store,
        run_id=body.run_id,
        entity=body.entity,
        project=body.project,
        name=body.name,
        job_type=body.job_type,
        group=body.group,
        config=body.config,
    )
    return RunOut.of(record)


@router.post("/runs/{run_id}/finish", status_code=204)
def finish_run(run_id: RunId, body: FinishRunIn, state: State, caller: Caller) -> Response:
    state.writable_run(caller, run_id)
    runs.finish_run(state.store, run_id, state=body.state)
    return Response(status_code=204)


@router.get("/runs/{run_id}")
def get_run(run_id: RunId, state: State, caller: Caller) -> RunOut:
    return RunOut.of(state.readable_run(caller, run_id))


@router.get("/projects/{entity}/{project}/runs")
def list_runs(entity: ProjectName, project: ProjectName, state: State, caller: Caller) -> RunList:
    caller.require(entity, project, "viewer")
    return RunList.of(runs.list_runs(state.store, entity, project))


@router.post("/runs/{run_id}/uses", status_code=204)
def record_use(run_id: RunId, body: RecordUseIn, state: State, caller: Caller) -> Response:
    """Record that the run used a version: writer on the run's project, viewer on the
    version's."""
    state.writable_run(caller, run_id)
    state.readable_version(caller, body.version_id)
    runs.record_use(state.store, run_id, body.version_id)
    return Response(status_code=204)


@router.get("/versions/{version_id}/runs")
def runs_of_version(
    version_id: VersionId, direction: Direction, state: State, caller: Caller
) -> RunList:
    state.readable_version(caller, version_id)
    found = runs.runs_of_version(state.store, version_id, direction)
    return RunList.of([r for r in found if caller.may(r.entity, r.project, "viewer")])


@router.get("/runs/{run_id}/versions")
def versions_of_run(
    run_id: RunId, direction: Direction, state: State, caller: Caller
) -> VersionList:
    state.readable_run(caller, run_id)
    found = runs.versions_of_run(state.store, run_id, direction)
    return VersionList.of([v for v in found if caller.may(v.entity, v.project, "viewer")])


@router.post("/runs/{run_id}/data", status_code=204)
def write_run_data(run_id: RunId, body: RunDataIn, state: State, caller: Caller) -> Response:
    """Replace the run's config and summary (each when given) and add history rows
    (``run.log``, ``run.summary``, ``run.config``), in one transaction."""
    state.writable_run(caller, run_id)
    rows = [decode(text, what="A history row", max_bytes=ROW_MAX_BYTES) for text in body.history]
    summary = (
        decode(body.summary, what="A run summary", max_bytes=SUMMARY_MAX_BYTES)
        if body.summary is not None
        else None
    )
    rundata.write_run_data(state.store, run_id, config=body.config, summary=summary, history=rows)
    return Response(status_code=204)


Step = Annotated[int, Query(ge=0, le=STEP_MAX)]


@router.get("/runs/{run_id}/history")
def run_history(
    run_id: RunId,
    state: State,
    caller: Caller,
    min_step: Step = 0,
    max_step: Step | None = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX_ROWS)] = HISTORY_MAX_ROWS,
) -> HistoryOut:
    """The kept history rows with ``min_step <= _step < max_step``, oldest first."""
    state.readable_run(caller, run_id)
    rows = rundata.run_history(
        state.store, run_id, min_step=min_step, max_step=max_step, limit=limit
    )
    return HistoryOut(rows=rows)
