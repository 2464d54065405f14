"""The OpenAPI schema of ``/api/v1``: FastAPI's, with every error answer each route can give.

FastAPI declares only a route's success and a 422 of its own shape; soko answers errors as
:class:`~soko.wire.errors.ErrorBody` with the status of their :mod:`soko.errors` class. The
statuses are derived from how each one arises, so that a new route is declared right without
a table to keep up to date:

- 500 anywhere (an unexpected error; logged, answered without details);
- 413 wherever :class:`~soko.server.limits.BodyLimit` limits the body (all but the streamed
  single-blob PUT);
- 400 and 422 where the route takes parameters or a body (validation; 422 is also a blob
  whose bytes miss their digest);
- 404 there too: what a request names (version, run, project, user, blob) may not exist;
- 401 and 403 where the route needs an API key (the ``get_principal`` dependency);
- 409 on writes that need a key: what is stored may contradict them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from soko.server.config import ServerConfig
from soko.server.deps import get_principal
from soko.server.limits import limit_for
from soko.wire.errors import ErrorBody

BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
"""An OpenAPI media type entry for raw bytes (a blob, a framed batch of blobs)."""

_DESCRIPTIONS = {
    400: "Bad request: a value soko refuses, or a body that is not valid JSON",
    401: "No API key, or an unknown or revoked one",
    403: "The key lacks the role this needs",
    404: "What the request names does not exist",
    409: "The request contradicts what the store holds",
    413: "The request body is larger than this endpoint's limit",
    422: "A field fails validation, or bytes do not match their digest",
    500: "Internal server error; the server log has the details",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_PARAM = re.compile(r"\{[^}]*\}")


def error_statuses(route: APIRoute, config: ServerConfig) -> list[int]:
    """The error statuses *route* can answer (see the module's docstring)."""
    statuses = {500}
    methods = route.methods or set()
    dependant = route.dependant
    sample_path = _PARAM.sub("0", route.path_format)
    if any(limit_for(config, method, sample_path) is not None for method in methods):
        statuses.add(413)
    takes_input = bool(
        dependant.path_params
        or dependant.query_params
        or dependant.body_params
        or "requestBody" in (route.openapi_extra or {})
    )
    if takes_input:
        statuses |= {400, 404, 422}
    needs_key = any(d.call is get_principal for d in dependant.dependencies)
    if needs_key:
        statuses |= {401, 403}
        if methods - {"GET", "HEAD"}:
            statuses.add(409)
    return sorted(statuses)


def install(app: FastAPI, config: ServerConfig, routers: Sequence[APIRouter]) -> None:
    """Serve the schema of *app*, which includes *routers*, with every error declared."""
    fastapi_schema = app.openapi
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare_errors(fastapi_schema(), routes, config)  # FastAPI caches what it made
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_errors(
    schema: dict[str, Any], routes: Sequence[APIRoute], config: ServerConfig
) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format].get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in error_statuses(route, config):
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }
    # FastAPI's own 422 shapes are no longer referenced: soko never answers them.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
