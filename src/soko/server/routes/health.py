"""Probes without a key: ``/api/v1/health`` (liveness), ``/api/v1/ready`` (readiness), and
``/metrics`` (Prometheus).

``health`` answers as long as the process serves requests, touching nothing else, so that a
supervisor restarts only a server that is stuck. ``ready`` also asks the metadata database
and the blob store, so that a load balancer sends no requests to a server that cannot reach
them; it answers 503, naming which one failed, until both do.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from soko.core.digests import Algorithm, Digest
from soko.server.deps import State
from soko.server.observe import METRICS_PATH, Metrics
from soko.wire import API_PREFIX
from soko.wire.base import WireModel

router = APIRouter(prefix=API_PREFIX, tags=["health"])
metrics_router = APIRouter(tags=["health"])

_PROBE = Digest.of_bytes(b"soko readiness probe", Algorithm.XXH128)
"""A blob asked about (never stored) to learn that the store answers."""


class Health(WireModel):
    status: str
    api: str
    version: str
    store: str


class Readiness(WireModel):
    status: Literal["ready", "unavailable"]
    database: str
    """``ok``, or why the metadata database did not answer."""
    store: str
    """``ok``, or why the blob store did not answer."""


def _soko_version() -> str:
    try:
        return version("soko")
    except PackageNotFoundError:
        return "unknown"


@router.get("/health")
def health(state: State) -> Health:
    """Ok while the process serves requests (liveness); asks neither database nor store."""
    kind = "s3" if state.config.store_url.startswith("s3://") else "folder"
    return Health(status="ok", api="v1", version=_soko_version(), store=kind)


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The database or the store is down"}},
)
def ready(state: State) -> Readiness | Response:
    """Ready when the metadata database and the blob store both answer (readiness)."""
    database = store = "ok"
    try:
        with state.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", and says which
        database = _reason(exc)
    try:
        state.store.blobs.exists(_PROBE)
    except Exception as exc:
        store = _reason(exc)
    if database == "ok" and store == "ok":
        return Readiness(status="ready", database=database, store=store)
    body = Readiness(status="unavailable", database=database, store=store)
    return JSONResponse(body.model_dump(), status_code=503)


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    first = next((line.strip() for line in str(orig).splitlines() if line.strip()), "")
    return f"{type(orig).__name__}: {first}"[:300]


@metrics_router.get(METRICS_PATH, include_in_schema=False)
def metrics(request: Request) -> Response:
    """The server's metrics in Prometheus' text format."""
    found: Metrics = request.app.state.metrics
    return Response(found.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
