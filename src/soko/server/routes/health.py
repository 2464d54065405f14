"""``GET /api/v1/health``: answers without a key, for load balancers and start-up probes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from sqlalchemy import text

from soko.server.deps import State
from soko.wire import API_PREFIX
from soko.wire.base import WireModel

router = APIRouter(prefix=API_PREFIX, tags=["health"])


class Health(WireModel):
    status: str
    api: str
    version: str
    store: str


def _soko_version() -> str:
    try:
        return version("soko")
    except PackageNotFoundError:
        return "unknown"


@router.get("/health")
def health(state: State) -> Health:
    """Ok when the metadata database answers."""
    with state.store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    kind = "s3" if state.config.store_url.startswith("s3://") else "folder"
    return Health(status="ok", api="v1", version=_soko_version(), store=kind)
