"""The FastAPI application of a soko server: :func:`create_app` wires store, routes, errors.

The app holds no global state: everything lives in the :class:`~.state.ServerState` it is
given, so tests and several servers in one process do not interfere. The OpenAPI schema is
served at ``/api/v1/openapi.json`` and the docs at ``/api/v1/docs``; the metrics at
``/metrics``; the web UI (:mod:`soko.server.ui`) at ``/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from soko.server import errors, malloc, openapi, ui
from soko.server.config import ServerConfig, open_blob_store
from soko.server.limits import BodyLimit
from soko.server.observe import Metrics, Observe, configure_access_log
from soko.server.routes import (
    admin,
    automations,
    blobs,
    downloads,
    health,
    maintenance,
    registries,
    runs,
    versions,
)
from soko.server.state import ServerState
from soko.server.wandb import routes as wandb_routes
from soko.service.store import Store
from soko.service.webhooks import DeliveryWorker
from soko.wire import API_PREFIX

CONFIG_ENV = "SOKO_SERVER_CONFIG"
"""How ``soko server --workers N`` hands its checked configuration to each worker (JSON)."""


def create_app(
    config: ServerConfig, *, store: Store | None = None, local_ui: bool = False
) -> FastAPI:
    """The app serving *store*, or the store that *config* names (opened here).

    *local_ui*: the web UI needs no sign-in, its user may do everything (``soko ui``, on
    the loopback address only)."""
    malloc.tune()  # in each worker process of the server: see soko.server.malloc
    if store is None:
        store = Store.open(config.db_url, open_blob_store(config))
    app = FastAPI(
        title="soko server",
        summary="Versioned datasets and models, with the W&B artifacts API.",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by soko.server.ui, from an installed package
        redoc_url=None,
        lifespan=_deliveries(store, metrics := Metrics()),
    )
    app.state.soko = ServerState(store=store, config=config)
    app.state.metrics = metrics
    errors.install(app)
    modules = (
        health,
        admin,
        maintenance,
        blobs,
        downloads,
        versions,
        runs,
        registries,
        automations,
    )
    routers = [module.router for module in modules]
    for router in routers:
        app.include_router(router)
    app.include_router(health.metrics_router)
    # W&B's own client: GraphQL, file_stream and signed transfer URLs (docs/wandb-client.md).
    app.state.wandb = wandb_routes.WandbState(wandb_routes.signing_key())
    app.include_router(wandb_routes.router)
    ui.install(app, secret=config.session_secret, local=local_ui)
    openapi.install(app, config, routers)
    app.add_middleware(BodyLimit, config=config)
    if config.access_log != "off":
        configure_access_log(config.access_log)
    app.add_middleware(Observe, metrics=metrics, access_log=config.access_log)
    app.add_middleware(errors.CatchUnexpected)  # outermost: see its docstring
    return app


def _deliveries(store: Store, metrics: Metrics) -> Any:
    """The app's lifespan: a worker sending the webhooks of automations runs while the app
    serves (each worker process of a server has one; they share the rows)."""
    log = logging.getLogger("soko.webhooks")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = DeliveryWorker(
            store,
            on_error=lambda exc: log.error("webhook delivery failed: %s", exc),
            on_attempt=metrics.webhook_attempt,
        )
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    return lifespan


def config_to_environment(config: ServerConfig) -> str:
    return json.dumps(dataclasses.asdict(config))


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``soko server --workers N`` (a uvicorn factory):
    the parent checked the configuration and opened the store once before."""
    return create_app(ServerConfig(**json.loads(os.environ[CONFIG_ENV])))
