"""The FastAPI application of a soko server: :func:`create_app` wires store, routes, errors.

The app holds no global state: everything lives in the :class:`~.state.ServerState` it is
given, so tests and several servers in one process do not interfere. The OpenAPI schema is
served at ``/api/v1/openapi.json`` and the docs at ``/api/v1/docs``.
"""

from __future__ import annotations

from fastapi import FastAPI

from soko.server import errors, openapi
from soko.server.config import ServerConfig, open_blob_store
from soko.server.limits import BodyLimit
from soko.server.routes import admin, blobs, downloads, health, registries, runs, versions
from soko.server.state import ServerState
from soko.service.store import Store
from soko.wire import API_PREFIX


def create_app(config: ServerConfig, *, store: Store | None = None) -> FastAPI:
    """The app serving *store*, or the store that *config* names (opened here)."""
    if store is None:
        store = Store.open(config.db_url, open_blob_store(config))
    app = FastAPI(
        title="soko server",
        summary="Versioned datasets and models, with the W&B artifacts API.",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.soko = ServerState(store=store, config=config)
    errors.install(app)
    routers = [
        module.router for module in (health, admin, blobs, downloads, versions, runs, registries)
    ]
    for router in routers:
        app.include_router(router)
    openapi.install(app, config, routers)
    app.add_middleware(BodyLimit, config=config)
    app.add_middleware(errors.CatchUnexpected)  # outermost: see its docstring
    return app
